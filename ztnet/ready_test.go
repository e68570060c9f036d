package ztnet

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// Ready says why a Service cannot serve: a policy that denies everything
// until it is set, a certificate source that has nothing usable, Close.
func TestReady(t *testing.T) {
	m := newTestMesh(t)
	m.allow(t, "web->api")
	web := m.service(t, "web")
	if err := web.Ready(); err != nil {
		t.Fatalf("dev service: Ready() = %v", err)
	}

	unsynced := m.service(t, "api", WithAuthorizer(authz.NewPolicy()))
	if err := unsynced.Ready(); err == nil || err.Error() != "ztnet: api: authz: no intentions set or loaded yet: denying everything" {
		t.Fatalf("policy never set: Ready() = %v", err)
	}

	src, err := m.CA().Source(context.Background(), "dc1", "batch", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	noCert := m.service(t, "batch", WithSource(src))
	_ = src.Close()
	if err := noCert.Ready(); err == nil || !strings.Contains(err.Error(), "ztnet: batch: no usable certificate: certs: source closed") {
		t.Fatalf("source closed: Ready() = %v", err)
	}

	_ = web.Close()
	if err := web.Ready(); err == nil || err.Error() != "ztnet: web: closed" {
		t.Fatalf("after Close: Ready() = %v", err)
	}
}

// A listener's health check in Consul follows Ready: critical, with the
// reason, while the policy denies everything; passing once it is set.
func TestListenerHealthFollowsReady(t *testing.T) {
	srv := testenv.Consul(t)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: srv.Addr, HttpClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := consul.NewCatalog(consul.Config{Client: client}, consul.WithCheckTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	m := newTestMesh(t)
	policy := authz.NewPolicy()
	api1 := m.service(t, "api", WithAuthorizer(policy), WithRegistrar(reg))
	listen(t, api1)

	check := func(want, output string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var last string
		for time.Now().Before(deadline) {
			// The agent's view: it syncs output-only changes to the
			// catalog lazily (check_update_interval).
			checks, err := client.Agent().ChecksWithFilter(`ServiceName == "api"`)
			last = fmt.Sprintf("%v %v", checks, err)
			for _, c := range checks {
				if c.Status == want && strings.Contains(c.Output, output) {
					return
				}
				last = c.Status + ": " + c.Output
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("check of api: %s, want %s with %q", last, want, output)
	}
	check(api.HealthCritical, "no intentions set or loaded yet")
	if err := policy.Set(); err != nil {
		t.Fatal(err)
	}
	check(api.HealthPassing, "ztn: serving")
}
