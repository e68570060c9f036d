package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// Register makes a Connect-native instance with a TTL check and the
// registration's ID, address, tags and meta; an unspecified host takes the
// node's address; Resolve sees instances come and go; deregistering is
// idempotent.
func TestCatalogRegisterResolve(t *testing.T) {
	srv := testenv.Consul(t)
	client, rec := newClient(t, srv.Addr, "")
	d := newCatalog(t, testConfig(client), WithCheckTTL(3*time.Second), WithDeregisterAfter(90*time.Second))
	ctx := poll.Context(t, 20*time.Second)

	dereg1, err := d.Register(ctx, discovery.Registration{Service: "api", ID: "api-1", Address: "127.0.0.1:7001",
		Tags: []string{"v1"}, Meta: map[string]string{"zone": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	dereg2, err := d.Register(ctx, discovery.Registration{Service: "api", Address: "[::]:7002"})
	if err != nil {
		t.Fatal(err)
	}

	in, err := d.Resolve(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if len(in) == 2 && in[0].ID != "api-1" {
		in = []discovery.Instance{in[1], in[0]} // sorted by ID: the generated one may come first
	}
	if len(in) != 2 || in[0].ID != "api-1" || in[0].Address != "127.0.0.1:7001" || in[0].Meta["zone"] != "a" ||
		!strings.HasPrefix(in[1].ID, "api-") || in[1].Address != srv.Bind+":7002" {
		t.Fatalf("Resolve = %+v", in)
	}

	svc, _, err := client.Agent().Service("api-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Connect == nil || !svc.Connect.Native || !slices.Equal(svc.Tags, []string{"v1"}) || svc.Port != 7001 || svc.Address != "127.0.0.1" {
		t.Fatalf("agent service = %+v (connect %+v)", svc, svc.Connect)
	}
	checks, err := client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	chk := checks["service:api-1"]
	if chk == nil || chk.Type != "ttl" || chk.Status != api.HealthPassing || chk.Output != checkOutputHealthy {
		t.Fatalf("check = %+v", chk)
	}
	// What Consul does not show back: the crash-cleanup delay and the TTL.
	regs := rec.registrations()
	if len(regs) != 2 {
		t.Fatalf("%d registrations sent", len(regs))
	}
	var sent api.AgentServiceRegistration
	if err := json.Unmarshal([]byte(regs[0]), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Check == nil || sent.Check.TTL != "3s" || sent.Check.DeregisterCriticalServiceAfter != "1m30s" || sent.Address != "127.0.0.1" {
		t.Fatalf("registration sent: %s", regs[0])
	}
	var sent2 api.AgentServiceRegistration
	if err := json.Unmarshal([]byte(regs[1]), &sent2); err != nil || sent2.Address != "" {
		t.Fatalf("unspecified host registered with an address: %s", regs[1])
	}

	if err := dereg1(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dereg1(ctx); err != nil {
		t.Fatalf("second deregister: %v", err)
	}
	poll.Eventually(t, 5*time.Second, func() error {
		got, err := resolveIDs(ctx, d, "api")
		if err != nil || strings.Contains(got, "api-1@") || got == "" {
			return fmt.Errorf("resolve after deregistering api-1: %q, %v", got, err)
		}
		return nil
	})
	if err := dereg2(ctx); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, 5*time.Second, func() error {
		if got, err := resolveIDs(ctx, d, "api"); err != nil || got != "" {
			return fmt.Errorf("resolve after deregistering all: %q, %v", got, err)
		}
		return nil
	})

	// An unknown service has no instances and no error.
	if in, err := d.Resolve(ctx, "no-such-service"); err != nil || len(in) != 0 {
		t.Fatalf("unknown service: %v, %v", in, err)
	}
	for _, r := range []discovery.Registration{{Address: "127.0.0.1:1"}, {Service: "x", Address: "nohost"}, {Service: "x", Address: "127.0.0.1:0"}} {
		if _, err := d.Register(ctx, r); err == nil || !strings.HasPrefix(err.Error(), "consul: register") {
			t.Errorf("Register(%+v) = %v", r, err)
		}
	}
}

// The TTL check follows Registration.Healthy: critical with the reason as
// output while it fails (the instance leaves the passing set), passing
// again when it recovers.
func TestCatalogHealthProbe(t *testing.T) {
	srv := testenv.Consul(t)
	client, _ := newClient(t, srv.Addr, "")
	d := newCatalog(t, testConfig(client), WithCheckTTL(time.Second))
	ctx := poll.Context(t, 20*time.Second)
	var broken atomic.Bool
	dereg, err := d.Register(ctx, discovery.Registration{Service: "api", ID: "api-1", Address: "127.0.0.1:7001",
		Healthy: func() error {
			if broken.Load() {
				return errors.New("certificate expired")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer dereg(ctx)
	if got, err := resolveIDs(ctx, d, "api"); err != nil || got != "api-1@127.0.0.1:7001" {
		t.Fatalf("Resolve = %q, %v", got, err)
	}
	broken.Store(true)
	poll.Eventually(t, 3*time.Second, func() error {
		if got, _ := resolveIDs(ctx, d, "api"); got != "" {
			return fmt.Errorf("unhealthy instance still resolved: %q", got)
		}
		return nil
	})
	checks, err := client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks["service:api-1"]; c == nil || c.Status != api.HealthCritical || !strings.Contains(c.Output, "certificate expired") {
		t.Fatalf("check while unhealthy: %+v", c)
	}
	broken.Store(false)
	poll.Eventually(t, 3*time.Second, func() error {
		if got, _ := resolveIDs(ctx, d, "api"); got != "api-1@127.0.0.1:7001" {
			return fmt.Errorf("recovered instance not resolved: %q", got)
		}
		return nil
	})
}

// A process that dies without deregistering stops updating its check: the
// instance leaves the passing set within the TTL, and (long test) Consul
// removes it after DeregisterCriticalServiceAfter.
func TestCatalogCheckLapsesWhenProcessDies(t *testing.T) {
	srv := testenv.Consul(t)
	client, _ := newClient(t, srv.Addr, "")
	ctx := poll.Context(t, 150*time.Second)
	dying, err := NewCatalog(testConfig(client), WithCheckTTL(time.Second), WithLogger(quietLogger))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dying.Register(ctx, discovery.Registration{Service: "api", ID: "api-1", Address: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	// Close stops the heartbeat without deregistering: what Consul sees of
	// a crash.
	if err := dying.Close(); err != nil {
		t.Fatal(err)
	}
	observer := newCatalog(t, testConfig(client))
	t0 := time.Now()
	poll.Eventually(t, 5*time.Second, func() error {
		if got, _ := resolveIDs(ctx, observer, "api"); got != "" {
			return fmt.Errorf("dead instance still passing: %q", got)
		}
		return nil
	})
	t.Logf("dead instance left the passing set after %s", time.Since(t0).Round(10*time.Millisecond))
	if os.Getenv("ZTN_LONG_TESTS") == "" {
		t.Log("set ZTN_LONG_TESTS=1 to wait for Consul to remove the instance (about 90s)")
		return
	}
	poll.Eventually(t, 130*time.Second, func() error {
		svcs, err := client.Agent().Services()
		if err != nil {
			return err
		}
		if _, ok := svcs["api-1"]; ok {
			return errors.New("crashed instance still registered")
		}
		return nil
	})
	t.Logf("Consul removed the crashed instance after %s", time.Since(t0).Round(time.Second))
}

// A watch nobody uses stops; the next Resolve starts it again.
func TestCatalogIdleWatchStops(t *testing.T) {
	srv := testenv.Consul(t)
	client, _ := newClient(t, srv.Addr, "")
	d := newCatalog(t, testConfig(client), WithIdleTimeout(200*time.Millisecond))
	ctx := poll.Context(t, 10*time.Second)
	if _, err := d.Resolve(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if got := d.watching(); !slices.Equal(got, []string{"api"}) {
		t.Fatalf("watching %v", got)
	}
	poll.Eventually(t, 2*time.Second, func() error {
		if got := d.watching(); len(got) != 0 {
			return fmt.Errorf("still watching %v", got)
		}
		return nil
	})
	if _, err := d.Resolve(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if got := d.watching(); !slices.Equal(got, []string{"api"}) {
		t.Fatalf("watching %v after a new Resolve", got)
	}
}

// Changed is closed when the watch sees the instances change (registered,
// deregistered), not when another service changes, and when the watch
// stops; after Close it is nil.
func TestCatalogChanged(t *testing.T) {
	srv := testenv.Consul(t)
	client, _ := newClient(t, srv.Addr, "")
	d := newCatalog(t, testConfig(client), WithIdleTimeout(300*time.Millisecond))
	reg := newCatalog(t, testConfig(client))
	ctx := poll.Context(t, 20*time.Second)
	wait := func(ch <-chan struct{}, what string) time.Duration {
		t.Helper()
		t0 := time.Now()
		select {
		case <-ch:
			return time.Since(t0)
		case <-time.After(5 * time.Second):
			t.Fatalf("Changed not closed: %s", what)
			return 0
		}
	}

	ch := d.Changed("api")
	if _, err := d.Resolve(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	wait(ch, "first answer")
	ch = d.Changed("api")
	t0 := time.Now()
	dereg, err := reg.Register(ctx, discovery.Registration{Service: "api", ID: "api-1", Address: "127.0.0.1:7001"})
	if err != nil {
		t.Fatal(err)
	}
	wait(ch, "register")
	t.Logf("registration seen after %s", time.Since(t0).Round(time.Millisecond))
	if got, err := resolveIDs(ctx, d, "api"); err != nil || got != "api-1@127.0.0.1:7001" {
		t.Fatalf("Resolve after Changed = %q, %v", got, err)
	}
	// Another service's change leaves it open.
	ch = d.Changed("api")
	if _, err := reg.Register(ctx, discovery.Registration{Service: "db", Address: "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("Changed closed by another service's registration")
	case <-time.After(200 * time.Millisecond):
	}
	if err := dereg(ctx); err != nil {
		t.Fatal(err)
	}
	wait(ch, "deregister")
	if got, err := resolveIDs(ctx, d, "api"); err != nil || got != "" {
		t.Fatalf("Resolve after deregistering = %q, %v", got, err)
	}
	// The watch stops when unused: its waiters hear of it.
	ch = d.Changed("api")
	wait(ch, "idle watch stopped")
	if got := d.watching(); len(got) != 0 {
		t.Fatalf("still watching %v", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d.Changed("api") != nil {
		t.Fatal("Changed after Close is not nil")
	}
}

// With ACLs, a token lacking a permission gets an error that names it.
func TestCatalogACLErrors(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulACL(""))
	admin, _ := newClient(t, srv.Addr, srv.Token)
	ctx := poll.Context(t, 20*time.Second)
	pol, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: "api-read", Rules: `service "api" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An instance of api, registered with the management token.
	adminD := newCatalog(t, testConfig(admin))
	dereg, err := adminD.Register(ctx, discovery.Registration{Service: "api", ID: "api-1", Address: "127.0.0.1:7001"})
	if err != nil {
		t.Fatal(err)
	}
	defer dereg(ctx)

	client, _ := newClient(t, srv.Addr, tok.SecretID)
	d := newCatalog(t, testConfig(client))
	_, err = d.Register(ctx, discovery.Registration{Service: "api", Address: "127.0.0.1:7002"})
	if err == nil || !strings.Contains(err.Error(), `lacks service:write on "api"`) || !strings.HasPrefix(err.Error(), "consul: register api") {
		t.Fatalf("Register without service:write: %v", err)
	}
	t.Logf("register: %v", err)
	// service:read without node:read: Consul hides the instances.
	_, err = d.Resolve(ctx, "api")
	if err == nil || !strings.Contains(err.Error(), "node:read") {
		t.Fatalf("Resolve without node:read: %v", err)
	}
	t.Logf("resolve api: %v", err)
	// No service:read at all.
	in, err := d.Resolve(ctx, "db")
	if err == nil || !strings.Contains(err.Error(), `service:read on "db"`) {
		t.Fatalf("Resolve without service:read: %v, %v", in, err)
	}
	t.Logf("resolve db: %v", err)
	// A token Consul does not know.
	bogus, _ := newClient(t, srv.Addr, "00000000-0000-4000-8000-000000000000")
	_, err = newCatalog(t, testConfig(bogus)).Resolve(ctx, "api")
	if err == nil || !strings.Contains(err.Error(), "does not know the ACL token") {
		t.Fatalf("Resolve with an unknown token: %v", err)
	}
}

// Consul answering 5xx: the first Resolve says so; after a good answer the
// last instances stay in use, staleness is exported (metric and log), the
// watch is rate limited, and it recovers when Consul does.
func TestCatalogServerErrors(t *testing.T) {
	srv := testenv.Consul(t)
	direct, _ := newClient(t, srv.Addr, "")
	proxy := testenv.NewFaultProxy(t, srv.Addr)
	client, _ := newClient(t, proxy.Addr, "")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	logger, logs := newLogger()
	cfg := testConfig(client)
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 2*time.Millisecond
	cfg.RateEvery, cfg.RateBurst = 100*time.Millisecond, 2
	d := newCatalog(t, cfg, WithMeterProvider(mp), WithLogger(logger))
	ctx := poll.Context(t, 30*time.Second)

	proxy.Fail(http.StatusInternalServerError)
	_, err := d.Resolve(ctx, "api")
	if err == nil || !strings.Contains(err.Error(), "Consul answered 500") || !strings.HasPrefix(err.Error(), "consul: resolve api") {
		t.Fatalf("first Resolve while Consul answers 500: %v", err)
	}
	if _, err := d.Register(ctx, discovery.Registration{Service: "api", Address: "127.0.0.1:7009"}); err == nil || !strings.Contains(err.Error(), "Consul answered 500") {
		t.Fatalf("Register while Consul answers 500: %v", err)
	}
	// The token bucket bounds the retry rate even with no backoff to speak
	// of: about 10 requests/s (+ the burst of 2).
	before := proxy.Requests()
	time.Sleep(time.Second)
	if n := proxy.Requests() - before; n > 14 {
		t.Fatalf("%d requests in 1s while failing; the rate limit allows about 10", n)
	}

	dereg, err := newCatalog(t, testConfig(direct)).Register(ctx, discovery.Registration{Service: "api", ID: "api-1", Address: "127.0.0.1:7001"})
	if err != nil {
		t.Fatal(err)
	}
	defer dereg(ctx)
	proxy.Heal()
	poll.Eventually(t, 5*time.Second, func() error {
		if got, err := resolveIDs(ctx, d, "api"); got != "api-1@127.0.0.1:7001" {
			return fmt.Errorf("Resolve = %q, %v", got, err)
		}
		return nil
	})
	if s := d.Staleness("api"); s != 0 {
		t.Fatalf("staleness %s while healthy", s)
	}
	if v := instancesGauge(t, reader, "api"); v != 1 {
		t.Fatalf("ztn.discovery.instances{service=api} = %d, want 1", v)
	}

	proxy.Fail(http.StatusServiceUnavailable)
	poll.Eventually(t, 5*time.Second, func() error {
		if s := d.Staleness("api"); s < 200*time.Millisecond {
			return fmt.Errorf("staleness %s", s)
		}
		return nil
	})
	if got, err := resolveIDs(ctx, d, "api"); err != nil || got != "api-1@127.0.0.1:7001" {
		t.Fatalf("Resolve while Consul fails = %q, %v; want the last instances", got, err)
	}
	if v := gaugeValue(t, reader, "ztn.discovery.staleness"); v < 0.2 {
		t.Fatalf("ztn.discovery.staleness = %v", v)
	}
	if !strings.Contains(logs.String(), "consul watch failing; using the last known instances") || !strings.Contains(logs.String(), "Consul answered 503") {
		t.Fatalf("no staleness log:\n%s", logs)
	}
	proxy.Heal()
	poll.Eventually(t, 5*time.Second, func() error {
		if s := d.Staleness("api"); s != 0 {
			return fmt.Errorf("staleness %s after recovery", s)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "consul watch recovered") {
		t.Fatalf("no recovery log:\n%s", logs)
	}
}

// collect reads the metrics r holds.
func collect(t *testing.T, r sdkmetric.Reader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// instancesGauge returns ztn.discovery.instances for service.
func instancesGauge(t *testing.T, r sdkmetric.Reader, service string) int64 {
	t.Helper()
	rm := collect(t, r)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "ztn.discovery.instances" {
				for _, p := range g.DataPoints {
					if v, _ := p.Attributes.Value("service"); v.AsString() == service {
						return p.Value
					}
				}
			}
		}
	}
	t.Fatalf("no ztn.discovery.instances for %s", service)
	return 0
}

func gaugeValue(t *testing.T, r sdkmetric.Reader, name string) float64 {
	t.Helper()
	rm := collect(t, r)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			g, ok := m.Data.(metricdata.Gauge[float64])
			if !ok || len(g.DataPoints) == 0 {
				t.Fatalf("%s: %T %+v", name, m.Data, m.Data)
			}
			return g.DataPoints[0].Value
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A canceled Resolve waiting for the first answer returns at once.
func TestCatalogResolveHonoursContext(t *testing.T) {
	srv := testenv.Consul(t)
	proxy := testenv.NewFaultProxy(t, srv.Addr)
	client, _ := newClient(t, proxy.Addr, "")
	d := newCatalog(t, testConfig(client))
	proxy.Fail(http.StatusInternalServerError)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Resolve(ctx, "api"); err == nil {
		t.Fatal("Resolve with a canceled context succeeded")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resolve(context.Background(), "api"); !errors.Is(err, errClosed) {
		t.Fatalf("Resolve after Close: %v", err)
	}
	if _, err := d.Register(context.Background(), discovery.Registration{Service: "api", Address: "127.0.0.1:1"}); !errors.Is(err, errClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
}
