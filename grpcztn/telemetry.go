package grpcztn

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"

	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// OpenTelemetry. The trace context crosses services as W3C Trace Context
// (traceparent, tracestate), whatever OpenTelemetry's global propagator is;
// baggage does not cross. RPC spans carry both ends' SPIFFE IDs
// (ztnet.AttrSourceID, ztnet.AttrDestinationID): the server's span from
// its authorization interceptor, the client's from the stats handler
// below.

// propagator is how the trace context crosses services.
var propagator = propagation.TraceContext{}

// serverStatsHandler is otelgrpc's server handler with svc's providers.
func serverStatsHandler(svc *ztnet.Service) stats.Handler {
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
		otelgrpc.WithMeterProvider(ztnhook.Of(svc).MeterProvider()),
		otelgrpc.WithPropagators(propagator))
}

// clientStatsHandler is otelgrpc's client handler with svc's providers,
// adding the ends' SPIFFE IDs to each RPC's span.
func clientStatsHandler(svc *ztnet.Service) stats.Handler {
	return &clientStats{
		Handler: otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
			otelgrpc.WithMeterProvider(ztnhook.Of(svc).MeterProvider()),
			otelgrpc.WithPropagators(propagator)),
		asSource: attribute.String(ztnet.AttrSourceID, svc.ID().String()),
	}
}

type clientStats struct {
	stats.Handler
	asSource attribute.KeyValue
}

// TagRPC starts the RPC's span (otelgrpc) and gives it the source.
func (h *clientStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	ctx = h.Handler.TagRPC(ctx, info)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(h.asSource)
	}
	return ctx
}

// HandleRPC gives the span the destination when the RPC has its
// connection (its header goes out: the context then holds the peer, the
// server the connection verified), then passes the event to otelgrpc.
func (h *clientStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); ok {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			if id, ok := Peer(ctx); ok {
				span.SetAttributes(attribute.String(ztnet.AttrDestinationID, id.String()))
			}
		}
	}
	h.Handler.HandleRPC(ctx, s)
}
