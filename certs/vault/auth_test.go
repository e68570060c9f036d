package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// renewNow forces an issuance and waits for it.
func renewNow(t *testing.T, r *certs.Rotator) {
	t.Helper()
	before, _ := r.GetX509SVID()
	deadline := time.Now().Add(10 * time.Second)
	for {
		changed := r.Changed()
		r.RenewSoon(0)
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			t.Fatal("no renewal within 10s")
		}
		if svid, err := r.GetX509SVID(); err == nil && svid != before {
			return
		}
	}
}

// TestVaultAuthTokenFile: a renewable token with a short max TTL is renewed
// by the LifetimeWatcher, then replaced by the token the file holds by then;
// issuance keeps working throughout. Token with the root token (no TTL)
// needs no renewal.
func TestVaultAuthTokenFile(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	path := filepath.Join(t.TempDir(), "token")
	// Long enough for a login on a loaded machine, short enough to end in
	// the test.
	const maxTTL = 6 * time.Second
	short := map[string]any{"ttl": "3s", "explicit_max_ttl": maxTTL.String(), "renewable": true}
	firstMade := time.Now()
	first := e.serviceToken(t, "web", short)
	if err := os.WriteFile(path, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogTap(t)
	cfg := e.config(t, "web")
	cfg.Auth = TokenFile(path)
	r, k := newVaultKeeper(t, cfg, certs.WithLogger(logger))
	// The agent that owns the file puts a fresh token there.
	second := e.serviceToken(t, "web", nil)
	if err := os.WriteFile(path, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.WaitFor(t, 2*maxTTL, func() bool { return k.logins.Load() >= 2 })
	if k.client.Token() != second {
		t.Fatal("the client does not use the new token")
	}
	if logtest.Count(logs(), "token renewed") == 0 {
		t.Error("the token was never renewed")
	}
	if logtest.Count(logs(), "logging in again", "token lease is ending") == 0 {
		t.Error("no log of the new login and its reason")
	}
	time.Sleep(time.Until(firstMade.Add(maxTTL + 200*time.Millisecond))) // past the first token's max TTL
	renewNow(t, r)

	root := e.config(t, "web")
	root.Auth = Token(e.srv.Token)
	_, rk := newVaultKeeper(t, root)
	time.Sleep(200 * time.Millisecond)
	if n := rk.logins.Load(); n != 1 {
		t.Errorf("%d logins with a root token, want 1", n)
	}
}

// TestVaultAuthRejectedToken: a token revoked behind our back makes the next
// signing fail with 403; the keeper then logs in again (here: reads the new
// token from the file) and the retry succeeds.
func TestVaultAuthRejectedToken(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	path := filepath.Join(t.TempDir(), "token")
	first := e.serviceToken(t, "web", nil)
	if err := os.WriteFile(path, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(t, "web")
	cfg.Auth = TokenFile(path)
	logger, logs := newLogTap(t)
	r := newVault(t, cfg, certs.WithLogger(logger))
	if err := os.WriteFile(path, []byte(e.serviceToken(t, "web", nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.write(t, "auth/token/revoke", map[string]any{"token": first})
	renewNow(t, r)
	if logtest.Count(logs(), "SVID renewal failed", "permission denied") == 0 {
		t.Error("no failed renewal before the new login")
	}
	if n := logtest.Count(logs(), "INFO vault: logging in again", "reason=Vault rejects the token"); n != 1 {
		t.Errorf("%d new logins after the rejection, want 1:\n%s", n, strings.Join(logs(), "\n"))
	}
}

// TestVaultAuthAppRole: AppRole login, token renewal, a new login when the
// token reaches its max TTL; a wrong secret ID fails New clearly.
func TestVaultAuthAppRole(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	e.write(t, "sys/auth/approle", map[string]any{"type": "approle"})
	e.write(t, "auth/approle/role/web", map[string]any{
		"token_policies": []string{e.pki.Policies["web"]},
		"token_ttl":      "2s",
		"token_max_ttl":  "3s",
	})
	s, err := e.root.Logical().Read("auth/approle/role/web/role-id")
	if err != nil {
		t.Fatal(err)
	}
	rid := s.Data["role_id"].(string)
	sid := e.write(t, "auth/approle/role/web/secret-id", nil).Data["secret_id"].(string)

	cfg := e.config(t, "web")
	cfg.Auth = AppRole(rid, sid, "")
	logger, logs := newLogTap(t)
	r, k := newVaultKeeper(t, cfg, certs.WithLogger(logger))
	poll.WaitFor(t, 6*time.Second, func() bool { return k.logins.Load() >= 2 })
	if logtest.Count(logs(), "token renewed", "approle") == 0 {
		t.Error("the token was never renewed")
	}
	time.Sleep(time.Second) // the first token has expired by now
	renewNow(t, r)

	cfg.Auth = AppRole(rid, "wrong-secret", "")
	_, err = New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "vault: login with approle at auth/approle:") || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("wrong secret ID: %v", err)
	}
	t.Logf("wrong secret ID: %v", err)
}

// TestVaultAuthJWT: JWT login with a token signed by a locally generated
// ECDSA key that Vault's jwt auth is configured to trust; a new JWT is asked
// for at each login.
func TestVaultAuthJWT(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, "sys/auth/jwt", map[string]any{"type": "jwt"})
	e.write(t, "auth/jwt/config", map[string]any{
		"jwt_validation_pubkeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))},
		"bound_issuer":           "https://issuer.ztn.test",
	})
	e.write(t, "auth/jwt/role/web", map[string]any{
		"role_type":       "jwt",
		"bound_audiences": []string{"vault"},
		"bound_subject":   "system:serviceaccount:default:web",
		"user_claim":      "sub",
		"token_policies":  []string{e.pki.Policies["web"]},
		"token_ttl":       "2s",
		"token_max_ttl":   "2s",
	})
	var minted atomic.Int64
	jwt := func(context.Context) (string, error) {
		minted.Add(1)
		return signJWT(t, key, map[string]any{
			"iss": "https://issuer.ztn.test",
			"sub": "system:serviceaccount:default:web",
			"aud": "vault",
			"iat": time.Now().Unix(),
			"nbf": time.Now().Add(-time.Minute).Unix(),
			"exp": time.Now().Add(time.Minute).Unix(),
		}), nil
	}
	cfg := e.config(t, "web")
	cfg.Auth = JWT("web", jwt, "")
	r, k := newVaultKeeper(t, cfg)
	poll.WaitFor(t, 5*time.Second, func() bool { return k.logins.Load() >= 2 })
	if minted.Load() < 2 {
		t.Errorf("%d JWTs minted for %d logins", minted.Load(), k.logins.Load())
	}
	renewNow(t, r)

	// A JWT for another subject is refused at login.
	cfg.Auth = JWT("web", func(context.Context) (string, error) {
		return signJWT(t, key, map[string]any{"iss": "https://issuer.ztn.test", "sub": "system:serviceaccount:default:api",
			"aud": "vault", "exp": time.Now().Add(time.Minute).Unix()}), nil
	}, "")
	_, err = New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "vault: login with jwt at auth/jwt:") {
		t.Fatalf("JWT for another subject: %v", err)
	}
	t.Logf("JWT for another subject: %v", err)
}

// signJWT makes an ES256 JWT with the standard library only.
func signJWT(t testing.TB, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64) // JWS: r and s, 32 bytes each, big-endian
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

// TestVaultAuthKubernetes: Kubernetes login on a real Vault whose
// kubernetes auth is pointed at a stand-in for the Kubernetes TokenReview API
// (there is no Kubernetes here: that one endpoint is faked, Vault is real).
// The service-account token file is read again at every login (vault/api's
// helper reads it once, when made): after the file changes, the next login
// presents the new token.
func TestVaultAuthKubernetes(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	var mu sync.Mutex
	var reviewed []string
	kube := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
			http.NotFound(w, r)
			return
		}
		var tr struct {
			Spec struct {
				Token string `json:"token"`
			} `json:"spec"`
		}
		_ = json.NewDecoder(r.Body).Decode(&tr)
		mu.Lock()
		reviewed = append(reviewed, tr.Spec.Token)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","status":{"authenticated":true,`+
			`"user":{"username":"system:serviceaccount:default:web","uid":"uid-web"}}}`)
	}))
	defer kube.Close()
	e.write(t, "sys/auth/kubernetes", map[string]any{"type": "kubernetes"})
	e.write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host":        kube.URL,
		"pem_keys":               []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))},
		"disable_local_ca_jwt":   true,
		"disable_iss_validation": true,
	})
	e.write(t, "auth/kubernetes/role/web", map[string]any{
		"bound_service_account_names":      []string{"web"},
		"bound_service_account_namespaces": []string{"default"},
		"token_policies":                   []string{e.pki.Policies["web"]},
		"token_ttl":                        "2s",
		"token_max_ttl":                    "2s",
	})
	saToken := func(n int) string {
		return signJWT(t, key, map[string]any{
			"iss":                                    "kubernetes/serviceaccount",
			"sub":                                    "system:serviceaccount:default:web",
			"kubernetes.io/serviceaccount/namespace": "default",
			"kubernetes.io/serviceaccount/service-account.name": "web",
			"kubernetes.io/serviceaccount/service-account.uid":  "uid-web",
			"jti": strconv.Itoa(n),
			"iat": time.Now().Add(-time.Minute).Unix(),
			"nbf": time.Now().Add(-time.Minute).Unix(),
			"exp": time.Now().Add(time.Hour).Unix(),
		})
	}
	path := filepath.Join(t.TempDir(), "token")
	first, second := saToken(1), saToken(2)
	if err := os.WriteFile(path, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(t, "web")
	cfg.Auth = Kubernetes("web", path, "")
	r, k := newVaultKeeper(t, cfg)
	if err := os.WriteFile(path, []byte(second), 0o600); err != nil { // the kubelet rotates it
		t.Fatal(err)
	}
	poll.WaitFor(t, 5*time.Second, func() bool { return k.logins.Load() >= 2 })
	renewNow(t, r)
	mu.Lock()
	got := slices.Clone(reviewed)
	mu.Unlock()
	if len(got) < 2 || got[0] != first || got[len(got)-1] != second {
		t.Fatalf("tokens reviewed: %d, first is the file's first: %v, last is the file's second: %v",
			len(got), len(got) > 0 && got[0] == first, len(got) > 0 && got[len(got)-1] == second)
	}

	cfg.Auth = Kubernetes("web", filepath.Join(t.TempDir(), "missing"), "")
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "login with kubernetes at auth/kubernetes:") {
		t.Fatalf("missing token file: %v", err)
	}
}

