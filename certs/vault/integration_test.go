package vault_test

// Tests and benchmarks of Vault-issued identities under two real ztnet
// services talking mutual TLS. They live in the external test package
// because ztnet imports certs.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/benchpair"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

var meshTD = spiffeid.RequireTrustDomainFromString("ztn.test")

// mesh is a real Vault with a bootstrapped PKI and two ztnet services, web
// and api, whose identities come from it; web may call api, which echoes.
type mesh struct {
	vault   *testenv.VaultServer
	root    *api.Client
	boot    vault.BootstrapConfig
	pki     *vault.PKI
	catalog *discovery.Static
	policy  *authz.Policy
	src     map[string]*certs.Rotator
	svc     map[string]*ztnet.Service
	tokens  map[string]string // service -> token file, with tokenFiles
	logs    func() []string
}

type meshOptions struct {
	ttl        time.Duration
	tokenFiles bool // authenticate with token files (rewritten by the test)
	rotator    []certs.Option
	vault      []testenv.VaultOption
}

func newMesh(t testing.TB, o meshOptions) *mesh {
	t.Helper()
	srv := testenv.Vault(t, o.vault...)
	cfg := api.DefaultConfig()
	cfg.Address = srv.HTTPAddr()
	root, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.Token)
	logger, logs := logtest.Capture(t)
	m := &mesh{
		vault: srv, root: root, catalog: discovery.NewStatic(nil), policy: authz.NewPolicy(),
		src: map[string]*certs.Rotator{}, svc: map[string]*ztnet.Service{}, tokens: map[string]string{}, logs: logs,
		boot: vault.BootstrapConfig{
			TrustDomain: meshTD, Services: []string{"web", "api"},
			// max_ttl = ttl: no leaf outlives ttl, so a root that left the
			// mount stays trusted for ttl (Config.RootRetention's default).
			LeafTTL: o.ttl, LeafMaxTTL: o.ttl, NotBefore: time.Second,
		},
	}
	m.bootstrap(t)
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.policy.Set(entries...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"api", "web"} {
		vc := vault.Config{
			Service: name, TrustDomain: meshTD, Address: srv.HTTPAddr(),
			Auth:          vault.Token(m.token(t, name)),
			BundleRefresh: 200 * time.Millisecond,
		}
		if o.tokenFiles {
			path := filepath.Join(dir, name+".token")
			m.tokens[name] = path
			m.writeToken(t, path, name)
			vc.Auth = vault.TokenFile(path)
		}
		opts := append([]certs.Option{
			certs.WithLogger(logger.With("source", name)),
			certs.WithBackoff(100*time.Millisecond, time.Second),
			certs.WithRootChangeWindow(500 * time.Millisecond),
		}, o.rotator...)
		src, err := vault.New(context.Background(), vc, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		m.src[name] = src
		svc, err := ztnet.New(context.Background(), name,
			ztnet.WithSource(src), ztnet.WithAuthorizer(m.policy), ztnet.WithResolver(m.catalog),
			ztnet.WithLogger(logger), ztnet.WithoutResumption())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		m.svc[name] = svc
	}
	l, err := m.svc["api"].Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, l)
	return m
}

func (m *mesh) bootstrap(t testing.TB) {
	t.Helper()
	pki, err := vault.Bootstrap(context.Background(), m.root, m.boot)
	if err != nil {
		t.Fatal(err)
	}
	m.pki = pki
}

