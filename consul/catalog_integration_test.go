package consul_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// countingTransport counts an api.Client's requests.
type countingTransport struct {
	base *http.Transport
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func apiClient(t testing.TB, addr string) (*api.Client, *countingTransport) {
	t.Helper()
	ct := &countingTransport{base: &http.Transport{Proxy: nil}}
	t.Cleanup(ct.base.CloseIdleConnections)
	c, err := api.NewClient(&api.Config{Address: addr, HttpClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	return c, ct
}

// fast is a Config for c with fast retries.
func fast(c *api.Client) consul.Config {
	return consul.Config{Client: c, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
}

func newCatalog(t testing.TB, c *api.Client, opts ...consul.CatalogOption) *consul.Catalog {
	t.Helper()
	d, err := consul.NewCatalog(fast(c), append([]consul.CatalogOption{consul.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func newIntentions(t testing.TB, c *api.Client, dest string, opts ...consul.IntentionsOption) *consul.Intentions {
	t.Helper()
	a, err := consul.NewIntentions(fast(c), dest, append([]consul.IntentionsOption{consul.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

var devCA = sync.OnceValues(func() (*certs.DevCA, error) {
	return certs.NewDevCA(spiffeid.RequireTrustDomainFromString("ztn.test"))
})

// service makes a ztnet Service named name with a dev CA identity.
func service(t testing.TB, name string, opts ...ztnet.Option) *ztnet.Service {
	t.Helper()
	ca, err := devCA()
	if err != nil {
		t.Fatal(err)
	}
	ctx := poll.Context(t, 10*time.Second)
	src, err := ca.Source(ctx, "dc1", name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	opts = append([]ztnet.Option{ztnet.WithSource(src), ztnet.WithLogger(quiet)}, opts...)
	s, err := ztnet.New(ctx, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serve accepts on l until it closes; each connection gets tag and a
// newline, then an echo of what it sends.
func serve(l net.Listener, tag string) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := fmt.Fprintln(c, tag); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// call dials service from s and returns the tag of the instance it reached,
// after checking an echo.
func call(ctx context.Context, s *ztnet.Service, service string) (string, error) {
	c, err := s.Dial(ctx, service)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return readTag(c)
}

func readTag(c net.Conn) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var tag string
	if _, err := fmt.Fscanln(c, &tag); err != nil {
		return "", fmt.Errorf("read tag: %w", err)
	}
	if err := echo(c); err != nil {
		return "", err
	}
	return tag, nil
}

func echo(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return fmt.Errorf("echo write: %w", err)
	}
	var got string
	if _, err := fmt.Fscanln(c, &got); err != nil || got != "ping" {
		return fmt.Errorf("echo read: %q, %v", got, err)
	}
	return nil
}

func allow(t testing.TB, c *api.Client, dest string, sources map[string]string) {
	t.Helper()
	e := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: dest}
	for name, action := range sources {
		e.Sources = append(e.Sources, &api.SourceIntention{Name: name, Action: api.IntentionAction(action)})
	}
	if err := consul.RetryWrite(func() error { _, _, err := c.ConfigEntries().Set(e, nil); return err }); err != nil {
		t.Fatalf("write intentions for %s: %v", dest, err)
	}
}

// Once the watch is warm, Dial reads the cache: 60 Dials make no request to
// Consul, and are spread evenly over the healthy instances (one of them
// listening on the unspecified address, registered with the node's).
func TestCatalogDialMakesNoRequests(t *testing.T) {
	srv := testenv.Consul(t)
	regClient, _ := apiClient(t, srv.Addr)
	dialClient, counter := apiClient(t, srv.Addr)
	reg := newCatalog(t, regClient)
	res := newCatalog(t, dialClient)
	policy := authz.NewPolicy()
	if err := policy.Set(authz.ConfigEntry{Name: "api", Sources: []authz.SourceIntention{{Name: "web", Action: authz.ActionAllow}}}); err != nil {
		t.Fatal(err)
	}
	apiSvc := service(t, "api", ztnet.WithAuthorizer(policy), ztnet.WithRegistrar(reg))
	ctx := poll.Context(t, 30*time.Second)
	for i, addr := range []string{"127.0.0.1:0", "127.0.0.1:0", ":0"} {
		l, err := apiSvc.Listen(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		serve(l, fmt.Sprintf("api-%d", i))
	}
	web := service(t, "web", ztnet.WithResolver(res))

	poll.Eventually(t, 5*time.Second, func() error {
		in, err := res.Resolve(ctx, "api")
		if err != nil || len(in) != 3 {
			return fmt.Errorf("resolve: %v, %v", in, err)
		}
		return nil
	})
	if _, err := call(ctx, web, "api"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the watch's next blocking query start
	before := counter.n.Load()
	hits := map[string]int{}
	for range 60 {
		tag, err := call(ctx, web, "api")
		if err != nil {
			t.Fatal(err)
		}
		hits[tag]++
	}
	if n := counter.n.Load() - before; n != 0 {
		t.Fatalf("60 warm Dials made %d requests to Consul", n)
	}
	if len(hits) != 3 || hits["api-0"] != 20 || hits["api-1"] != 20 || hits["api-2"] != 20 {
		t.Fatalf("dials per instance: %v; want 20 each", hits)
	}
}

// An instance that is registered and passing but does not answer: every
// Dial still succeeds on another instance within its context, and the
// dead one is ejected after EjectAfter failures.
func TestCatalogDialSkipsAndEjectsDeadInstance(t *testing.T) {
	srv := testenv.Consul(t)
	client, _ := apiClient(t, srv.Addr)
	balancer := discovery.NewBalancer(discovery.WithEjection(2, time.Minute, 0))
	d := newCatalog(t, client, consul.WithBalancer(balancer))
	policy := authz.NewPolicy(authz.WithDefaultAllow())
	if err := policy.Set(); err != nil {
		t.Fatal(err)
	}
	ctx := poll.Context(t, 30*time.Second)
	apiSvc := service(t, "api", ztnet.WithAuthorizer(policy), ztnet.WithRegistrar(d))
	for i := range 2 {
		l, err := apiSvc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serve(l, fmt.Sprintf("api-%d", i))
	}
	// A dead instance: its port is closed, its check passing.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	dereg, err := d.Register(ctx, discovery.Registration{Service: "api", ID: "api-dead", Address: deadAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer dereg(ctx)

	web := service(t, "web", ztnet.WithResolver(d))
	poll.Eventually(t, 5*time.Second, func() error {
		in, err := d.Resolve(ctx, "api")
		if err != nil || len(in) != 3 {
			return fmt.Errorf("resolve: %v, %v", in, err)
		}
		return nil
	})
	for i := range 30 {
		if _, err := call(ctx, web, "api"); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	ej := balancer.Ejected("api")
	if len(ej) != 1 || ej[0].ID != "api-dead" || ej[0].Address != deadAddr {
		t.Fatalf("ejected: %+v", ej)
	}
	in, _ := d.Resolve(ctx, "api")
	if order := d.Pick("api", in); order[len(order)-1].ID != "api-dead" {
		t.Fatalf("dead instance not tried last: %+v", order)
	}
}

// The Consul agent is killed mid-run: established connections carry on,
// new Dials use the cached instances and intentions (allowed and denied
// alike), staleness shows; when the agent is back (empty: dev mode) the
// instance registers again and both watches resume and follow changes.
func TestCatalogAgentOutage(t *testing.T) {
	srv := testenv.Consul(t)
	client, _ := apiClient(t, srv.Addr)
	allow(t, client, "api", map[string]string{"web": "allow", "intruder": "deny"})
	ctx := poll.Context(t, 60*time.Second)

	// A short TTL: the heartbeat (every TTL/3) registers the instance again
	// soon after the agent comes back without it.
	reg := newCatalog(t, client, consul.WithCheckTTL(3*time.Second))
	res := newCatalog(t, client)
	az := newIntentions(t, client, "api")
	if err := az.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	apiSvc := service(t, "api", ztnet.WithAuthorizer(az), ztnet.WithRegistrar(reg))
	l, err := apiSvc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(l, "api")
	web := service(t, "web", ztnet.WithResolver(res))
	intruder := service(t, "intruder", ztnet.WithResolver(res))

	poll.Eventually(t, 5*time.Second, func() error { _, err := call(ctx, web, "api"); return err })
	if _, err := call(ctx, intruder, "api"); !isDenied(err) {
		t.Fatalf("intruder before the outage: %v", err)
	}
	open, err := web.Dial(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := readTag(open); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	poll.Eventually(t, 5*time.Second, func() error {
		if res.Staleness("api") == 0 || az.Staleness() == 0 {
			return fmt.Errorf("staleness: discovery %s, authz %s", res.Staleness("api"), az.Staleness())
		}
		return nil
	})
	if err := echo(open); err != nil {
		t.Fatalf("established connection during the outage: %v", err)
	}
	for i := range 20 {
		if _, err := call(ctx, web, "api"); err != nil {
			t.Fatalf("dial %d during the outage: %v", i, err)
		}
	}
	if _, err := call(ctx, intruder, "api"); !isDenied(err) {
		t.Fatalf("intruder during the outage: %v", err)
	}
	if err := az.Err(); err == nil || !strings.Contains(err.Error(), "Consul unreachable") {
		t.Fatalf("authz error during the outage: %v", err)
	}
	if err := echo(open); err != nil {
		t.Fatalf("established connection during the outage: %v", err)
	}

	srv.Start() // empty state
	allow(t, client, "api", map[string]string{"web": "allow", "intruder": "allow"})
	poll.Eventually(t, 10*time.Second, func() error {
		_, err := call(ctx, intruder, "api")
		return err
	})
	poll.Eventually(t, 5*time.Second, func() error {
		if res.Staleness("api") != 0 || az.Staleness() != 0 || az.Err() != nil {
			return fmt.Errorf("staleness after the outage: discovery %s, authz %s (%v)", res.Staleness("api"), az.Staleness(), az.Err())
		}
		return nil
	})
	poll.Eventually(t, 5*time.Second, func() error { _, err := call(ctx, web, "api"); return err })
}

func isDenied(err error) bool {
	_, ok := errors.AsType[*ztnet.DeniedError](err)
	return ok
}

// A 3-server cluster loses its leader during steady Dials from clients
// talking to a surviving server: not one Dial fails, and the watches work
// on once a new leader is elected.
func TestCatalogClusterLeaderLoss(t *testing.T) {
	cluster := testenv.NewConsulCluster(t, 3)
	leader := cluster.Leader()
	if leader < 0 {
		t.Fatal("no leader")
	}
	follower := cluster.Members[(leader+1)%3]
	client, _ := apiClient(t, follower.Addr)
	allow(t, client, "api", map[string]string{"web": "allow"})
	ctx := poll.Context(t, 60*time.Second)

	d := newCatalog(t, client)
	az := newIntentions(t, client, "api")
	if err := az.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	apiSvc := service(t, "api", ztnet.WithAuthorizer(az), ztnet.WithRegistrar(d))
	for i := range 2 {
		l, err := apiSvc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		serve(l, fmt.Sprintf("api-%d", i))
	}
	web := service(t, "web", ztnet.WithResolver(d))
	poll.Eventually(t, 10*time.Second, func() error {
		in, err := d.Resolve(ctx, "api")
		if err != nil || len(in) != 2 {
			return fmt.Errorf("resolve: %v, %v", in, err)
		}
		return nil
	})

	var dials, failures atomic.Int64
	var (
		errMu    sync.Mutex
		firstErr error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := call(dctx, web, "api")
				cancel()
				dials.Add(1)
				if err != nil {
					failures.Add(1)
					errMu.Lock()
					firstErr = cmp.Or(firstErr, err)
					errMu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	cluster.Kill(leader)
	next := cluster.WaitLeader()
	t.Logf("killed leader %s; %s elected after %s", cluster.Members[leader].Name, cluster.Members[next].Name, time.Since(t0).Round(time.Millisecond))

	// The watches work on: a third instance appears, an intention change
	// is followed.
	l3, err := apiSvc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(l3, "api-2")
	poll.Eventually(t, 10*time.Second, func() error {
		in, err := d.Resolve(ctx, "api")
		if err != nil || len(in) != 3 {
			return fmt.Errorf("resolve after failover: %v, %v", in, err)
		}
		return nil
	})
	allow(t, client, "api", map[string]string{"web": "allow", "other": "deny"})
	poll.Eventually(t, 10*time.Second, func() error {
		if len(az.Intentions()) != 2 {
			return fmt.Errorf("intentions after failover: %v", az.Intentions())
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d dials, %d failed", dials.Load(), failures.Load())
	if failures.Load() != 0 {
		errMu.Lock()
		defer errMu.Unlock()
		t.Fatalf("%d of %d dials failed; first: %v", failures.Load(), dials.Load(), firstErr)
	}
	if dials.Load() < 50 {
		t.Fatalf("only %d dials", dials.Load())
	}
}
