package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelbtest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

var httpClient = &http.Client{Timeout: 20 * time.Second}

// get GETs url and returns its body, or an error unless the answer is 200.
func getBody(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, b)
	}
	return string(b), nil
}

func get(ctx context.Context, url string) error {
	_, err := getBody(ctx, url)
	return err
}

// Yelb in mesh mode, each component a process of its own on a real Consul
// and Vault, the ui (trust domain frontend.test) and the app servers
// (backend.test) federated, the app servers on real Postgres and Redis with
// their Vault certificate: the API table through gateway → ui → appserver;
// votes survive an app server's restart; each store's outage fails only its
// endpoints, which recover without a restart; who may reach what; a
// browser votes; kill -9 of one of two app servers under load fails no
// request.
func TestMesh(t *testing.T) {
	f := newMeshFixture(t, 20*time.Second) // the app server's certificates for the databases rotate under way
	top := t                               // the processes live as long as the test, not a subtest
	app1 := f.startAppServer(t, "appserver-1")
	f.startFront(t)
	f.waitAnswers(t, "/api/hostname")
	gw := f.gateway

	t.Run("conformance", func(t *testing.T) {
		yelbtest.Conformance(t, gw, "appserver-1")
		for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodOptions} {
			if a := yelbtest.Do(t, m, gw, "/api/ihop"); a.Code != http.StatusForbidden {
				t.Errorf("%s /api/ihop = %d %q; want 403 from the ui → appserver intention", m, a.Code, a.Body)
			}
		}
		yelbtest.Expect(t, gw, "/api/getvotes", 200, yelbtest.VotesJSON(2, 2, 3, 2))
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("restart", func(t *testing.T) {
		app1.Signal(t, syscall.SIGTERM)
		if err := app1.Wait(15 * time.Second); err != nil {
			t.Fatalf("appserver-1 on SIGTERM: %v", err)
		}
		app1 = f.startAppServer(top, "appserver-1")
		f.waitAnswers(t, "/api/hostname")
		yelbtest.Expect(t, gw, "/api/getvotes", 200, yelbtest.VotesJSON(2, 2, 3, 2))
		yelbtest.Expect(t, gw, "/api/pageviews", 200, "8")
	})

	t.Run("outages", func(t *testing.T) {
		f.rd.Stop()
		yelbtest.Expect(t, gw, "/api/pageviews", 500, "page views unavailable")
		yelbtest.Expect(t, gw, "/api/getstats", 500, "page views unavailable")
		yelbtest.Expect(t, gw, "/api/getvotes", 200, yelbtest.VotesJSON(2, 2, 3, 2))
		yelbtest.Expect(t, gw, "/api/ihop", 200, "4")
		f.rd.Start()
		f.waitAnswers(t, "/api/getstats") // counts one or more page views
		n, _ := getBody(context.Background(), gw+"/api/pageviews")
		yelbtest.Expect(t, gw, "/api/getstats", 200, fmt.Sprintf(`{"hostname":"appserver-1","pageviews":%d}`, atoi(t, n)+1))

		f.pg.Stop()
		yelbtest.Expect(t, gw, "/api/getvotes", 500, "votes unavailable")
		yelbtest.Expect(t, gw, "/api/chipotle", 500, "votes unavailable")
		yelbtest.Expect(t, gw, "/api/pageviews", 200, fmt.Sprint(atoi(t, n)+2))
		f.pg.Start()
		f.waitAnswers(t, "/api/getvotes")
		yelbtest.Expect(t, gw, "/api/chipotle", 200, "3")
		yelbtest.Expect(t, gw, "/api/getvotes", 200, yelbtest.VotesJSON(2, 2, 4, 3))
	})

	t.Run("db-rotation", func(t *testing.T) { f.dbRotation(t) })

	t.Run("in-process", func(t *testing.T) { f.inProcessAppServer(t) })

	t.Run("refusals", func(t *testing.T) { f.refusals(t) })

	t.Run("browser", func(t *testing.T) { voteInBrowser(t, gw+"/") })

	t.Run("https", func(t *testing.T) { f.https(t) })

	t.Run("kill", func(t *testing.T) {
		app2 := f.startAppServer(top, "appserver-2")
		poll.Eventually(t, 30*time.Second, func() error {
			if h, err := getBody(context.Background(), gw+"/api/hostname"); err != nil || h != "appserver-2" {
				return fmt.Errorf("hostname %q, %v; want appserver-2 among the answers", h, err)
			}
			return nil
		})
		var mu sync.Mutex
		seen := map[string]int{}
		killed := false
		after := map[string]int{}
		ld := meshtest.StartLoad(4, func(ctx context.Context) error {
			if err := get(ctx, gw+"/api/getvotes"); err != nil {
				return err
			}
			h, err := getBody(ctx, gw+"/api/hostname")
			if err != nil {
				return err
			}
			mu.Lock()
			seen[h]++
			if killed {
				after[h]++
			}
			mu.Unlock()
			return nil
		})
		// Both replicas answer the stream before one dies.
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			both := seen["appserver-1"] > 0 && seen["appserver-2"] > 0
			mu.Unlock()
			if both || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		app2.Kill(t)
		t0 := time.Now()
		mu.Lock()
		killed = true
		mu.Unlock()
		time.Sleep(4 * time.Second)
		ld.Stop()
		mu.Lock()
		defer mu.Unlock()
		t.Logf("kill -9 of appserver-2 under load: %d UI requests ok (%d getvotes+hostname pairs), %d pairs failed; hostnames %v, after the kill (%v) %v",
			2*ld.OK.Load(), ld.OK.Load(), ld.Failed.Load(), seen, time.Since(t0).Round(time.Millisecond), after)
		if n := ld.Failed.Load(); n != 0 {
			t.Errorf("%d UI requests failed: %v", n, ld.Errors())
		}
		if seen["appserver-1"] == 0 || seen["appserver-2"] == 0 {
			t.Errorf("hostnames %v; want both replicas", seen)
		}
		if after["appserver-1"] == 0 {
			t.Errorf("no request answered by appserver-1 after the kill: %v", after)
		}
		_ = app1
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// refusals: services without an intention are refused by the app server at
// the handshake, with the reason — another service of the ui's trust domain,
// the gateway, a service of the app server's own trust domain; Postgres and
// Redis admit the app server's certificate of the databases' PKI and refuse
// a certificate of the other trust domain's CA, none, another back-end
// service's, and the app server's own mesh certificate; only the app
// server's token of the databases' PKI gets a certificate there.
func (f *meshFixture) refusals(t *testing.T) {
	ctx := poll.Context(t, time.Minute)
	logger := slog.New(slog.DiscardHandler)
	svc := func(d, other *domain, name string) *meshService {
		t.Helper()
		env := meshEnv{consulAddr: f.consul.Addr, vaultAddr: f.vault.HTTPAddr(), vaultToken: f.token(t, d, name),
			mount: d.mount, role: "{service}", datacenter: "dc1", td: d.td}
		cn := ""
		if d == f.back {
			cn = name
		}
		ms, err := newMeshService(ctx, env, name, cn, &peerSpec{Name: other.peer, TD: other.td, Mount: other.mount},
			meshConfig{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ms.close() })
		return ms
	}
	intruderA := svc(f.front, f.back, "intruder-a")
	gateway := svc(f.front, f.back, gatewayName)
	intruderB := svc(f.back, f.front, "intruder-b")
	for _, tc := range []struct {
		from *meshService
		opts []ztnet.DialOption
	}{
		{intruderA, []ztnet.DialOption{ztnet.WithServerTrustDomain(f.back.td)}},
		{gateway, []ztnet.DialOption{ztnet.WithServerTrustDomain(f.back.td)}},
		{intruderB, nil},
	} {
		c, err := tc.from.svc.Dial(ctx, appName, tc.opts...)
		var denied *ztnet.DeniedError
		if !errors.As(err, &denied) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s → %s: %v; want refused by its intentions", tc.from.svc.ID(), appName, err)
			continue
		}
		t.Logf("refused: %v", err)
	}

	// Only the app server's policy of the databases' PKI signs its
	// certificate there: not another back-end service's policy, nor its
	// own of the mesh's PKI.
	for _, tc := range []struct{ name, token string }{
		{"another back-end service's token", f.token(t, f.back, "intruder-b")},
		{"the app server's token for the mesh only", f.token(t, f.back, appName)},
	} {
		env := meshEnv{vaultAddr: f.vault.HTTPAddr(), vaultToken: tc.token, role: "{service}", datacenter: "dc1"}
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, err := newDBIdentity(tctx, env, f.db.td.Name()+"@"+f.db.mount, logger)
		cancel()
		if err == nil {
			id.Close()
			t.Errorf("%s got a certificate of the databases' PKI", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: %v; want Vault's permission denied", tc.name, err)
		}
		t.Logf("%s refused: %v", tc.name, err)
	}

	// The stores admit the app server's certificate of the databases' PKI,
	// and nothing else: not even its own certificate of the back end's mesh
	// PKI, with the database user as common name. Each client trusts the
	// stores' CA, so that a refusal is the server's.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(f.rootPEM(t, f.db))
	noCert := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
	presenting := func(id identity) *tls.Config {
		c := noCert.Clone()
		c.GetClientCertificate = storeTLS(id).GetClientCertificate
		return c
	}
	for _, tc := range []struct {
		name     string
		tc       *tls.Config
		admitted bool
	}{
		{"the app server's certificate of the databases' PKI", presenting(f.dbIdentity(ctx, t)), true},
		{"a certificate of the other trust domain", presenting(intruderA.src), false},
		{"no certificate", noCert, false},
		{"another back-end service's certificate", presenting(intruderB.src), false},
		{"the app server's mesh certificate", presenting(f.backService(ctx, t, appName).src), false},
	} {
		pg, err := yelb.NewPostgres(f.pg.Addr, appName, tc.tc)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := yelb.NewRedis(f.rd.Addr, tc.tc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []struct {
			name string
			ping func(context.Context) error
		}{{"postgres", pg.Ping}, {"redis", rd.Ping}} {
			switch err := s.ping(ctx); {
			case tc.admitted && err != nil:
				t.Errorf("%s refused %s: %v", s.name, tc.name, err)
			case !tc.admitted && err == nil:
				t.Errorf("%s accepted %s", s.name, tc.name)
			case !tc.admitted:
				t.Logf("%s refused %s: %v", s.name, tc.name, err)
			}
		}
		pg.Close()
		rd.Close()
	}
}

// dbRotation: the app server's certificates for the databases live
// f.dbLeafTTL; votes and page views keep working while they rotate, and after
// every certificate it had shown Postgres has expired (Postgres and Redis
// refuse an expired one), both servers restart, forcing new handshakes:
// those present new certificates (serials read in Postgres's pg_stat_ssl),
// and votes and page views still work.
func (f *meshFixture) dbRotation(t *testing.T) {
	if f.dbLeafTTL == 0 || f.dbLeafTTL > time.Minute {
		t.Fatalf("the databases' leaves live %v: too long to wait for", f.dbLeafTTL)
	}
	gw := f.gateway
	serials := func() map[string]bool {
		t.Helper()
		out := f.pg.Exec(`SELECT s.client_serial || ' ' || s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'yelb-appserver'`)
		m := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if serial, dn, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
				if dn != "/CN="+appName && dn != "CN="+appName {
					t.Errorf("the app server's connection to Postgres shows %q; want CN=%s", dn, appName)
				}
				m[serial] = true
			}
		}
		return m
	}
	vote := atoi(t, yelbtest.Expect(t, gw, "/api/outback", 200, "").Body)
	views := atoi(t, yelbtest.Expect(t, gw, "/api/pageviews", 200, "").Body)
	before := serials()
	if len(before) == 0 {
		t.Fatal("no connection of yelb-appserver in pg_stat_ssl")
	}
	// Until every certificate shown so far has expired (each lives
	// f.dbLeafTTL from its issuance, before now), a vote and a page view a
	// second.
	for end := time.Now().Add(f.dbLeafTTL + time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		vote++
		views++
		yelbtest.Expect(t, gw, "/api/outback", 200, fmt.Sprint(vote))
		yelbtest.Expect(t, gw, "/api/pageviews", 200, fmt.Sprint(views))
	}
	f.pg.Restart()
	f.rd.Restart()
	f.waitAnswers(t, "/api/getvotes")
	f.waitAnswers(t, "/api/getstats")
	vote++
	yelbtest.Expect(t, gw, "/api/outback", 200, fmt.Sprint(vote))
	views = atoi(t, yelbtest.Expect(t, gw, "/api/pageviews", 200, "").Body)
	yelbtest.Expect(t, gw, "/api/pageviews", 200, fmt.Sprint(views+1))
	after := serials()
	for s := range after {
		if before[s] {
			t.Errorf("after the restart Postgres sees certificate %s of before, which has expired", s)
		}
	}
	if len(after) == 0 {
		t.Error("no connection of yelb-appserver in pg_stat_ssl after the restart")
	}
	t.Logf("the app server's certificates for Postgres: %v before, %v after the restart", keys(before), keys(after))
}

// inProcessAppServer runs an app server in this process (runMesh), until
// it answers page views through the gateway (Redis with its identity of the
// databases' PKI), then stops it: runMesh returns, and TestMain's leak check
// finds none of its goroutines (its two rotating identities closed).
func (f *meshFixture) inProcessAppServer(t *testing.T) {
	env := map[string]string{}
	for _, kv := range f.envToken(f.back, f.token(t, f.back, appName, f.db.pki.Policies[appName])) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &logtest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- runMesh(ctx, out, meshConfig{Mode: "appserver", Addr: "127.0.0.1:0", Hostname: "appserver-3",
			Postgres: f.pg.Addr, Redis: f.rd.Addr, Peer: f.front.peerFlag(), DBPKI: f.db.td.Name() + "@" + f.db.mount,
			Getenv: func(k string) string { return env[k] }})
	}()
	poll.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("runMesh: %v\n%s", err, out.String())
		default:
		}
		b, err := getBody(context.Background(), f.gateway+"/api/getstats")
		if err != nil || !strings.Contains(b, `"hostname":"appserver-3"`) {
			return fmt.Errorf("getstats %q, %v; want an answer of appserver-3", b, err)
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runMesh after its context ended: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runMesh did not return after its context ended")
	}
	if got := out.String(); !strings.Contains(got, "yelb: appserver stopped") {
		t.Errorf("runMesh printed %q; want it stopped", got)
	}
	httpClient.CloseIdleConnections()
}

func keys(m map[string]bool) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// https: a gateway started with -https-role serves HTTPS (TLS 1.3) with a
// certificate for 127.0.0.1 signed by the front end's PKI with a role for
// web names, which a browser trusting that CA accepts.
func (f *meshFixture) https(t *testing.T) {
	base, _ := f.startHTTPSGateway(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(f.rootPEM(t, f.front))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/api/hostname")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("GET %s/api/hostname = %d %q (TLS %v)", base, resp.StatusCode, b, resp.TLS)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || len(leaf.URIs)+len(leaf.DNSNames) != 0 {
		t.Errorf("the gateway's certificate names %v %v %v", leaf.IPAddresses, leaf.DNSNames, leaf.URIs)
	}
	t.Logf("HTTPS gateway %s: %q, certificate for %v until %s", base, b, leaf.IPAddresses, leaf.NotAfter.Format(time.RFC3339))
	if _, err := httpClient.Get(base + "/"); err == nil {
		t.Error("a client that does not trust the front end's CA got an answer")
	}
}
