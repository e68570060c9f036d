package consulca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// consulClient returns an API client for addr (host:port or URL).
func consulClient(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.Token = token
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consulRootCerts reads the CA roots from the server's RPC endpoint.
func consulRootCerts(t testing.TB, c *api.Client) (active *x509.Certificate, all []*x509.Certificate) {
	t.Helper()
	roots, _, err := c.Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots.Roots {
		certs, err := certsx.PEMCertificates([]byte(r.RootCertPEM), false)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, certs[0])
		if r.Active {
			active = certs[0]
		}
	}
	return active, all
}

// rotateConsulCA makes Consul's built-in CA switch to a new root (a new
// private key), which it cross-signs with the old one.
func rotateConsulCA(t testing.TB, c *api.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	conf, _, err := c.Connect().CAGetConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	conf.Config["PrivateKey"] = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	conf.Config["PrivateKeyType"] = "ec"
	conf.Config["PrivateKeyBits"] = 256
	if _, err := c.Connect().CASetConfig(conf, nil); err != nil {
		t.Fatalf("rotate the Consul CA: %v", err)
	}
}

// consulTamper is a reverse proxy in front of a real Consul agent that
// rewrites its Connect CA answers on demand: the faults a real agent cannot
// be made to produce. Blocking queries pass through.
type consulTamper struct {
	*httptest.Server
	mu   sync.Mutex
	leaf func(m map[string]any) []byte // nil: pass through
	root func(m map[string]any) []byte
}

func newConsulTamper(t testing.TB, consulAddr string) *consulTamper {
	target, err := url.Parse("http://" + consulAddr)
	if err != nil {
		t.Fatal(err)
	}
	p := &consulTamper{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ModifyResponse = p.response
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		r.Header.Del("Accept-Encoding") // Consul gzips large answers
	}
	p.Server = httptest.NewServer(rp)
	t.Cleanup(func() { p.CloseClientConnections(); p.Close() })
	return p
}

func (p *consulTamper) set(leaf, root func(m map[string]any) []byte) {
	p.mu.Lock()
	p.leaf, p.root = leaf, root
	p.mu.Unlock()
}

