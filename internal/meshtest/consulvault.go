package meshtest

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vault "github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

// ConsulClient returns a client of the Consul agent at addr whose idle
// connections are closed when the test ends.
func ConsulClient(t testing.TB, addr string) *consul.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := consul.NewClient(&consul.Config{Address: addr, HttpClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// VaultSources sets up Vault's PKI for services (certs.BootstrapVault, trust
// domain TrustDomain) and returns for each a certificate source signed by
// Vault, logged in with a token that holds only that service's policy.
func VaultSources(t testing.TB, ctx context.Context, vsrv *testenv.VaultServer, services ...string) map[string]certs.Source {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = vsrv.HTTPAddr()
	root, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(vsrv.Token)
	td := spiffeid.RequireTrustDomainFromString(TrustDomain)
	pki, err := certs.BootstrapVault(ctx, root, certs.VaultBootstrap{TrustDomain: td, Services: services})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]certs.Source, len(services))
	for _, s := range services {
		tok, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{pki.Policies[s]}})
		if err != nil {
			t.Fatal(err)
		}
		src, err := certs.NewVault(ctx, certs.VaultConfig{
			Service: s, TrustDomain: td, Address: vsrv.HTTPAddr(), Auth: certs.VaultToken(tok.Auth.ClientToken),
		}, certs.WithLogger(Discard()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		out[s] = src
	}
	return out
}

// ConsulAuthz returns dest's intentions from Consul, synced.
func ConsulAuthz(t testing.TB, cc *consul.Client, dest string, opts ...authz.ConsulOption) *authz.Consul {
	t.Helper()
	a, err := authz.NewConsul(cc, dest, append([]authz.ConsulOption{authz.WithConsulLogger(Discard())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if err := a.WaitSynced(Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return a
}

// MeshService returns a ztn service with identities from src, finding (and,
// when it listens, registering) instances with r, authorizing with a (the
// default when nil); closed when the test ends.
func MeshService(t testing.TB, ctx context.Context, name string, src certs.Source, r discovery.Resolver, a authz.Authorizer) *ztnet.Service {
	t.Helper()
	opts := []ztnet.Option{ztnet.WithSource(src), ztnet.WithResolver(r), ztnet.WithLogger(Discard())}
	if a != nil {
		opts = append(opts, ztnet.WithAuthorizer(a))
	}
	s, err := ztnet.New(ctx, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// CountingListener counts the connections it accepted.
type CountingListener struct {
	net.Listener
	N atomic.Int64
}

// Accept accepts and counts a connection.
func (l *CountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.N.Add(1)
	}
	return c, err
}
