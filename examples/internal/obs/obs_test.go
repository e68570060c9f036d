package obs

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/internal/test/zerotest"
)

func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestTraceEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name, opt string
		env       []string
		want      string
		err       bool
	}{
		{name: "none", want: ""},
		{name: "option", opt: "http://127.0.0.1:4318", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:1"}, want: "http://127.0.0.1:4318/v1/traces"},
		{name: "base", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/otlp/"}, want: "https://collector:4318/otlp/v1/traces"},
		{name: "signal", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/traces"}, want: "http://b:2/traces"},
		{name: "no scheme", env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"}, err: true},
		{name: "grpc scheme", opt: "grpc://127.0.0.1:4317", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := traceEndpoint(config{endpoint: tc.opt, getenv: env(tc.env...)})
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("traceEndpoint = %q, %v; want %q, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// scrape returns what h serves at /metrics.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestSetupWithoutEndpoint(t *testing.T) {
	var logs bytes.Buffer
	ctx := t.Context()
	tel, err := Setup(ctx, "svc-a", WithGetenv(env()), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if tel.Endpoint != "" || strings.Count(logs.String(), "traces are not exported") != 1 {
		t.Errorf("Endpoint %q, log %q; want none, said once", tel.Endpoint, logs.String())
	}
	_, span := tel.TracerProvider.Tracer("t").Start(ctx, "s")
	if span.SpanContext().IsValid() {
		t.Error("the tracer without an endpoint records spans")
	}
	span.End()

	// Two services in one process: each its own registry.
	other, err := Setup(ctx, "svc-b", WithGetenv(env()), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tel.MeterProvider.Meter("t").Int64Counter("obs.test.requests")
	c.Add(ctx, 3)
	got := scrape(t, tel.Handler())
	if !strings.Contains(got, "obs_test_requests_total") || !strings.Contains(got, `service_name="svc-a"`) {
		t.Errorf("svc-a's /metrics lacks its counter or service name:\n%s", got)
	}
	if got := scrape(t, other.Handler()); strings.Contains(got, "obs_test_requests") {
		t.Errorf("svc-b's /metrics shows svc-a's counter:\n%s", got)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := other.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

func TestSetupErrors(t *testing.T) {
	if _, err := Setup(t.Context(), ""); err == nil || !strings.HasPrefix(err.Error(), "obs: ") {
		t.Errorf("empty service: err = %v", err)
	}
	_, err := Setup(t.Context(), "svc", WithOTLPEndpoint("localhost:4318"), WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil || !strings.Contains(err.Error(), "want http(s)://host:port") {
		t.Errorf("endpoint without scheme: err = %v", err)
	}
}

// TestSetupExportsToJaeger: a span reaches a real Jaeger, under the
// service's name, by the time Shutdown returns.
func TestSetupExportsToJaeger(t *testing.T) {
	j := testenv.Jaeger(t)
	ctx := t.Context()
	tel, err := Setup(ctx, "svc-traced", WithGetenv(env("OTEL_EXPORTER_OTLP_ENDPOINT", j.OTLPEndpoint())), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if tel.Endpoint != j.OTLPEndpoint()+"/v1/traces" {
		t.Errorf("Endpoint = %q", tel.Endpoint)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(ctx, "obs-probe")
	span.End()
	if err := tel.Shutdown(context.WithoutCancel(ctx)); err != nil {
		t.Fatal(err)
	}
	// Jaeger's batch processor stores what it received a moment later.
	trs := j.WaitTraces("svc-traced", func(trs []testenv.JaegerTrace) bool { return len(trs) > 0 })
	if len(trs) != 1 || len(trs[0].Spans) != 1 || trs[0].Spans[0].OperationName != "obs-probe" ||
		trs[0].Spans[0].TraceID != span.SpanContext().TraceID().String() {
		t.Errorf("Jaeger has %+v; want the one obs-probe span", trs)
	}
}

func TestZeroValues(t *testing.T) {
	zerotest.Methods(t, &Telemetry{}, (*Telemetry)(nil))
	rec := httptest.NewRecorder()
	(&Telemetry{}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("zero Telemetry's /metrics: %d", rec.Code)
	}
}
