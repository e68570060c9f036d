package grpcztn_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// spanSeer is a stats handler installed after grpcztn's own: it records
// whether the RPC's context carries a span, which only an OpenTelemetry
// handler before it puts there.
type spanSeer struct{ saw chan bool }

func (s spanSeer) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	started := meshtest.HasSpan(ctx)
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
	for _, tc := range meshtest.TelemetryCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			m := meshtest.Dev(t)
			meshtest.Intentions(t, m, allowWebToAPI)
			api, web := meshtest.Service(t, m, "api", tc.Opts...), meshtest.Service(t, m, "web", tc.Opts...)
			server, cl := spanSeer{make(chan bool, 1)}, spanSeer{make(chan bool, 1)}
			healthServer(t, api, grpc.StatsHandler(server))
			if _, err := client(t, web, "api", grpc.WithStatsHandler(cl)).Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			if got := <-server.saw; got != tc.Instrumented {
				t.Errorf("server: OpenTelemetry handler installed = %v, want %v", got, tc.Instrumented)
			}
			if got := <-cl.saw; got != tc.Instrumented {
				t.Errorf("client: OpenTelemetry handler installed = %v, want %v", got, tc.Instrumented)
			}
		})
	}
}

// An RPC's client span (web) and server span (api) carry both ends' SPIFFE
// IDs, and the server's span is the client's child: the trace context
// crossed as traceparent, with each service's own tracer provider and no
// global propagator set.
func TestRPCSpansCarryIDsAndPropagate(t *testing.T) {
	apiRec, webRec := meshtest.NewRecorder(t), meshtest.NewRecorder(t)
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api := meshtest.Service(t, m, "api", ztnet.WithTracerProvider(apiRec))
	web := meshtest.Service(t, m, "web", ztnet.WithTracerProvider(webRec))
	healthServer(t, api)
	if _, err := client(t, web, "api").Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	meshtest.CheckRequestSpans(t, webRec, apiRec, web, api)
}
