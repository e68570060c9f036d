package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// vaultEnv is a real Vault (dev mode) with a PKI mount set up by
// Bootstrap.
type vaultEnv struct {
	srv  *testenv.VaultServer
	root *api.Client // root token
	pki  *PKI
	boot BootstrapConfig
}

// newVaultEnv starts Vault and bootstraps "pki" for services with leaves of
// ttl (max 2·ttl), backdated by 1s.
func newVaultEnv(t testing.TB, ttl time.Duration, services ...string) *vaultEnv {
	t.Helper()
	srv := testenv.Vault(t)
	c := vaultClient(t, srv.HTTPAddr(), srv.Token)
	e := &vaultEnv{srv: srv, root: c, boot: BootstrapConfig{
		TrustDomain: testTD,
		Services:    services,
		LeafTTL:     ttl,
		LeafMaxTTL:  2 * ttl,
		NotBefore:   time.Second,
	}}
	e.bootstrap(t)
	return e
}

// bootstrap runs Bootstrap again (after a dev-mode restart, say).
func (e *vaultEnv) bootstrap(t testing.TB) {
	t.Helper()
	pki, err := Bootstrap(context.Background(), e.root, e.boot)
	if err != nil {
		t.Fatal(err)
	}
	e.pki = pki
}

func vaultClient(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// write is a Vault write with the root token that must succeed.
func (e *vaultEnv) write(t testing.TB, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := e.root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

// serviceToken creates a token with the service's bootstrap policy.
func (e *vaultEnv) serviceToken(t testing.TB, service string, extra map[string]any) string {
	t.Helper()
	data := map[string]any{"policies": []string{e.pki.Policies[service]}, "ttl": "1h"}
	for k, v := range extra {
		data[k] = v
	}
	s := e.write(t, "auth/token/create", data)
	return s.Auth.ClientToken
}

// config returns a Config for service with a token of its policy.
func (e *vaultEnv) config(t testing.TB, service string) Config {
	t.Helper()
	return Config{
		Service:       service,
		TrustDomain:   testTD,
		Address:       e.srv.HTTPAddr(),
		Auth:          Token(e.serviceToken(t, service, nil)),
		BundleRefresh: 200 * time.Millisecond,
	}
}

// newVault starts a Vault source, closed when the test ends.
func newVault(t testing.TB, cfg Config, opts ...certs.Option) *certs.Rotator {
	t.Helper()
	r, _ := newVaultKeeper(t, cfg, opts...)
	return r
}

// newVaultKeeper is newVault, also returning the source's token keeper.
func newVaultKeeper(t testing.TB, cfg Config, opts ...certs.Option) (*certs.Rotator, *tokenKeeper) {
	t.Helper()
	opts = append([]certs.Option{certs.WithLogger(tbLogger(t)), certs.WithBackoff(100*time.Millisecond, time.Second)}, opts...)
	r, v, err := start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, v.keeper
}

func tbLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// csrPEM makes a CSR with the given URI SANs (and CN, DNS names if set).
func csrPEM(t testing.TB, cn string, dns []string, uris ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{DNSNames: dns}
	tmpl.Subject.CommonName = cn
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func serviceID(name string) spiffeid.ID {
	return spiffeid.RequireFromPath(testTD, "/ns/default/dc/dc1/svc/"+name)
}

// logTap is a slog handler that keeps the messages (with their attributes
// rendered) and forwards everything to the test log.
type logTap struct {
	next slog.Handler
	mu   *sync.Mutex
	recs *[]string
}

func newLogTap(t testing.TB) (*slog.Logger, func() []string) {
	var mu sync.Mutex
	var recs []string
	h := &logTap{next: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}), mu: &mu, recs: &recs}
	return slog.New(h), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), recs...)
	}
}

func (h *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (h *logTap) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.mu.Lock()
	*h.recs = append(*h.recs, b.String())
	h.mu.Unlock()
	return h.next.Handle(ctx, r)
}
func (h *logTap) WithAttrs(as []slog.Attr) slog.Handler {
	return &logTap{next: h.next.WithAttrs(as), mu: h.mu, recs: h.recs}
}
func (h *logTap) WithGroup(g string) slog.Handler {
	return &logTap{next: h.next.WithGroup(g), mu: h.mu, recs: h.recs}
}
