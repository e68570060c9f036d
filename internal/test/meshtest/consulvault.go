package meshtest

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	ztnconsul "github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
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

// VaultPKI returns a client of vsrv with its root token, after setting up
// Vault's PKI for services in TrustDomain (vault.Bootstrap: a CA, and a
// role and a policy per service).
func VaultPKI(t testing.TB, ctx context.Context, vsrv *testenv.VaultServer, services ...string) (*vaultapi.Client, *vault.PKI) {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = vsrv.HTTPAddr()
	root, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(vsrv.Token)
	pki, err := vault.Bootstrap(ctx, root, vault.BootstrapConfig{TrustDomain: spiffeid.RequireTrustDomainFromString(TrustDomain), Services: services})
	if err != nil {
		t.Fatal(err)
	}
	return root, pki
}

// VaultSources sets up Vault's PKI for services (VaultPKI) and returns for
// each a certificate source signed by Vault, logged in with a token that
// holds only that service's policy.
func VaultSources(t testing.TB, ctx context.Context, vsrv *testenv.VaultServer, services ...string) map[string]certs.Source {
	t.Helper()
	root, pki := VaultPKI(t, ctx, vsrv, services...)
	td := spiffeid.RequireTrustDomainFromString(TrustDomain)
	out := make(map[string]certs.Source, len(services))
	for _, s := range services {
		tok, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{pki.Policies[s]}})
		if err != nil {
			t.Fatal(err)
		}
		src, err := vault.New(ctx, vault.Config{
			Service: s, TrustDomain: td, Address: vsrv.HTTPAddr(), Auth: vault.Token(tok.Auth.ClientToken),
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
func ConsulAuthz(t testing.TB, cc *consul.Client, dest string, opts ...ztnconsul.IntentionsOption) *ztnconsul.Intentions {
	t.Helper()
	a, err := ztnconsul.NewIntentions(ztnconsul.Config{Client: cc}, dest, append([]ztnconsul.IntentionsOption{ztnconsul.WithLogger(Discard())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if err := a.WaitSynced(poll.Context(t, 10*time.Second)); err != nil {
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

// L7Mesh is the fixture of the adapters' L7 tests on a real Consul and
// Vault: api's service-defaults give it protocol Protocol, and its
// service-intentions (SetIntentions) give web ordered permissions and every
// other source an L4 deny. Every identity is signed by Vault's PKI.
//
// API (registered in Consul, default deny), Web and Batch find each other
// through Consul; API2 (the same identity, default allow) and Web2 through
// a static catalog, so that Web's calls reach API only.
type L7Mesh struct {
	Consul                      *consul.Client
	API, API2, Web, Web2, Batch *ztnet.Service
}

// NewL7Mesh starts Consul and Vault and returns the mesh for protocol
// ("grpc", "http"), with web's permissions on api set to perms.
func NewL7Mesh(t *testing.T, ctx context.Context, protocol string, perms ...*consul.IntentionPermission) *L7Mesh {
	t.Helper()
	csrv, vsrv := testenv.Consul(t), testenv.Vault(t)
	cc := ConsulClient(t, csrv.Addr)
	sources := VaultSources(t, ctx, vsrv, "api", "web", "batch")
	if _, _, err := cc.ConfigEntries().Set(&consul.ServiceConfigEntry{Kind: consul.ServiceDefaults, Name: "api", Protocol: protocol}, nil); err != nil {
		t.Fatal(err)
	}
	m := &L7Mesh{Consul: cc}
	m.SetIntentions(t, perms...)
	disc, err := ztnconsul.NewCatalog(ztnconsul.Config{Client: cc}, ztnconsul.WithLogger(Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = disc.Close() })
	catalog := discovery.NewStatic(nil)
	m.API = MeshService(t, ctx, "api", sources["api"], disc, ConsulAuthz(t, cc, "api"))
	m.API2 = MeshService(t, ctx, "api", sources["api"], catalog, ConsulAuthz(t, cc, "api", ztnconsul.WithDefaultAllow()))
	m.Web = MeshService(t, ctx, "web", sources["web"], disc, nil)
	m.Web2 = MeshService(t, ctx, "web", sources["web"], catalog, nil)
	m.Batch = MeshService(t, ctx, "batch", sources["batch"], disc, nil)
	return m
}

// SetIntentions writes api's service-intentions to Consul: web with perms,
// then "*" deny.
func (m *L7Mesh) SetIntentions(t testing.TB, perms ...*consul.IntentionPermission) {
	t.Helper()
	_, _, err := m.Consul.ConfigEntries().Set(&consul.ServiceIntentionsConfigEntry{
		Kind: consul.ServiceIntentions, Name: "api",
		Sources: []*consul.SourceIntention{
			{Name: "web", Permissions: perms},
			{Name: "*", Action: consul.IntentionActionDeny},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}
