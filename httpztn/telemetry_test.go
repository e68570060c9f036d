package httpztn_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ztnlabs/ztn/ztnet"
)

// noSpan is the type of span a context without one reports.
var noSpan = fmt.Sprintf("%T", trace.SpanFromContext(context.Background()))

// With both of a Service's providers no-op, NewServer and NewClient install
// no otelhttp layer (telemetry that is off costs nothing); with a real meter
// provider they do.
func TestTelemetryOffInstallsNoHandler(t *testing.T) {
	sdk := sdkmetric.NewMeterProvider()
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	for _, tc := range []struct {
		name string
		opts []ztnet.Option
		want bool
	}{
		{"noop-providers", []ztnet.Option{ztnet.WithTracerProvider(tracenoop.NewTracerProvider()), ztnet.WithMeterProvider(metricnoop.NewMeterProvider())}, false},
		{"real-meter-provider", []ztnet.Option{ztnet.WithTracerProvider(tracenoop.NewTracerProvider()), ztnet.WithMeterProvider(sdk)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh(t)
			intentions(t, m, allowWebToAPI)
			api, err := m.Service(context.Background(), "api", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = api.Close() })
			web, err := m.Service(context.Background(), "web", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = web.Close() })
			// Only an otelhttp handler in front puts a span (even a no-op
			// one) in the request's context.
			serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, fmt.Sprintf("%T", trace.SpanFromContext(r.Context())) != noSpan)
			}))
			c := newClient(t, web)
			code, body := do(t, c, "GET", "http://api/")
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			if body != fmt.Sprint(tc.want) {
				t.Errorf("server: otelhttp handler installed = %s, want %v", body, tc.want)
			}
			if _, got := c.Transport.(*otelhttp.Transport); got != tc.want {
				t.Errorf("client: otelhttp transport installed = %v, want %v", got, tc.want)
			}
		})
	}
}
