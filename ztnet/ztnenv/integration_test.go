package ztnenv_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vault "github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// Mesh mode end to end: a real Consul and Vault, the PKI bootstrapped with
// one role per service, and a token holding only the two services'
// policies. Env.Listen registers api in Consul with a passing check;
// Env.Dial as web finds it, and each end sees the other's Vault-issued
// SPIFFE ID. A deny in Consul refuses the next Dial with Consul's reason;
// Close deregisters. A role that does not exist is named in the error.
func TestEnvMeshConsulVault(t *testing.T) {
	csrv := testenv.Consul(t)
	vsrv := testenv.Vault(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	root, _ := meshtest.VaultPKI(t, ctx, vsrv, "api", "web")
	tok, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"ztn-api", "ztn-web"}})
	if err != nil {
		t.Fatal(err)
	}

	cc := meshtest.ConsulClient(t, csrv.Addr)
	setIntention(t, cc, "api", "web", consul.IntentionActionAllow)

	vars := map[string]string{
		"CONSUL_HTTP_ADDR": csrv.Addr,
		"VAULT_ADDR":       vsrv.HTTPAddr(),
		"VAULT_TOKEN":      tok.Auth.ClientToken,
		"ZTN_PKI_MOUNT":    "pki",
		"ZTN_PKI_ROLE":     "{service}",
		"ZTN_TRUST_DOMAIN": "ztn.test",
		"ZTN_DATACENTER":   "dc1",
		"ZTN_SERVICE":      "web",
	}
	env, err := ztnenv.New(func(k string) string { return vars[k] }, ztnenv.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	l, err := listenAs(ctx, env, "api")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			peer, _ := ztnet.Peer(c)
			_, _ = io.WriteString(c, peer.String())
			c.Close()
		}
	}()
	entries, _, err := cc.Health().Connect("api", "", true, nil)
	if err != nil || len(entries) != 1 || entries[0].Service.Port != l.Addr().(*net.TCPAddr).Port {
		t.Fatalf("consul's passing connect instances of api: %v, %v", entries, err)
	}

	call := func() (string, error) {
		c, err := env.Dial(ctx, "api")
		if err != nil {
			return "", err
		}
		defer c.Close()
		if got, _ := ztnet.Peer(c); got.String() != "spiffe://ztn.test/ns/default/dc/dc1/svc/api" {
			return "", fmt.Errorf("reached %s", got)
		}
		if leaf := c.ConnectionState().PeerCertificates[0]; len(leaf.URIs) != 1 || leaf.Issuer.CommonName == "" {
			return "", fmt.Errorf("server certificate %v issued by %q", leaf.URIs, leaf.Issuer.CommonName)
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	got, err := call()
	if err != nil || got != "spiffe://ztn.test/ns/default/dc/dc1/svc/web" {
		t.Fatalf("call: %q, %v", got, err)
	}

	setIntention(t, cc, "api", "web", consul.IntentionActionDeny)
	t0 := time.Now()
	for {
		_, err = call()
		var denied *ztnet.DeniedError
		if errors.As(err, &denied) {
			t.Logf("denied %s after the deny was written: %v", time.Since(t0).Round(time.Millisecond), err)
			if !strings.Contains(denied.Reason, "web") {
				t.Errorf("reason %q does not name the intention", denied.Reason)
			}
			break
		}
		if err != nil {
			t.Fatalf("call after deny: %v", err)
		}
		if time.Since(t0) > time.Second {
			t.Fatal("still allowed 1s after the deny")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A role that is not there: the error names it.
	bad := map[string]string{}
	for k, v := range vars {
		bad[k] = v
	}
	bad["ZTN_PKI_ROLE"] = "nope-{service}"
	env2, err := ztnenv.New(func(k string) string { return bad[k] }, ztnenv.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Close()
	if _, err := listenAs(ctx, env2, "api"); err == nil || !strings.Contains(err.Error(), "role nope-api") {
		t.Errorf("Listen with a missing role: %v", err)
	}

	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _, err = cc.Health().Connect("api", "", false, nil)
	if err != nil || len(entries) != 0 {
		t.Errorf("after Close, consul still has %d instances of api (%v)", len(entries), err)
	}
}

func setIntention(t *testing.T, c *consul.Client, dest, src string, action consul.IntentionAction) {
	t.Helper()
	e := &consul.ServiceIntentionsConfigEntry{Kind: consul.ServiceIntentions, Name: dest,
		Sources: []*consul.SourceIntention{{Name: src, Action: action}}}
	if _, _, err := c.ConfigEntries().Set(e, nil); err != nil {
		t.Fatalf("intention %s -> %s %s: %v", src, dest, action, err)
	}
}

// listenAs listens as service on a free loopback port.
func listenAs(ctx context.Context, e *ztnenv.Env, service string) (net.Listener, error) {
	s, err := e.Service(ctx, service)
	if err != nil {
		return nil, err
	}
	return s.Listen(ctx, "tcp", "127.0.0.1:0")
}
