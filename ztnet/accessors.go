package ztnet

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/discovery"
)

// Self returns the service's own parsed identity.
func (s *Service) Self() ServiceID { return s.id }

// Resolver returns how the service finds instances of others (nil without
// WithResolver). Adapters that balance themselves, such as grpcztn, use it.
func (s *Service) Resolver() discovery.Resolver { return s.cfg.resolver }

// Logger returns the service's logger, for adapters' access records.
func (s *Service) Logger() *slog.Logger { return s.log }

// MeterProvider returns the OpenTelemetry meter provider the service uses.
func (s *Service) MeterProvider() metric.MeterProvider { return s.cfg.meterProvider }

// TracerProvider returns the OpenTelemetry tracer provider the service uses.
func (s *Service) TracerProvider() trace.TracerProvider { return s.cfg.tracerProvider }
