package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// VaultServer is a Vault server in dev mode (in-memory storage, unsealed, a
// known root token, KV v2 at secret/), started by Vault.
//
// Dev mode keeps its state in memory: after Stop/Kill and Start (or Restart)
// every mount (PKI included), policy and token other than the root token is
// gone. The port and the root token stay the same. Tests of an outage during
// which Vault's state must survive will need a non-dev server with file
// storage (init + unseal) — not implemented yet.
type VaultServer struct {
	// Addr is the API's host:port; HTTPAddr gives the URL for api.Config.Address.
	Addr string
	// Token is the root token.
	Token string
	// LogPath is the server's output, across restarts.
	LogPath string

	server
}

// VaultOption configures Vault.
type VaultOption func(*vaultConfig)

type vaultConfig struct {
	token   string
	timeout time.Duration
}

// VaultRootToken sets the root token (default: random).
func VaultRootToken(token string) VaultOption {
	return func(c *vaultConfig) { c.token = token }
}

// VaultStartTimeout sets how long a start may take before the test fails
// (default 60s).
func VaultStartTimeout(d time.Duration) VaultOption {
	return func(c *vaultConfig) { c.timeout = d }
}

// Vault starts a dev-mode Vault server for the test on a free loopback port
// and waits until /v1/sys/health reports it active and the root token works.
// The server is killed when the test ends. The test is skipped if there is no
// vault binary (and fails if ZTN_REQUIRE_TOOLS is set).
func Vault(t testing.TB, opts ...VaultOption) *VaultServer {
	t.Helper()
	cfg := vaultConfig{token: "root-" + randomUUID(), timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin := toolBinary(t, "vault")
	dir := t.TempDir()
	s := &VaultServer{Token: cfg.token, server: server{t: t, timeout: cfg.timeout}}
	s.server.ready = s.serves
	s.where = func() string { return "at " + s.HTTPAddr() }
	// HOME: the dev server and its token helper must not touch the user's.
	env := cleanEnv([]string{"VAULT_", "HOME="}, "HOME="+dir, "VAULT_DISABLE_MLOCK=true")

	s.p = newProc(t, "vault", bin, dir, nil, env)
	s.LogPath = s.p.logPath
	s.startOnFreePorts(func() ([]string, error) {
		// The dev server's cluster listener takes port+1: pick a free pair.
		ports, err := freePorts("127.0.0.1", 1, true)
		if err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		args := []string{"server", "-dev",
			"-dev-root-token-id=" + cfg.token,
			"-dev-listen-address=" + s.Addr,
			"-dev-no-store-token",
			"-log-level=info",
		}
		return args, nil
	})
	return s
}

// HTTPAddr returns the API's URL, http://host:port.
func (s *VaultServer) HTTPAddr() string { return "http://" + s.Addr }

// serves: sys/health says initialized, unsealed and active (200), and the root
// token is accepted.
func (s *VaultServer) serves(ctx context.Context) (bool, error) {
	code, body, err := doJSON(ctx, http.MethodGet, s.HTTPAddr()+"/v1/sys/health", nil, nil)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("sys/health: %d %q", code, body)
	}
	code, body, err = doJSON(ctx, http.MethodGet, s.HTTPAddr()+"/v1/auth/token/lookup-self", nil, nil, "X-Vault-Token", s.Token)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("auth/token/lookup-self: %d %q", code, body)
	}
	return true, nil
}
