package meshtest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztntest"
)

// TrustDomain is the dev mesh's trust domain.
const TrustDomain = "ztn.test"

// Discard returns a logger that keeps only errors, and writes them nowhere.
func Discard() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// Dev returns the ztnet.Dev of a ztntest mesh in TrustDomain with a quiet
// logger, closed when the test ends; opts come after those defaults.
func Dev(t testing.TB, opts ...ztnet.DevOption) *ztnet.Dev {
	t.Helper()
	return ztntest.NewMesh(t, append([]ztnet.DevOption{ztnet.WithDevTrustDomain(TrustDomain), ztnet.WithLogger(Discard())}, opts...)...).Dev()
}

// Service returns m's service name, closed when the test ends.
func Service(t testing.TB, m *ztnet.Dev, name string, opts ...ztnet.Option) *ztnet.Service {
	t.Helper()
	s, err := m.Service(context.Background(), name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Intentions replaces m's intentions with the service-intentions config
// entries in js (Consul's JSON).
func Intentions(t testing.TB, m *ztnet.Dev, js string) {
	t.Helper()
	entries, err := authz.ParseConfigEntries([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Policy().Set(entries...); err != nil {
		t.Fatal(err)
	}
}

// NoTelemetry returns the options that give a Service OpenTelemetry's no-op
// tracer and meter providers, which turn the adapters' instrumentation off.
func NoTelemetry() []ztnet.Option {
	return []ztnet.Option{ztnet.WithTracerProvider(tracenoop.NewTracerProvider()), ztnet.WithMeterProvider(metricnoop.NewMeterProvider())}
}

// DevSource is a one-hour SVID source of service name in datacenter dc1,
// issued by ca, closed when the test ends.
func DevSource(t testing.TB, ca *certs.DevCA, name string) certs.Source {
	t.Helper()
	src, err := ca.Source(context.Background(), "dc1", name, time.Hour, certs.WithLogger(Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}
