package grpcztn_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// Per-RPC L7 intentions from a real Consul, identities from a real Vault:
// api's service-defaults say Protocol "grpc" and its service-intentions,
// written through Consul's API, give web ordered permissions and every
// other source an L4 deny. api authorizes with authz.NewConsul, web finds
// api with discovery.NewConsul, and every certificate is signed by Vault's
// PKI (vault.Bootstrap, vault.New of certs/vault).
//
//   - The first matching permission decides: Watch is denied by the
//     permission before the one that allows the Health service.
//   - When web's L7 intention matches but none of its permissions does, the
//     default decides (deny, or allow with WithConsulDefaultAllow), not the
//     lower-precedence "*" deny intention.
//   - batch, which only "*" matches, is refused at connection level.
//   - A change of the intentions in Consul decides the very next RPCs, on
//     the connection already open.
func TestConsulVaultL7(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	perms := func(tenant string) []*consul.IntentionPermission {
		return []*consul.IntentionPermission{
			{Action: consul.IntentionActionDeny, HTTP: &consul.IntentionHTTPPermission{PathExact: "/grpc.health.v1.Health/Watch"}},
			{Action: consul.IntentionActionAllow, HTTP: &consul.IntentionHTTPPermission{
				PathPrefix: "/grpc.health.v1.Health/", Methods: []string{"POST"},
				Header: []consul.IntentionHTTPHeaderPermission{{Name: "x-tenant", Exact: tenant}}}},
		}
	}
	m := meshtest.NewL7Mesh(t, ctx, "grpc", perms("blue")...)
	api, api2, web, web2, batch := m.API, m.API2, m.Web, m.Web2, m.Batch
	setIntentions := func(tenant string) { m.SetIntentions(t, perms(tenant)...) }
	accepts := serveHealth(t, api)
	serveHealth(t, api2)

	blue := func() context.Context {
		return metadata.AppendToOutgoingContext(poll.Context(t, 5*time.Second), "x-tenant", "blue")
	}
	green := func() context.Context {
		return metadata.AppendToOutgoingContext(poll.Context(t, 5*time.Second), "x-tenant", "green")
	}
	plain := func() context.Context { return poll.Context(t, 5*time.Second) }
	check := func(hc healthpb.HealthClient, ctx context.Context) error {
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	watch := func(hc healthpb.HealthClient, ctx context.Context) error {
		s, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}

	hc, hc2 := client(t, web, "api"), client(t, web2, "api")
	if err := check(hc, blue()); err != nil {
		t.Fatalf("web Check, x-tenant blue: %v", err)
	}
	wantStatus(t, watch(hc, blue()), codes.PermissionDenied, "L7 intention web → api: permission 1 (/grpc.health.v1.Health/Watch) denies")
	wantStatus(t, check(hc, plain()), codes.PermissionDenied, "L7 intention web → api: no permission matched (default deny)")
	if err := check(hc2, plain()); err != nil {
		t.Fatalf("web Check without x-tenant under default allow: %v (the \"*\" deny must not apply)", err)
	}
	wantStatus(t, watch(hc2, blue()), codes.PermissionDenied, "permission 1")
	wantStatus(t, check(client(t, batch, "api"), blue()), codes.PermissionDenied, "intention * → api denies")

	// A change in Consul decides the next RPCs on the open connection.
	setIntentions("green")
	poll.WaitFor(t, 10*time.Second, func() bool { return check(hc, green()) == nil })
	wantStatus(t, check(hc, blue()), codes.PermissionDenied, "no permission matched (default deny)")
	if n := accepts.Load(); n != 1 {
		t.Errorf("api accepted %d connections, want 1: the change must not need a new one", n)
	}
}

// serveHealth serves the health service of svc on a grpcztn listener and
// returns the count of connections it accepted.
func serveHealth(t *testing.T, svc *ztnet.Service) *atomic.Int64 {
	l, err := grpcztn.Listen(context.Background(), svc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &meshtest.CountingListener{Listener: l}
	srv := grpcztn.NewServer(svc)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(cl) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return &cl.N
}
