package vault

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// TestVaultBadInput: each misconfiguration fails New with an error that
// names what is wrong.
func TestVaultBadInput(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web", "api")
	e.write(t, "pki/roles/rsa-only", map[string]any{
		"allowed_uri_sans": serviceID("web").String(), "require_cn": false, "key_type": "rsa",
	})
	e.write(t, "sys/mounts/empty", map[string]any{"type": "pki"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	rootAuth := Token(e.srv.Token)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"unreachable", func(c *Config) { c.Address = dead }, "cannot reach Vault at " + dead},
		{"not vault", func(c *Config) { c.Address = "http://127.0.0.1:1" }, "cannot reach Vault"},
		{"wrong token", func(c *Config) { c.Auth = Token("hvs.bogus") }, "login with token: Vault rejects the token (invalid, expired or revoked): permission denied; invalid token"},
		{"empty token", func(c *Config) { c.Auth = Token("") }, "login with token: empty token"},
		{"missing token file", func(c *Config) { c.Auth = TokenFile("/nonexistent/token") }, "login with token file /nonexistent/token: read token file"},
		{"missing mount", func(c *Config) { c.Mount = "nope" }, `mount "nope" not found (or it is not a PKI engine)`},
		{"mount without CA", func(c *Config) { c.Mount = "empty" }, `mount "empty" has no issuers`},
		{"missing role", func(c *Config) { c.Role, c.Auth = "nope", rootAuth }, `role "nope" not found at pki/`},
		{"role not in policy", func(c *Config) { c.Role = "api" }, `sign with role "api" at pki/: permission denied (check the token's policy)`},
		{"role refuses SAN", func(c *Config) { c.Role, c.Auth = "api", rootAuth }, `role "api" at pki/ refuses the CSR for spiffe://ztn.test/ns/default/dc/dc1/svc/web: URI Subject Alternative Names`},
		{"role wants RSA", func(c *Config) { c.Role, c.Auth = "rsa-only", rootAuth }, `role "rsa-only" at pki/ refuses the CSR`},
		{"bad service name", func(c *Config) { c.Service = "a/b" }, `vault: service "a/b"`},
		{"no trust domain", func(c *Config) { c.TrustDomain = spiffeid.TrustDomain{} }, "empty trust domain"},
		{"garbage CA PEM", func(c *Config) {
			c.TLS = &api.TLSConfig{CACertBytes: []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")}
		}, "vault: TLS configuration"},
		{"negative TTL", func(c *Config) { c.TTL = -time.Second }, "negative duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.config(t, "web")
			tc.edit(&cfg)
			r, err := New(context.Background(), cfg, certs.WithLogger(tbLogger(t)))
			if err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "vault: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error:\n  %v\nwant one line containing:\n  %s", err, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestVaultDefaultsFromEnvironment: with only Service and TrustDomain,
// New uses VAULT_ADDR and VAULT_TOKEN; without a token it says so.
func TestVaultDefaultsFromEnvironment(t *testing.T) {
	e := newVaultEnv(t, time.Hour, "web")
	t.Setenv("VAULT_ADDR", e.srv.HTTPAddr())
	t.Setenv("VAULT_TOKEN", e.serviceToken(t, "web", nil))
	r := newVault(t, Config{Service: "web", TrustDomain: testTD})
	if svid, err := r.GetX509SVID(); err != nil || svid.ID != serviceID("web") {
		t.Fatalf("SVID %v, %v", svid, err)
	}
	t.Setenv("VAULT_TOKEN", "")
	_, err := New(context.Background(), Config{Service: "web", TrustDomain: testTD})
	if err == nil || !strings.Contains(err.Error(), "no Auth in Config and VAULT_TOKEN is not set") {
		t.Fatalf("without a token: %v", err)
	}
}

// tamperProxy is a fault injector, not a stand-in for Vault: it forwards
// every request to the real Vault and, depending on its mode, corrupts the
// request or the response of <mount>/sign/<role> or of issuer/<id>/json.
// A real Vault cannot be made to return malformed or foreign certificates,
// which is what these tests need.
type tamperProxy struct {
	*httptest.Server
	mu   sync.Mutex
	mode string
	// foreign is the PEM certificate that mode "other identity" returns.
	foreign string
}

func newTamperProxy(t *testing.T, vaultURL string) *tamperProxy {
	target, err := url.Parse(vaultURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &tamperProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = p.response
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.get() == "foreign key" && strings.Contains(r.URL.Path, "/sign/") {
			// Swap our CSR for one with the same SAN and another key, as a
			// man in the middle would.
			body, _ := io.ReadAll(r.Body)
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			m["csr"] = csrPEM(t, "", nil, serviceID("web").String())
			body, _ = json.Marshal(m)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *tamperProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
}

func (p *tamperProxy) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *tamperProxy) response(resp *http.Response) error {
	mode := p.get()
	path := resp.Request.URL.Path
	sign := strings.Contains(path, "/sign/")
	issuer := strings.Contains(path, "/issuer/") && strings.HasSuffix(path, "/json")
	if mode == "" || mode == "foreign key" || !(sign || issuer) {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var env map[string]any
	_ = json.Unmarshal(body, &env)
	data, _ := env["data"].(map[string]any)
	const garbagePEM = "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n"
	switch {
	case mode == "not JSON" && sign:
		body = []byte("<html>502 Bad Gateway</html>")
	case mode == "truncated" && sign:
		body = body[:len(body)/2]
	case mode == "no data" && sign:
		body = []byte(`{"request_id":"x","data":null}`)
	case data == nil:
	case mode == "garbage certificate" && sign:
		data["certificate"] = garbagePEM
	case mode == "not PEM" && sign:
		data["certificate"] = "hello"
	case mode == "two certificates" && sign:
		data["certificate"] = data["certificate"].(string) + "\n" + data["certificate"].(string)
	case mode == "wrong type" && sign:
		data["ca_chain"] = 42
	case mode == "garbage chain" && sign:
		data["ca_chain"] = []string{garbagePEM}
	case mode == "no chain" && sign:
		data["ca_chain"], data["issuing_ca"] = []string{}, ""
	case mode == "private key in chain" && sign:
		data["ca_chain"] = []string{"-----BEGIN EC PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END EC PRIVATE KEY-----\n"}
	case mode == "other identity" && sign:
		data["certificate"] = p.foreign
	case mode == "garbage issuer" && issuer:
		data["certificate"] = garbagePEM
	}
	if data != nil && !strings.HasPrefix(mode, "not JSON") && mode != "truncated" && mode != "no data" {
		body, _ = json.Marshal(env)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// TestVaultMalformedResponses: corrupt or foreign answers to the signing
// request (and to the issuers' read) are refused with a clear error, at
// construction and during rotation, where they show in the logs and the
// failure metric and the current SVID stays. Never a panic, never an
// identity that is not exactly ours.
func TestVaultMalformedResponses(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web", "api")
	proxy := newTamperProxy(t, e.srv.HTTPAddr())
	s := e.write(t, "pki/sign/api", map[string]any{"csr": csrPEM(t, "", nil, serviceID("api").String()), "format": "pem"})
	proxy.foreign = s.Data["certificate"].(string)

	modes := []struct{ mode, want string }{
		{"not JSON", "malformed response (HTTP 200)"},
		{"truncated", "malformed response (HTTP 200)"},
		{"no data", "malformed response (HTTP 200): no data"},
		{"garbage certificate", "malformed response: certificate: PEM block 1: x509:"},
		{"not PEM", "malformed response: certificate: PEM block 1: not PEM"},
		{"two certificates", "malformed response: certificate: 2 certificates, want 1"},
		{"wrong type", "malformed response (HTTP 200): json: cannot unmarshal number"},
		{"garbage chain", "malformed response: ca_chain[0]: PEM block 1: x509:"},
		{"no chain", "malformed response: no issuing_ca or ca_chain"},
		{"private key in chain", `ca_chain[0]: PEM block 1 is a "EC PRIVATE KEY", want CERTIFICATE`},
		{"other identity", "refusing the certificate Vault returned: its URI SANs are [\"spiffe://ztn.test/ns/default/dc/dc1/svc/api\"], want exactly [spiffe://ztn.test/ns/default/dc/dc1/svc/web]"},
		{"foreign key", "refusing the certificate Vault returned: its public key is not the one of our CSR"},
		{"garbage issuer", "malformed response: certificate: PEM block 1: x509:"},
	}
	for _, m := range modes {
		t.Run("construction/"+m.mode, func(t *testing.T) {
			proxy.set(m.mode)
			cfg := e.config(t, "web")
			cfg.Address = proxy.URL
			r, err := New(context.Background(), cfg, certs.WithLogger(tbLogger(t)))
			if err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), m.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error:\n  %v\nwant one line containing:\n  %s", err, m.want)
			}
			t.Logf("error: %v", err)
		})
	}

	t.Run("rotation", func(t *testing.T) {
		proxy.set("")
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer mp.Shutdown(context.Background())
		logger, logs := newLogTap(t)
		cfg := e.config(t, "web")
		cfg.Address = proxy.URL
		cfg.BundleRefresh = time.Hour
		r := newVault(t, cfg, certs.WithLogger(logger), certs.WithMeterProvider(mp), certs.WithBackoff(time.Hour, time.Hour))
		before, _ := r.GetX509SVID()
		for i, m := range modes {
			if m.mode == "garbage issuer" {
				continue // the bundle read after issuance falls back; tested below
			}
			proxy.set(m.mode)
			already := logtest.Count(logs(), "SVID renewal failed", m.want, "expires_in=")
			r.RenewSoon(0)
			poll.WaitFor(t, 5*time.Second, func() bool {
				return logtest.Count(logs(), "SVID renewal failed") == i+1
			})
			if n := logtest.Count(logs(), "SVID renewal failed", m.want, "expires_in=") - already; n != 1 {
				t.Errorf("%s: %d new renewal failure logs contain %q, want 1", m.mode, n, m.want)
			}
			if svid, err := r.GetX509SVID(); err != nil || svid != before {
				t.Fatalf("%s: SVID changed or failed after a refused renewal: %v", m.mode, err)
			}
		}
		rotations, expiry := certstest.Metrics(t, reader)
		if rotations["failure"] != int64(len(modes)-1) || rotations["success"] != 1 {
			t.Errorf("rotations metric %v, want %d failures, 1 success", rotations, len(modes)-1)
		}
		if expiry[serviceID("web").String()] < 3500 {
			t.Errorf("expiry gauge %v, want about 3600", expiry)
		}

		// Issuers unreadable after a good signature: the certificate is
		// installed with the last known bundle plus the root Vault returned.
		proxy.set("garbage issuer")
		changed := r.Changed()
		r.RenewSoon(0)
		certstest.WaitChanged(t, changed, 5*time.Second, "a renewal")
		if svid, _ := r.GetX509SVID(); svid == before {
			t.Fatal("no new SVID")
		}
		if logtest.Count(logs(), "reading the trust bundle after issuance failed", "malformed response") != 1 {
			t.Error("no log of the failed bundle read")
		}
	})
}

// A plain http:// Vault address to another machine is refused before any
// request (the token would cross the network in clear, and anyone on the
// path could add a root to the trust bundle), unless AllowHTTP says so.
func TestVaultRefusesRemotePlainHTTP(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("ztn.test")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := New(ctx, Config{Service: "web", TrustDomain: td, Address: "http://192.0.2.1:8200", Auth: Token("t")})
	if err == nil || !strings.Contains(err.Error(), "plain HTTP to a host that is not this machine") || !strings.Contains(err.Error(), "AllowHTTP") {
		t.Fatalf("New over remote plain HTTP: %v", err)
	}
	// Allowed, it goes on to contact Vault (nothing answers at 192.0.2.1, a
	// documentation address): the error is then about reaching it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = New(ctx2, Config{Service: "web", TrustDomain: td, Address: "http://192.0.2.1:8200", Auth: Token("t"), AllowHTTP: true, RequestTimeout: 200 * time.Millisecond})
	if err == nil || strings.Contains(err.Error(), "plain HTTP") {
		t.Fatalf("New with AllowHTTP: %v, want an error reaching Vault", err)
	}
}
