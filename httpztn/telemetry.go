package httpztn

import (
	"net/http"
	"net/http/httptrace"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/internal/telemetry"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// OpenTelemetry. The server, client and gateway are traced and measured by
// otelhttp with the Service's providers, unless both providers are
// OpenTelemetry's no-op ones (trace/noop and metric/noop given to
// ztnet.New): then no otelhttp layer is installed at all. The trace context
// crosses services as W3C Trace Context (traceparent, tracestate), whatever
// OpenTelemetry's global propagator is; baggage does not cross: what a
// caller put in it is not for every service down the line. Request spans
// carry both ends' SPIFFE IDs (ztnet.AttrSourceID, ztnet.AttrDestinationID).

// propagator is how the trace context crosses services.
var propagator = propagation.TraceContext{}

// instrumentationName names the meter of httpztn's own metrics
// (ztn.http.retries).
const instrumentationName = "github.com/ztnlabs/ztn/httpztn"

// instrumentHandler wraps h in otelhttp's handler named operation, unless
// svc's telemetry is off; extra adds options (the gateway's
// otelhttp.WithPublicEndpointFn).
func instrumentHandler(svc *ztnet.Service, h http.Handler, operation string, extra ...otelhttp.Option) http.Handler {
	if telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		return h
	}
	return otelhttp.NewHandler(h, operation, append([]otelhttp.Option{
		otelhttp.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
		otelhttp.WithMeterProvider(ztnhook.Of(svc).MeterProvider()),
		otelhttp.WithPropagators(propagator)}, extra...)...)
}

// instrument wraps rt in otelhttp's transport, unless svc's telemetry is
// off.
func instrument(svc *ztnet.Service, rt http.RoundTripper) http.RoundTripper {
	if telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		return rt
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
		otelhttp.WithMeterProvider(ztnhook.Of(svc).MeterProvider()),
		otelhttp.WithPropagators(propagator))
}

// traceEnds adds to the client span in out's context, if it records, the
// source's SPIFFE ID now and the destination's once a connection is taken
// (the server's verified identity; the last attempt's when retried), and
// returns out with that context.
func (t *transport) traceEnds(out *http.Request) *http.Request {
	span := trace.SpanFromContext(out.Context())
	if !span.IsRecording() {
		return out
	}
	span.SetAttributes(t.asSource)
	return out.WithContext(httptrace.WithClientTrace(out.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if id, ok := ztnet.Peer(info.Conn); ok {
				span.SetAttributes(attribute.String(ztnet.AttrDestinationID, id.String()))
			}
		},
	}))
}

// publicEndpoint says, for the gateway, that every request comes from
// outside the mesh: a trace context it carries is not trusted to be
// continued (a caller could pick the trace ID); the gateway's span starts a
// trace of its own, linked to it.
func publicEndpoint(*http.Request) bool { return true }