// TestVaultAuthTokenEnds: a fixed token that cannot be renewed is used to
// its end without a storm of logins; the end is logged, and afterwards the
// renewals fail with Vault's rejection, in the logs and the metrics.
func TestVaultAuthTokenEnds(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	cfg := e.config(t, "web")
	cfg.Auth = Token(e.serviceToken(t, "web", map[string]any{"ttl": "2s", "renewable": false}))
	logger, logs := newLogTap(t)
	r, k := newVaultKeeper(t, cfg, certs.WithLogger(logger), certs.WithMeterProvider(mp))
	poll.WaitFor(t, 5*time.Second, func() bool {
		return logtest.Count(logs(), "the token cannot be renewed any more") == 1
	})
	poll.WaitFor(t, 5*time.Second, func() bool {
		r.RenewSoon(0) // until the token has expired
		time.Sleep(100 * time.Millisecond)
		return logtest.Count(logs(), "SVID renewal failed", "Vault rejects the token") > 0
	})
	poll.WaitFor(t, 5*time.Second, func() bool {
		return logtest.Count(logs(), "login failed", "Vault rejects the token") > 0
	})
	if n := k.logins.Load(); n > 2 {
		t.Errorf("%d logins with one fixed token, want at most 2", n)
	}
	if rotations, _ := certstest.Metrics(t, reader); rotations["failure"] == 0 {
		t.Errorf("rotations %v, want failures", rotations)
	}
}
