package grpcztn_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

// A client created before its server has found no instance; when the
// server starts, the catalog tells the client's resolver at once, and the
// first RPC gets through well within the resolver's 1s poll. With the dev
// mesh's catalog (discovery.Static) and with Consul's (consul.Catalog).
func TestResolverPushesNewInstances(t *testing.T) {
	t.Run("static", func(t *testing.T) {
		m := meshtest.Dev(t)
		meshtest.Intentions(t, m, allowWebToAPI)
		testFirstRPCAfterServerStarts(t, meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web"))
	})
	t.Run("consul", func(t *testing.T) {
		srv := testenv.Consul(t)
		catalog := func() *consul.Catalog {
			c, err := consul.NewCatalog(consul.Config{Client: meshtest.ConsulClient(t, srv.Addr)}, consul.WithLogger(discard))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		m := meshtest.Dev(t)
		meshtest.Intentions(t, m, allowWebToAPI)
		api := meshtest.Service(t, m, "api", ztnet.WithResolver(catalog()))
		web := meshtest.Service(t, m, "web", ztnet.WithResolver(catalog()))
		testFirstRPCAfterServerStarts(t, api, web)
	})
}

func testFirstRPCAfterServerStarts(t *testing.T, api, web *ztnet.Service) {
	t.Helper()
	ctx := poll.Context(t, 10*time.Second)
	cc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	// The resolver has run and found no instance: the next poll is about
	// a second away.
	cc.Connect()
	for st := cc.GetState(); st != connectivity.TransientFailure; st = cc.GetState() {
		if !cc.WaitForStateChange(ctx, st) {
			t.Fatalf("client state %s: never failed to resolve", st)
		}
	}
	t0 := time.Now()
	healthServer(t, api)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(cc).Check(rctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("first RPC %s after the server started", took.Round(time.Millisecond))
	if took > 300*time.Millisecond {
		t.Fatalf("first RPC %s after the server started; want < 300ms", took.Round(time.Millisecond))
	}
}
