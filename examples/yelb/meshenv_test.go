package main

import (
	"context"
	"encoding/pem"
	"log/slog"
	"net/url"
	"regexp"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/proctest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// A trust domain of the mesh test: its Vault PKI mount and the name the
// other side's intentions give it as Peer.
type domain struct {
	td    spiffeid.TrustDomain
	mount string
	peer  string
	pki   *vault.PKI
}

// peerFlag is the -peer value that federates d.
func (d *domain) peerFlag() string { return d.peer + "=" + d.td.Name() + "@" + d.mount }

// meshFixture is Yelb's mesh mode as its README sets it up: Consul, Vault
// with two PKI mounts (trust domain frontend.test for the gateway and the
// ui, backend.test for the app servers) and a third for the databases
// (db.backend.test, the app server's role only, its leaves living dbLeafTTL
// if not 0, else Vault's default, an hour),
// Postgres and Redis with server certificates from the databases' PKI that
// trust its clients only, the intentions, and the command built.
type meshFixture struct {
	consul *testenv.ConsulServer
	vault  *testenv.VaultServer
	root   *vaultapi.Client
	cc     *consul.Client
	front  *domain
	back   *domain
	db     *domain
	pg     *testenv.PostgresServer
	rd     *testenv.RedisServer
	bin    string
	// dbLeafTTL is the lifetime of the app server's certificates for the
	// databases (0: an hour).
	dbLeafTTL time.Duration
	gateway   string // the gateway's URL, without the final slash
}

func newMeshFixture(t *testing.T, dbLeafTTL time.Duration) *meshFixture {
	t.Helper()
	f := &meshFixture{consul: testenv.Consul(t), vault: testenv.Vault(t), dbLeafTTL: dbLeafTTL}
	requireStores(t)
	ctx := poll.Context(t, 2*time.Minute)
	cfg := vaultapi.DefaultConfig()
	cfg.Address = f.vault.HTTPAddr()
	root, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(f.vault.Token)
	f.root = root
	f.front = &domain{td: spiffeid.RequireTrustDomainFromString("frontend.test"), mount: "pki-frontend", peer: "frontend"}
	f.back = &domain{td: spiffeid.RequireTrustDomainFromString("backend.test"), mount: "pki-backend", peer: "backend"}
	f.db = &domain{td: spiffeid.RequireTrustDomainFromString("db.backend.test"), mount: "pki-yelb-db", peer: "yelb-db"}
	for _, d := range []struct {
		*domain
		services []string
		cn       bool
		leafTTL  time.Duration
	}{
		{f.front, []string{gatewayName, uiName, "intruder-a"}, false, 0},
		{f.back, []string{appName, "intruder-b"}, true, 0},
		{f.db, []string{appName}, true, dbLeafTTL},
	} {
		d.pki, err = vault.Bootstrap(ctx, root, vault.BootstrapConfig{
			Mount: d.mount, TrustDomain: d.td, Services: d.services, CommonNames: d.cn,
			PolicyPrefix: "ztn-" + d.peer + "-", LeafTTL: d.leafTTL,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.pg = testenv.Postgres(t, f.storeServerTLS(t), testenv.PostgresDatabase(yelb.Database, appName))
	f.rd = testenv.Redis(t, f.storeServerTLS(t))

	f.cc = meshtest.ConsulClient(t, f.consul.Addr)
	f.writeIntentions(t)
	f.bin = proctest.Build(t, "yelb")
	return f
}

// storeServerTLS issues the Postgres and Redis server certificate (for
// 127.0.0.1) from the databases' PKI, with a role of its own, and trusts
// the databases' root only.
func (f *meshFixture) storeServerTLS(t *testing.T) testenv.ServerTLS {
	t.Helper()
	m := f.db.mount
	if _, err := f.root.Logical().Write(m+"/roles/yelb-stores", map[string]any{
		"allow_ip_sans": true, "allow_any_name": false, "allow_localhost": false, "allowed_domains": []string{}, "require_cn": false,
		"server_flag": true, "client_flag": false, "key_type": "ec", "key_bits": 256, "no_store": true, "ttl": "24h",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := f.root.Logical().Write(m+"/issue/yelb-stores", map[string]any{"ip_sans": "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := s.Data["certificate"].(string)
	issuing, _ := s.Data["issuing_ca"].(string)
	key, _ := s.Data["private_key"].(string)
	return testenv.ServerTLS{
		Cert:      []byte(cert + "\n" + issuing + "\n"),
		Key:       []byte(key + "\n"),
		ClientCAs: f.rootPEM(t, f.db),
	}
}

// rootPEM is the root certificate of d's PKI.
func (f *meshFixture) rootPEM(t *testing.T, d *domain) []byte {
	t.Helper()
	s, err := f.root.Logical().Read(d.mount + "/issuer/" + d.pki.RootIssuer + "/json")
	if err != nil || s == nil {
		t.Fatalf("read the root of %s: %v", d.mount, err)
	}
	c, _ := s.Data["certificate"].(string)
	if b, _ := pem.Decode([]byte(c)); b == nil {
		t.Fatalf("root of %s: no PEM", d.mount)
	}
	return []byte(c + "\n")
}

// writeIntentions writes README's intentions: gateway → ui; the ui of the
// peer frontend → appserver, GET /api/... only (an L7 intention: the
// app server's protocol is http).
func (f *meshFixture) writeIntentions(t *testing.T) {
	t.Helper()
	for _, e := range []consul.ConfigEntry{
		&consul.ServiceConfigEntry{Kind: consul.ServiceDefaults, Name: appName, Protocol: "http"},
		&consul.ServiceConfigEntry{Kind: consul.ServiceDefaults, Name: uiName, Protocol: "http"},
		&consul.ServiceIntentionsConfigEntry{Kind: consul.ServiceIntentions, Name: uiName,
			Sources: []*consul.SourceIntention{{Name: gatewayName, Action: consul.IntentionActionAllow}}},
		&consul.ServiceIntentionsConfigEntry{Kind: consul.ServiceIntentions, Name: appName,
			Sources: []*consul.SourceIntention{{Name: uiName, Peer: f.front.peer, Permissions: []*consul.IntentionPermission{{
				Action: consul.IntentionActionAllow,
				HTTP:   &consul.IntentionHTTPPermission{PathPrefix: "/api/", Methods: []string{"GET"}},
			}}}}},
	} {
		if _, _, err := f.cc.ConfigEntries().Set(e, nil); err != nil {
			t.Fatalf("consul config write %s %s: %v", e.GetKind(), e.GetName(), err)
		}
	}
}

// env is the environment of a process that is service of d.
func (f *meshFixture) env(t *testing.T, d *domain, service string) []string {
	t.Helper()
	return f.envToken(d, f.token(t, d, service))
}

// envToken is env with a Vault token of the test's choosing.
func (f *meshFixture) envToken(d *domain, token string) []string {
	return proctest.Env(
		"CONSUL_HTTP_ADDR="+f.consul.Addr,
		"VAULT_ADDR="+f.vault.HTTPAddr(),
		"VAULT_TOKEN="+token,
		"ZTN_PKI_MOUNT="+d.mount,
		"ZTN_PKI_ROLE={service}",
		"ZTN_TRUST_DOMAIN="+d.td.Name(),
		"ZTN_DATACENTER=dc1",
	)
}

// token is a Vault token with service's policy only, and the extra
// policies.
func (f *meshFixture) token(t *testing.T, d *domain, service string, extra ...string) string {
	t.Helper()
	s, err := f.root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: append([]string{d.pki.Policies[service]}, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

var serving = regexp.MustCompile(`^yelb: \S+ spiffe://\S+ (?:\(\S+\) )?serving on (\S+)$`)

// startAppServer starts an app server process answering as hostname, its
// token holding its policies of the back end's PKI and of the databases'.
func (f *meshFixture) startAppServer(t *testing.T, hostname string) *proctest.Process {
	t.Helper()
	env := f.envToken(f.back, f.token(t, f.back, appName, f.db.pki.Policies[appName]))
	p := proctest.Start(t, hostname, f.bin, env, "-mode", "appserver", "-addr", "127.0.0.1:0",
		"-hostname", hostname, "-postgres", f.pg.Addr, "-redis", f.rd.Addr, "-peer", f.front.peerFlag(),
		"-db-pki", f.db.td.Name()+"@"+f.db.mount)
	p.Addr = serving.FindStringSubmatch(p.WaitLine(t, serving, time.Minute))[1]
	return p
}

// startFront starts the ui and the gateway, and sets f.gateway.
func (f *meshFixture) startFront(t *testing.T) (ui, gw *proctest.Process) {
	t.Helper()
	ui = proctest.Start(t, "ui", f.bin, f.env(t, f.front, uiName), "-mode", "ui", "-addr", "127.0.0.1:0", "-peer", f.back.peerFlag())
	ui.WaitLine(t, serving, time.Minute)
	gw = proctest.Start(t, "gateway", f.bin, f.env(t, f.front, gatewayName), "-mode", "gateway", "-addr", "127.0.0.1:0")
	open := regexp.MustCompile(`^yelb: gateway \S+: open (http://\S+)/$`)
	f.gateway = open.FindStringSubmatch(gw.WaitLine(t, open, time.Minute))[1]
	if _, err := url.Parse(f.gateway); err != nil {
		t.Fatal(err)
	}
	return ui, gw
}

// waitAnswers waits until GET path through the gateway answers 200.
func (f *meshFixture) waitAnswers(t *testing.T, path string) {
	t.Helper()
	poll.Eventually(t, 30*time.Second, func() error {
		return get(context.Background(), f.gateway+path)
	})
}

// startHTTPSGateway gives the front end's PKI a role for web names and
// starts a gateway with -https-role; it returns the gateway's URL (without
// the final slash).
func (f *meshFixture) startHTTPSGateway(t *testing.T) (string, *proctest.Process) {
	t.Helper()
	m := f.front.mount
	if _, err := f.root.Logical().Write(m+"/roles/yelb-web", map[string]any{
		"allow_ip_sans": true, "allow_any_name": false, "allow_localhost": false, "allowed_domains": []string{},
		"require_cn": false, "server_flag": true, "client_flag": false, "key_type": "ec", "key_bits": 256,
		"no_store": true, "ttl": "1h", "use_csr_sans": true,
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.root.Sys().PutPolicy("yelb-web", `path "`+m+`/sign/yelb-web" { capabilities = ["create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, "gateway-https", f.bin, f.envToken(f.front, f.token(t, f.front, gatewayName, "yelb-web")),
		"-mode", "gateway", "-addr", "127.0.0.1:0", "-https-role", "yelb-web")
	open := regexp.MustCompile(`^yelb: gateway \S+: open (https://\S+)/$`)
	return open.FindStringSubmatch(p.WaitLine(t, open, time.Minute))[1], p
}

// dbIdentity is the app server's identity for the databases, as its process
// gets it (newDBIdentity), with a token of its policy of the databases' PKI
// only.
func (f *meshFixture) dbIdentity(ctx context.Context, t *testing.T) *certs.Rotator {
	t.Helper()
	env := meshEnv{vaultAddr: f.vault.HTTPAddr(), vaultToken: f.token(t, f.db, appName), role: "{service}", datacenter: "dc1"}
	id, err := newDBIdentity(ctx, env, f.db.td.Name()+"@"+f.db.mount, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = id.Close() })
	return id
}
