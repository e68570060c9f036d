package ztnet

import (
	"context"
	"log/slog"
	"net"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/ztnhook"
)

// What the adapters (grpcztn, httpztn) use of a Service and users do not is
// reached through internal/ztnhook, not exported.
func init() {
	ztnhook.Of = func(svc any) ztnhook.Service { return (*hookService)(svc.(*Service)) }
}

// hookService is a Service as internal/ztnhook shows it to the adapters.
type hookService Service

func (h *hookService) svc() *Service { return (*Service)(h) }

func (h *hookService) Logger() *slog.Logger { return h.svc().logger() }

func (h *hookService) MeterProvider() metric.MeterProvider {
	if s := h.svc(); s.made() == nil {
		return s.cfg.meterProvider
	}
	return metricnoop.NewMeterProvider()
}

func (h *hookService) TracerProvider() trace.TracerProvider {
	if s := h.svc(); s.made() == nil {
		return s.cfg.tracerProvider
	}
	return tracenoop.NewTracerProvider()
}

func (h *hookService) Resolver() discovery.Resolver {
	if s := h.svc(); s.made() == nil {
		return s.cfg.resolver
	}
	return nil
}

func (h *hookService) DialAddress(ctx context.Context, service, address string, protos ...string) (net.Conn, error) {
	var opts []DialOption
	if len(protos) > 0 {
		opts = []DialOption{WithProtocols(protos...)}
	}
	c, err := h.svc().dialAddress(ctx, service, address, opts...)
	if err != nil {
		return nil, err // not a typed nil
	}
	return c, nil
}

func (h *hookService) ListenL7(ctx context.Context, network, addr string, protos ...string) (net.Listener, error) {
	return h.svc().Listen(ctx, network, addr, WithProtocols(protos...), withL7Enforced())
}

func (h *hookService) AuthorizeRequest(ctx context.Context, peer ztn.ServiceID, req *authz.HTTPRequest) authz.Decision {
	return h.svc().authorizeRequest(ctx, peer, req)
}

// logger returns the service's logger (one that discards everything for a
// Service not made by New).
func (s *Service) logger() *slog.Logger {
	if s == nil || s.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.log
}