// token creates a token with the service's bootstrap policy.
func (m *mesh) token(t testing.TB, service string) string {
	t.Helper()
	s, err := m.root.Logical().Write("auth/token/create", map[string]any{"policies": []string{m.pki.Policies[service]}, "ttl": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

func (m *mesh) writeToken(t testing.TB, path, service string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(m.token(t, service)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// call makes one new connection from web to api and echoes a byte.
func (m *mesh) call(ctx context.Context) error {
	return call(ctx, m.svc["web"])
}

func call(ctx context.Context, from *ztnet.Service) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := from.Dial(ctx, "api")
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{42}); err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	return nil
}

func serveEcho(t testing.TB, l net.Listener) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
}

// leafLog records every SVID a source installs.
type leafLog struct {
	mu     sync.Mutex
	chains [][]*x509.Certificate
}

func recordLeaves(t testing.TB, src *certs.Rotator) *leafLog {
	ll := &leafLog{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		var last *x509.Certificate
		for {
			changed := src.Changed()
			if svid, err := src.GetX509SVID(); err == nil && svid.Certificates[0] != last {
				last = svid.Certificates[0]
				ll.mu.Lock()
				ll.chains = append(ll.chains, svid.Certificates)
				ll.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ll
}

// lastNotAfter returns the latest NotAfter of the recorded leaves whose chain
// reaches root.
func (ll *leafLog) lastNotAfter(root *x509.Certificate) time.Time {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	var last time.Time
	for _, chain := range ll.chains {
		if chainsTo(chain, root) && chain[0].NotAfter.After(last) {
			last = chain[0].NotAfter
		}
	}
	return last
}

func chainsTo(chain []*x509.Certificate, root *x509.Certificate) bool {
	for _, c := range chain {
		if c.CheckSignatureFrom(root) == nil {
			return true
		}
	}
	return false
}

func inBundle(t testing.TB, src *certs.Rotator, root *x509.Certificate) bool {
	b, err := src.GetX509BundleForTrustDomain(meshTD)
	if err != nil {
		t.Errorf("bundle: %v", err)
		return false
	}
	return b.HasX509Authority(root)
}

func issuerCert(t testing.TB, c *api.Client, id string) *x509.Certificate {
	t.Helper()
	s, err := c.Logical().Read("pki/issuer/" + id + "/json")
	if err != nil {
		t.Fatal(err)
	}
	return parsePEM(t, s.Data["certificate"].(string))
}

func parsePEM(t testing.TB, p string) *x509.Certificate {
	t.Helper()
	certs, err := parseCerts(p)
	if err != nil || len(certs) != 1 {
		t.Fatalf("parse certificate: %v", err)
	}
	return certs[0]
}

// TestVaultCARotationUnderTraffic rotates the root and the intermediate of
// a real Vault (multi-issuer: root/rotate/internal, a new intermediate, made
// default after the new root has propagated), then deletes the old issuers,
// while web opens a steady stream of new connections (full handshakes) to
// api. No connection fails; both services move their leaves to the new
// intermediate; the old root stays in each service's bundle as long as a
// leaf of either service that chains to it is unexpired, and leaves the
// bundle afterwards.
func TestVaultCARotationUnderTraffic(t *testing.T) {
	// 10s leaves renew at 6-9s: 1-4s for a signing and bundle read, which a
	// loaded machine needs.
	m := newMesh(t, meshOptions{ttl: 10 * time.Second})
	web, apiSrc := m.src["web"], m.src["api"]
	leaves := []*leafLog{recordLeaves(t, web), recordLeaves(t, apiSrc)}
	oldRoot := issuerCert(t, m.root, m.pki.RootIssuer)
	if !inBundle(t, web, oldRoot) || !inBundle(t, apiSrc, oldRoot) {
		t.Fatal("the first root is not trusted")
	}

	tr := startTraffic(m, 4)
	time.Sleep(time.Second)
	rot, err := vault.RotateCA(context.Background(), m.root, vault.RotateCAConfig{
		TrustDomain: meshTD, Propagation: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	newRoot := issuerCert(t, m.root, rot.RootIssuer)
	newInt := issuerCert(t, m.root, rot.IntermediateIssuer)
	if !inBundle(t, web, newRoot) || !inBundle(t, apiSrc, newRoot) {
		t.Fatal("the new root was made default before both services trusted it")
	}
	onNewInt := func(src *certs.Rotator) bool {
		svid, err := src.GetX509SVID()
		return err == nil && len(svid.Certificates) == 2 && svid.Certificates[1].Equal(newInt)
	}
	deadline := time.Now().Add(5 * time.Second) // root change window 0.5s, and then some
	for !onNewInt(web) || !onNewInt(apiSrc) {
		if time.Now().After(deadline) {
			t.Fatal("the services' leaves did not move to the new intermediate within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Retire the old issuers. Leaves under the old root may still be valid.
	for _, id := range rot.Previous {
		if _, err := m.root.Logical().Delete("pki/issuer/" + id); err != nil {
			t.Fatal(err)
		}
	}
	deleted := time.Now()
	dropped := map[string]time.Time{}
	for time.Since(deleted) < 25*time.Second && len(dropped) < 2 {
		for name, src := range map[string]*certs.Rotator{"web": web, "api": apiSrc} {
			if _, ok := dropped[name]; !ok && !inBundle(t, src, oldRoot) {
				dropped[name] = time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // traffic after the drop too
	tr.Stop()

	lastOld := leaves[0].lastNotAfter(oldRoot)
	if l := leaves[1].lastNotAfter(oldRoot); l.After(lastOld) {
		lastOld = l
	}
	t.Logf("connections: %d ok, %d failed; the last leaf under the old root expired %s after its issuers were deleted",
		tr.OK.Load(), tr.Failed.Load(), lastOld.Sub(deleted).Round(time.Millisecond))
	if n := tr.Failed.Load(); n != 0 {
		t.Errorf("%d connections failed during the CA rotation: %v", n, tr.Errors())
	}
	if tr.OK.Load() < 100 {
		t.Errorf("only %d connections made", tr.OK.Load())
	}
	if !lastOld.After(deleted) {
		t.Errorf("no leaf under the old root was valid when its issuers were deleted: the test proves nothing")
	}
	for _, name := range []string{"web", "api"} {
		at, ok := dropped[name]
		switch {
		case !ok:
			t.Errorf("%s: the old root is still trusted 25s after its issuers were deleted", name)
		case at.Before(lastOld):
			t.Errorf("%s: the old root left the bundle %v before the last leaf chaining to it expired", name, lastOld.Sub(at))
		default:
			t.Logf("%s: old root dropped %v after the last leaf under it expired (%v after deletion)",
				name, at.Sub(lastOld).Round(time.Millisecond), at.Sub(deleted).Round(time.Millisecond))
		}
	}
	if !inBundle(t, web, newRoot) || !inBundle(t, apiSrc, newRoot) {
		t.Error("the new root is not trusted")
	}
}

// TestVaultOutage kills Vault just after both services got fresh leaves:
// past the renewal moment they keep their certificates and connect, retry
// with backoff and report the time to expiry (metric and log); once the
// leaves expire, new handshakes fail closed with a clear error. Vault comes
// back (dev mode: empty, so the PKI is bootstrapped again with a new root and
// new tokens are written to the token files, as an operator would) and the
// services recover without a restart: they log in again, get leaves under
// the new root and trust it.
func TestVaultOutage(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m := newMesh(t, meshOptions{
		// 8s leaves: past 90% there is still most of a second for the
		// connection that proves the kept leaf works, on a loaded machine.
		ttl: 8 * time.Second, tokenFiles: true,
		rotator: []certs.Option{certs.WithMeterProvider(mp)},
		vault:   []testenv.VaultOption{testenv.VaultRootToken("ztn-root")},
	})
	web, apiSrc := m.src["web"], m.src["api"]
	for _, src := range []*certs.Rotator{web, apiSrc} {
		changed := src.Changed()
		src.RenewSoon(0)
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatal("no fresh leaf")
		}
	}
	m.vault.Kill()
	killed := time.Now()
	svid, err := web.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	leaf := svid.Certificates[0]
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if time.Until(leaf.NotBefore.Add(life*6/10)) < 100*time.Millisecond { // Vault is down before the renewal window opens
		t.Fatalf("too late: the renewal window opens in %v", time.Until(leaf.NotBefore.Add(life*6/10)))
	}

	// Past 90% of the leaf's life: renewal has failed, the leaf is kept.
	time.Sleep(time.Until(leaf.NotBefore.Add(life*9/10 + 100*time.Millisecond)))
	if got, err := web.GetX509SVID(); err != nil || got.Certificates[0] != leaf {
		t.Fatalf("the current leaf was not kept during the outage: %v", err)
	}
	if err := m.call(context.Background()); err != nil {
		t.Fatalf("connection with a still valid leaf during the outage: %v", err)
	}
	fails := logtest.Count(m.logs(), "source=web", "SVID renewal failed", "cannot reach Vault", "expires_in=", "retry_in=")
	if fails < 2 {
		t.Errorf("%d logged renewal attempts for web during the outage, want retries", fails)
	}
	rotations, expiry := certstest.Metrics(t, reader)
	webID := m.svc["web"].ID().String()
	if rotations["failure"] < 2 {
		t.Errorf("rotations{failure} = %d", rotations["failure"])
	}
	if e := expiry[webID]; e <= 0 || e > 0.2*life.Seconds() {
		t.Errorf("expiry gauge %v s, want the remaining (0, %v]", e, 0.2*life.Seconds())
	}

	// Expired: fail closed.
	time.Sleep(time.Until(leaf.NotAfter.Add(100 * time.Millisecond)))
	_, err = web.GetX509SVID()
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "cannot reach Vault") {
		t.Fatalf("GetX509SVID after expiry: %v", err)
	}
	// Both leaves have expired: web cannot present one, so its Dial fails
	// before the network and says why (ztnet checks its own certificate
	// first).
	if err = m.call(context.Background()); err == nil {
		t.Fatal("a connection succeeded with expired leaves")
	}
	t.Logf("fail closed: the client sees: %v", err)
	for _, want := range []string{"no usable certificate", "SVID for spiffe://ztn.test/ns/default/dc/dc1/svc/web expired at", "cannot reach Vault"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("client error %q lacks %q", err, want)
		}
	}
	if _, expiry = certstest.Metrics(t, reader); expiry[webID] >= 0 {
		t.Errorf("expiry gauge %v after expiry, want negative", expiry[webID])
	}

	// Vault is back, empty: set it up again; the services recover.
	// api first: web, still expired, then fails closed on its own side.
	m.vault.Start()
	restarted := time.Now()
	m.bootstrap(t)
	newRoot := issuerCert(t, m.root, m.pki.RootIssuer)
	m.writeToken(t, m.tokens["api"], "api")
	deadline := time.Now().Add(10 * time.Second)
	for _, err := apiSrc.GetX509SVID(); err != nil; _, err = apiSrc.GetX509SVID() {
		if time.Now().After(deadline) {
			t.Fatalf("api did not recover within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	err = m.call(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ztnet: dial api: no usable certificate: certs: SVID for spiffe://ztn.test/ns/default/dc/dc1/svc/web expired at") {
		t.Fatalf("dial with an expired leaf: %v", err)
	}
	t.Logf("fail closed: %v", err)
	waitLog(t, m, "a failed login of web, whose token file still holds the lost token",
		"source=web", "login failed", "Vault rejects the token")
	m.writeToken(t, m.tokens["web"], "web")
	for err := m.call(context.Background()); err != nil; err = m.call(context.Background()) {
		if time.Since(restarted) > 10*time.Second {
			t.Fatalf("no recovery 10s after Vault came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("outage: Vault down %v; connections work again %v after it came back",
		restarted.Sub(killed).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	for name, src := range m.src {
		svid, err := src.GetX509SVID()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !chainsTo(svid.Certificates, newRoot) || !inBundle(t, src, newRoot) {
			t.Errorf("%s: the leaf does not chain to the new root, or it is not trusted", name)
		}
	}
	if n := logtest.Count(m.logs(), "logging in again", "Vault rejects the token"); n < 1 {
		t.Errorf("no new login after the restart (%d)", n)
	}
	if rotations, _ := certstest.Metrics(t, reader); rotations["success"] < 4 {
		t.Errorf("rotations %v", rotations)
	}
}

// waitLog waits up to 5s for a log record containing every one of subs.
func waitLog(t testing.TB, m *mesh, what string, subs ...string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); logtest.Count(m.logs(), subs...) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no log of %s within 5s", what)
			return
		}
	}
}

// parseCerts parses PEM certificates.
func parseCerts(p string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(p)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// BenchmarkVaultPairedHandshakeRotation reports new connections per second
// (full handshake, authorization, 1-byte echo, close; no resumption) between
// two services whose Vault leaves rotate every few seconds (5s TTL) and
// between two services with 1h leaves, and the ratio (target >= 0.95). The
// two run in alternating 150ms slices, many times over, so that background
// load on a shared machine hits both alike (see ztnet's paired benchmarks).
// Each pair has its own Vault on this machine; the rotating pair's Vault
// signs while the benchmark runs.
func BenchmarkVaultPairedHandshakeRotation(b *testing.B) {
	rotating := newMesh(b, meshOptions{ttl: 5 * time.Second})
	static := newMesh(b, meshOptions{ttl: time.Hour})
	var logs []*leafLog
	for _, src := range rotating.src {
		logs = append(logs, recordLeaves(b, src))
	}
	count := func() int {
		n := 0
		for _, ll := range logs {
			ll.mu.Lock()
			n += len(ll.chains)
			ll.mu.Unlock()
		}
		return n
	}
	ctx := context.Background()
	op := func(m *mesh) func() error { return func() error { return m.call(ctx) } }
	var rates []float64
	before, start := count(), time.Now()
	for b.Loop() {
		rates, _ = benchpair.Rates(b, 20, 4, []func() error{op(static), op(rotating)})
	}
	elapsed, renewals := time.Since(start), count()-before
	b.ReportMetric(rates[0], "static-conns/s")
	b.ReportMetric(rates[1], "rotating-conns/s")
	b.ReportMetric(rates[1]/rates[0], "rotating/static")
	b.ReportMetric(float64(renewals)/elapsed.Seconds(), "renewals/s")
}

const slice = 150 * time.Millisecond

// startTraffic makes new connections from web to api on n goroutines until
// stopped.
func startTraffic(m *mesh, n int) *meshtest.Load { return meshtest.StartLoad(n, m.call) }
