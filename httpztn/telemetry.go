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

// instrumentationName names the meter of httpztn's own metrics
// (ztn.http.retries).
const instrumentationName = "github.com/ztnlabs/ztn/httpztn"

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

// instrument wraps rt in otelhttp's transport, unless svc's telemetry is
// off.
func instrument(svc *ztnet.Service, rt http.RoundTripper) http.RoundTripper {
	if telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		return rt
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(ztnhook.Of(svc).TracerProvider()),
		otelhttp.WithMeterProvider(ztnhook.Of(svc).MeterProvider()))
}