func (p *consulTamper) response(resp *http.Response) error {
	p.mu.Lock()
	leaf, root := p.leaf, p.root
	p.mu.Unlock()
	var f func(map[string]any) []byte
	switch path := resp.Request.URL.Path; {
	case strings.HasPrefix(path, "/v1/agent/connect/ca/leaf/"):
		f = leaf
	case path == "/v1/agent/connect/ca/roots":
		f = root
	}
	if f == nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	body = f(m)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// edit returns a tamper function setting fields of the JSON object (a
// fresh SerialNumber for leaves, so that the issuer looks at the rest).
func edit(kv ...any) func(map[string]any) []byte {
	return func(m map[string]any) []byte {
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		if _, ok := m["SerialNumber"]; ok {
			m["SerialNumber"] = "tampered-" + strconv.FormatInt(time.Now().UnixNano(), 16)
		}
		b, _ := json.Marshal(m)
		return b
	}
}

func raw(body string) func(map[string]any) []byte {
	return func(map[string]any) []byte { return []byte(body) }
}

// editRoots applies f to every root of a roots answer.
func editRoots(f func(r map[string]any)) func(map[string]any) []byte {
	return func(m map[string]any) []byte {
		roots, _ := m["Roots"].([]any)
		for _, r := range roots {
			if rm, ok := r.(map[string]any); ok {
				f(rm)
			}
		}
		b, _ := json.Marshal(m)
		return b
	}
}

func newTestConsulCA(t testing.TB, ctx context.Context, cfg Config, opts ...certs.Option) (*certs.Rotator, error) {
	t.Helper()
	r, err := New(ctx, cfg, opts...)
	if err == nil {
		t.Cleanup(func() { _ = r.Close() })
	}
	return r, err
}

// TestConsulCAIssue: the first SVID is the agent's leaf for the service,
// with the agent's key, in Consul's trust domain, its datacenter read from
// the agent; the bundle is every root Consul reports.
func TestConsulCAIssue(t *testing.T) {
	srv := testenv.Consul(t)
	client := consulClient(t, srv.Addr, "")
	r, err := newTestConsulCA(t, context.Background(), Config{Client: client, Service: "web"}, certs.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	svid, err := r.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	want := "spiffe://" + srv.TrustDomain + "/ns/default/dc/dc1/svc/web"
	if svid.ID.String() != want {
		t.Fatalf("SPIFFE ID %s, want %s", svid.ID, want)
	}
	leaf, _, err := client.Agent().ConnectCALeaf("web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber == "" || !strings.Contains(leaf.CertPEM, strings.TrimSpace(string(certstest.CertsPEM(svid.Certificates[0])))[:60]) {
		t.Fatal("the SVID is not the agent's cached leaf")
	}
	if pub, ok := svid.PrivateKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(svid.Certificates[0].PublicKey) {
		t.Fatal("key does not match")
	}
	_, all := consulRootCerts(t, client)
	b, err := r.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString(srv.TrustDomain))
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range all {
		if !b.HasX509Authority(root) {
			t.Fatal("a Consul root is missing from the bundle")
		}
	}
}

// TestConsulCAAwaitsAgentRenewal: early in the leaf's life the agent's
// current leaf is the answer to a renewal; past 60% of it, a renewal waits
// for the agent's next one (blocking queries) instead of installing the
// same leaf again; after a CA rotation the new leaf comes within seconds.
func TestConsulCAAwaitsAgentRenewal(t *testing.T) {
	srv := testenv.Consul(t)
	client := consulClient(t, srv.Addr, "")
	logger, logs := logtest.Capture(t)
	c, err := newIssuer(context.Background(), Config{Client: client, Service: "web", BlockingWait: time.Second}, certsx.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Early in the leaf's life (a forced renewal) the agent's leaf is the
	// answer.
	again, err := c.Issue(context.Background())
	if err != nil || !again.SVID.Certificates[0].Equal(first.SVID.Certificates[0]) {
		t.Fatalf("an early renewal: %v; want the same leaf at once", err)
	}
	// At 70% of its life, the agent is due to renew it (at a random moment
	// up to 90%, on its own clock): the renewal waits for that.
	l := first.SVID.Certificates[0]
	at70 := l.NotBefore.Add(l.NotAfter.Sub(l.NotBefore) * 7 / 10)
	c.now = func() time.Time { return at70 }
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	_, err = c.Issue(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a renewal at 70%% of the leaf's life returned %v; want it to wait for the agent", err)
	}
	if logtest.Count(logs(), "waiting for its renewal") != 1 {
		t.Fatal("no log of the wait")
	}

	// Right after a CA rotation the agent may still answer with the old
	// leaf; it re-issues it to a non-blocking query once it has seen the
	// new root: the renewal polls for that (a blocking query would wait for
	// the agent's own 0-30s jitter).
	c.now = time.Now
	rotateConsulCA(t, client)
	rotated := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	second, err := c.Issue(ctx)
	if err != nil {
		t.Fatalf("renewal after a CA rotation: %v", err)
	}
	took := time.Since(rotated)
	t.Logf("leaf of the new root %v after the rotation", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the leaf of the new root came %v after the rotation, want seconds", took)
	}
	if second.SVID.Certificates[0].Equal(first.SVID.Certificates[0]) {
		t.Fatal("same leaf after a CA rotation")
	}
	active, _ := consulRootCerts(t, client)
	if !certsx.ChainsTo(second.SVID.Certificates, active) {
		t.Fatal("the new leaf does not chain to the new active root")
	}
	if len(second.SVID.Certificates) < 2 {
		t.Fatal("the new leaf comes without the cross-signed root")
	}
}

// TestConsulCABadInput: each misconfiguration and each malformed answer
// from the agent is a clear error at construction, never a panic, never an
// accepted identity.
func TestConsulCABadInput(t *testing.T) {
	srv := testenv.Consul(t)
	client := consulClient(t, srv.Addr, "")
	// Material for forged answers: another service's leaf and a foreign CA.
	other, _, err := client.Agent().ConnectCALeaf("api", nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign := newTestCA(t)
	foreignRoot := string(certstest.CertsPEM(foreign.Bundle().X509Authorities()...))
	// A leaf of the foreign CA with Consul's trust domain and our name.
	fleaf, fkey := certstest.SignLeaf(t, newTestCA(t, certs.WithoutNameConstraints()), certstest.LeafSpec{URIs: []string{"spiffe://" + srv.TrustDomain + "/ns/default/dc/dc1/svc/web"}})
	tamper := newConsulTamper(t, srv.Addr)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := l.Addr().String()
		_ = l.Close()
		return a
	}()

	cases := []struct {
		name string
		cfg  func(*Config)
		leaf func(map[string]any) []byte
		root func(map[string]any) []byte
		want string
	}{
		{name: "no client", cfg: func(c *Config) { c.Client = nil }, want: "no Client"},
		{name: "invalid service", cfg: func(c *Config) { c.Service = "web/../api" }, want: `service "web/../api"`},
		{name: "empty service", cfg: func(c *Config) { c.Service = "" }, want: `service ""`},
		{name: "unreachable agent", cfg: func(c *Config) { c.Client = consulClient(t, closed, "") }, want: "cannot reach the Consul agent"},
		{name: "wrong datacenter", cfg: func(c *Config) { c.Datacenter = "dc2" }, want: "want spiffe://" + srv.TrustDomain + "/ns/default/dc/dc2/svc/web"},
		{name: "leaf: not JSON", leaf: raw("<html>oops</html>"), want: "malformed response"},
		{name: "leaf: truncated JSON", leaf: raw(`{"SerialNumber":"1","CertPEM":"`), want: "malformed response"},
		{name: "leaf: empty object", leaf: raw(`{}`), want: "missing SerialNumber, CertPEM or PrivateKeyPEM"},
		{name: "leaf: garbage CertPEM", leaf: edit("CertPEM", "garbage"), want: "CertPEM: PEM block 1: not PEM"},
		{name: "leaf: garbage key", leaf: edit("PrivateKeyPEM", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), want: "PrivateKeyPEM"},
		{name: "leaf: key of another leaf", leaf: edit("PrivateKeyPEM", other.PrivateKeyPEM), want: "the private key does not match"},
		{name: "leaf: another service's leaf", leaf: edit("CertPEM", other.CertPEM, "PrivateKeyPEM", other.PrivateKeyPEM), want: "refusing the leaf certificate"},
		{name: "leaf: from another CA", leaf: edit("CertPEM", string(certstest.CertsPEM(fleaf)), "PrivateKeyPEM", string(certstest.KeyPEM(t, fkey, false))), want: "does not verify against its bundle"},
		{name: "roots: not JSON", root: raw("nope"), want: "CA roots: malformed response"},
		{name: "roots: none", root: edit("Roots", []any{}), want: "no roots"},
		{name: "roots: no trust domain", root: edit("TrustDomain", ""), want: `TrustDomain ""`},
		{name: "roots: bad trust domain", root: edit("TrustDomain", "Not A Domain!"), want: "TrustDomain"},
		{name: "roots: garbage RootCert", root: editRoots(func(r map[string]any) { r["RootCert"] = "garbage" }), want: "RootCert: PEM block 1: not PEM"},
		{name: "roots: leaf as RootCert", root: editRoots(func(r map[string]any) { r["RootCert"] = string(certstest.CertsPEM(fleaf)) }), want: "RootCert is not a CA certificate"},
		{name: "roots: no active root", root: editRoots(func(r map[string]any) { r["Active"] = false }), want: "Active is false"},
		{name: "roots: garbage intermediate", root: editRoots(func(r map[string]any) { r["IntermediateCerts"] = []string{"garbage"} }), want: "IntermediateCerts[0]"},
		{name: "roots: another CA's root", root: editRoots(func(r map[string]any) { r["RootCert"] = foreignRoot }), want: "does not verify against its bundle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tamper.set(tc.leaf, tc.root)
			defer tamper.set(nil, nil)
			cfg := Config{Client: consulClient(t, tamper.URL, ""), Service: "web", Datacenter: "dc1"}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := newTestConsulCA(t, ctx, cfg, certs.WithLogger(testLogger(t)))
			if err == nil {
				svid, _ := r.GetX509SVID()
				t.Fatalf("New accepted it (SVID %v)", svid.ID)
			}
			// The Rotator's own check of what the issuer returned is certs'.
			prefixed := strings.HasPrefix(err.Error(), "consulca: ") || strings.HasPrefix(err.Error(), "certs: issuer returned")
			if !prefixed || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want the prefix \"consulca: \" and %q", err, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestConsulCAMalformedDuringRotation: with a running source, a malformed
// leaf or roots answer fails the renewal (warn log, failure metric) or the
// bundle watch (warn log) and changes nothing: the last good SVID and
// bundle stay; once the agent answers well again, renewal works.
func TestConsulCAMalformedDuringRotation(t *testing.T) {
	srv := testenv.Consul(t)
	tamper := newConsulTamper(t, srv.Addr)
	client := consulClient(t, tamper.URL, "")
	other, _, err := consulClient(t, srv.Addr, "").Agent().ConnectCALeaf("api", nil)
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := logtest.Capture(t)
	reader := sdkmetric.NewManualReader()
	r, err := newTestConsulCA(t, context.Background(), Config{Client: client, Service: "web", BlockingWait: time.Second},
		certs.WithLogger(logger), certs.WithBackoff(50*time.Millisecond, 200*time.Millisecond),
		certs.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := r.GetX509SVID()
	td := good.ID.TrustDomain()
	goodBundle, _ := r.GetX509BundleForTrustDomain(td)

	for _, tc := range []struct {
		name       string
		leaf, root func(map[string]any) []byte
		want       string
	}{
		{name: "garbage leaf", leaf: edit("CertPEM", "garbage"), want: "malformed response"},
		{name: "another service's leaf", leaf: edit("CertPEM", other.CertPEM, "PrivateKeyPEM", other.PrivateKeyPEM), want: "refusing the leaf certificate"},
		{name: "garbage roots", root: editRoots(func(r map[string]any) { r["RootCert"] = "garbage" }), want: "CA roots: malformed response"},
		{name: "another trust domain", root: edit("TrustDomain", "11111111-2222-3333-4444-555555555555.consul"), want: "the trust domain changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := certstest.Metrics(t, reader)
			nlogs := logtest.Count(logs(), "SVID renewal failed", tc.want)
			tamper.set(tc.leaf, tc.root)
			r.RenewSoon(0)
			poll.WaitFor(t, 10*time.Second, func() bool {
				return logtest.Count(logs(), "SVID renewal failed", tc.want) > nlogs
			})
			if tc.root != nil {
				poll.WaitFor(t, 10*time.Second, func() bool {
					return logtest.Count(logs(), "watching the issuer's trust bundles failed", tc.want) > 0
				})
			}
			after, _ := certstest.Metrics(t, reader)
			if after["failure"] <= before["failure"] {
				t.Fatal("no failure counted")
			}
			svid, err := r.GetX509SVID()
			if err != nil || !svid.Certificates[0].Equal(good.Certificates[0]) {
				t.Fatalf("the SVID changed: %v", err)
			}
			b, err := r.GetX509BundleForTrustDomain(td)
			if err != nil || !certsx.SameCertSet(b.X509Authorities(), goodBundle.X509Authorities()) {
				t.Fatalf("the bundle changed: %v", err)
			}
			tamper.set(nil, nil)
			// Healed: the next renewal gets the agent's leaf again (the same
			// one: the agent renews it at 60-90% of its 72h life).
			poll.WaitFor(t, 10*time.Second, func() bool {
				rot, _ := certstest.Metrics(t, reader)
				return rot["success"] > after["success"]
			})
		})
	}
}

// TestConsulCAACL: with ACLs on, a token without service:write on the
// service is refused with a message naming the permission; one that may not
// read the agent needs Config.Datacenter; a token with exactly
// service:write works.
func TestConsulCAACL(t *testing.T) {
	srv := testenv.Consul(t, testenv.ConsulACL(""))
	admin := consulClient(t, srv.Addr, srv.Token)
	token := func(name, rules string) string {
		p, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}
	read := token("web-read", `service "web" { policy = "read" }`)
	write := token("web-write", `service "web" { policy = "write" }`)
	ctx := context.Background()

	_, err := newTestConsulCA(t, ctx, Config{Client: consulClient(t, srv.Addr, write), Service: "web"}, certs.WithLogger(testLogger(t)))
	if err == nil || !strings.Contains(err.Error(), "set Config.Datacenter") {
		t.Fatalf("without agent:read and no Datacenter: %v", err)
	}
	_, err = newTestConsulCA(t, ctx, Config{Client: consulClient(t, srv.Addr, read), Service: "web", Datacenter: "dc1"}, certs.WithLogger(testLogger(t)))
	if err == nil || !strings.Contains(err.Error(), `permission denied (the token needs service:write on "web")`) {
		t.Fatalf("with service:read only: %v", err)
	}
	t.Logf("error: %v", err)
	r, err := newTestConsulCA(t, ctx, Config{Client: consulClient(t, srv.Addr, write), Service: "web", Datacenter: "dc1"}, certs.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatalf("with service:write: %v", err)
	}
	if _, err := r.GetX509SVID(); err != nil {
		t.Fatal(err)
	}
}
