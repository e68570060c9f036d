package ztnet

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/discovery"
)

// ID returns the service's own identity (its name is ID().Name, its SPIFFE
// ID ID().String()).
func (s *Service) ID() ztn.ServiceID { return s.id }

// Resolver returns how the service finds instances of others (nil without
// WithResolver). Adapters that balance themselves, such as grpcztn, use it.
func (s *Service) Resolver() discovery.Resolver { return s.cfg.resolver }

// Logger returns the service's logger, for adapters' access records (one
// that discards everything for a Service not made by New).
func (s *Service) Logger() *slog.Logger {
	if s.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.log
}

// MeterProvider returns the OpenTelemetry meter provider the service uses
// (a no-op one for a Service not made by New).
func (s *Service) MeterProvider() metric.MeterProvider {
	if s.cfg.meterProvider == nil {
		return metricnoop.NewMeterProvider()
	}
	return s.cfg.meterProvider
}

// TracerProvider returns the OpenTelemetry tracer provider the service uses
// (a no-op one for a Service not made by New).
func (s *Service) TracerProvider() trace.TracerProvider {
	if s.cfg.tracerProvider == nil {
		return tracenoop.NewTracerProvider()
	}
	return s.cfg.tracerProvider
}
