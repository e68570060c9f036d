package httpztn

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/ztnlabs/ztn/internal/telemetry"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// OpenTelemetry. The server, client and gateway are traced and measured by
// otelhttp with the Service's providers, unless both providers are
// OpenTelemetry's no-op ones (trace/noop and metric/noop given to
// ztnet.New): then no otelhttp layer is installed at all.

// instrumentHandler wraps h in otelhttp's handler named operation, unless
// svc's telemetry is off.
func instrumentHandler(svc *ztnet.Service, h http.Handler, operation string) http.Handler {
	if telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		return h
	}
	return otelhttp.NewHandler(h, operation,
		otelhttp.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
		otelhttp.WithMeterProvider(ztnhook.Of(svc).MeterProvider()))
}

// instrumentTransport wraps t in otelhttp's transport, unless svc's
// telemetry is off.
func instrumentTransport(svc *ztnet.Service, t *Transport) http.RoundTripper {
	if telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		return t
	}
	return instrumentedTransport{
		RoundTripper: otelhttp.NewTransport(t,
			otelhttp.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
			otelhttp.WithMeterProvider(ztnhook.Of(svc).MeterProvider())),
		t: t,
	}
}

// instrumentedTransport is otelhttp's transport around a Transport, with
// the Transport's CloseIdleConnections, which otelhttp's does not have:
// http.Client.CloseIdleConnections calls it when the RoundTripper has it,
// and otherwise does nothing. (CloseIdleConnections is the one optional
// method net/http looks for on a client's RoundTripper; CancelRequest is
// obsolete, replaced by the request's context.)
type instrumentedTransport struct {
	http.RoundTripper
	t *Transport
}

// CloseIdleConnections closes the Transport's idle connections.
func (it instrumentedTransport) CloseIdleConnections() { it.t.CloseIdleConnections() }
