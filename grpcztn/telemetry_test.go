package grpcztn_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/ztnlabs/ztn/ztnet"
)

// noSpan is the type of span a context without one reports.
var noSpan = fmt.Sprintf("%T", trace.SpanFromContext(context.Background()))

// spanSeer is a stats handler installed after grpcztn's own: it records
// whether the RPC's context carries a span (even a no-op or remote one),
// which only an OpenTelemetry handler before it puts there.
type spanSeer struct{ saw chan bool }

func (s spanSeer) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	started := fmt.Sprintf("%T", trace.SpanFromContext(ctx)) != noSpan
	select {
	case s.saw <- started:
	default:
	}
	return ctx
}
func (spanSeer) HandleRPC(context.Context, stats.RPCStats)                         {}
func (spanSeer) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (spanSeer) HandleConn(context.Context, stats.ConnStats)                       {}

// With both of a Service's providers no-op, NewServer and NewClient install
// no OpenTelemetry handler (telemetry that is off costs nothing); with a
// real meter provider they do.
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
			server, cl := spanSeer{make(chan bool, 1)}, spanSeer{make(chan bool, 1)}
			healthServer(t, api, grpc.StatsHandler(server))
			if _, err := client(t, web, "api", grpc.WithStatsHandler(cl)).Check(ctxTimeout(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			if got := <-server.saw; got != tc.want {
				t.Errorf("server: OpenTelemetry handler installed = %v, want %v", got, tc.want)
			}
			if got := <-cl.saw; got != tc.want {
				t.Errorf("client: OpenTelemetry handler installed = %v, want %v", got, tc.want)
			}
		})
	}
}
