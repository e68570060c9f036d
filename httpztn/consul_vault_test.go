package httpztn_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// Per-request L7 intentions from a real Consul, identities from a real
// Vault: api's service-defaults say Protocol "http" and its
// service-intentions, written through Consul's API, give web ordered
// permissions and every other source an L4 deny. api authorizes with
// authz.NewConsul, web finds api with discovery.NewConsul, and every
// certificate is signed by Vault's PKI (vault.Bootstrap, vault.New of
// certs/vault). Over HTTP/2 and HTTP/1.1:
//
//   - The first matching permission decides: /admin is denied by the
//     permission before the one that allows GETs with the tenant header.
//   - When web's L7 intention matches but none of its permissions does, the
//     default decides (deny, or allow with WithConsulDefaultAllow), not the
//     lower-precedence "*" deny intention.
//   - batch, which only "*" matches, is refused at connection level.
//   - A change of the intentions in Consul decides the very next requests,
//     on the connection already open.
func TestConsulVaultL7(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	perms := func(tenant string) []*consul.IntentionPermission {
		return []*consul.IntentionPermission{
			{Action: consul.IntentionActionDeny, HTTP: &consul.IntentionHTTPPermission{PathPrefix: "/admin"}},
			{Action: consul.IntentionActionAllow, HTTP: &consul.IntentionHTTPPermission{
				PathPrefix: "/", Methods: []string{"GET"},
				Header: []consul.IntentionHTTPHeaderPermission{{Name: "X-Tenant", Exact: tenant}}}},
		}
	}
	m := meshtest.NewL7Mesh(t, ctx, "http", perms("blue")...)
	api, api2, web, web2, batch := m.API, m.API2, m.Web, m.Web2, m.Batch
	setIntentions := func(tenant string) { m.SetIntentions(t, perms(tenant)...) }
	accepts := serveCounting(t, api, whoami)
	serveCounting(t, api2, whoami)

	for _, proto := range []struct {
		name string
		opts []httpztn.Option
	}{{"HTTP/2.0", nil}, {"HTTP/1.1", []httpztn.Option{httpztn.WithHTTP1()}}} {
		c, c2 := newClient(t, web, proto.opts...), newClient(t, web2, proto.opts...)
		want := func(c *http.Client, method, url, tenant string, code int, body string) {
			t.Helper()
			var hdr []string
			if tenant != "" {
				hdr = []string{"X-Tenant", tenant}
			}
			if got, b := do(t, c, method, url, hdr...); got != code || !strings.Contains(b, body) {
				t.Fatalf("%s %s %s, X-Tenant %q: %d %q; want %d containing %q", proto.name, method, url, tenant, got, b, code, body)
			}
		}
		want(c, "GET", "http://api/items", "blue", 200, proto.name+" spiffe://ztn.test/ns/default/dc/dc1/svc/web /items")
		want(c, "GET", "http://api/admin/users", "blue", 403, "L7 intention web → api: permission 1 (prefix /admin) denies")
		want(c, "GET", "http://api/items", "", 403, "L7 intention web → api: no permission matched (default deny)")
		want(c, "DELETE", "http://api/items", "blue", 403, "no permission matched (default deny)")
		want(c2, "DELETE", "http://api/items", "blue", 200, "/items") // default allow: the "*" deny does not apply
		want(c2, "GET", "http://api/admin", "blue", 403, "permission 1")
	}
	_, err := newClient(t, batch).Get("http://api/items")
	var denied *ztnet.DeniedError
	if !errors.As(err, &denied) || !strings.Contains(denied.Reason, "intention * → api denies") {
		t.Fatalf("batch: err = %v, want refused by the \"*\" intention", err)
	}

	// A change in Consul decides the next requests on the open connection.
	n := accepts.Load()
	c := newClient(t, web)
	want := func(tenant string, code int) bool {
		got, _ := do(t, c, "GET", "http://api/items", "X-Tenant", tenant)
		return got == code
	}
	if !want("blue", 200) || !want("green", 403) {
		t.Fatal("before the change: blue must be allowed, green denied")
	}
	setIntentions("green")
	poll.WaitFor(t, 10*time.Second, func() bool { return want("green", 200) })
	if !want("blue", 403) {
		t.Fatal("after the change: blue still allowed")
	}
	if got := accepts.Load() - n; got != 1 {
		t.Errorf("api accepted %d connections for the client, want 1: the change must not need a new one", got)
	}
}

// serveCounting serves h for svc on an httpztn listener and returns the
// count of connections it accepted.
func serveCounting(t *testing.T, svc *ztnet.Service, h http.Handler) *atomic.Int64 {
	l, err := httpztn.Listen(context.Background(), svc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &meshtest.CountingListener{Listener: l}
	srv := httpztn.NewServer(svc, h)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(cl) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return &cl.N
}
