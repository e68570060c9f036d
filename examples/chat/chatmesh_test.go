package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/examples/internal/fortune"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// chatMesh is the chat in mesh mode on a real Consul, Vault and Postgres:
// every service runs runMesh as `chat -mode ...` does, each with its own
// environment (its own Vault token, holding only its own policies).
type chatMesh struct {
	t       *testing.T
	gateway string // http://host:port
	consul  *consul.Client
	vault   *vaultapi.Client // root
	pg      *testenv.PostgresServer
	weather *weatherAPI
	jaeger  *testenv.JaegerServer     // every service sends its spans here
	prom    *testenv.PrometheusServer // and Prometheus scrapes their /metrics
	out     *logtest.Buffer           // the services' stdout
	log     *logtest.Buffer           // the services' log
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// dbTTL and dbMaxTTL are the Postgres logins' lease: short, so that
// chat-store takes a new login every few seconds during the test.
const dbTTL, dbMaxTTL = 6 * time.Second, 12 * time.Second

func startChatMesh(t *testing.T) *chatMesh {
	t.Helper()
	csrv := testenv.Consul(t)
	vsrv := testenv.Vault(t)
	jaeger := testenv.Jaeger(t)
	ctx, cancelSetup := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancelSetup()
	m := &chatMesh{t: t, out: &logtest.Buffer{}, log: &logtest.Buffer{}, jaeger: jaeger}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("services' output:\n%s\nservices' log:\n%s", m.out, m.log)
		}
	})

	// Postgres: the chat's database owned by chat_owner; Vault's admin and
	// the logins Vault makes (members of chat_owner) use passwords over TLS.
	ca := testenv.NewTestCA(t, "chat db CA")
	serverTLS := ca.ServerTLS(t)
	m.pg = testenv.Postgres(t, serverTLS, testenv.PostgresPasswordAuth("vault_admin", "+chat_owner"))
	adminPW := randomHex(t)
	m.pg.Exec(`CREATE ROLE chat_owner NOLOGIN`)
	m.pg.Exec(`CREATE DATABASE chat OWNER chat_owner`)
	m.pg.Exec(fmt.Sprintf(`CREATE ROLE vault_admin LOGIN CREATEROLE PASSWORD '%s'; GRANT chat_owner TO vault_admin WITH ADMIN OPTION`, adminPW))
	dbCA := filepath.Join(t.TempDir(), "db-ca.pem") // a CA certificate: public
	if err := os.WriteFile(dbCA, serverTLS.ClientCAs, 0o644); err != nil {
		t.Fatal(err)
	}

	// Vault: PKI for every service, the KV secrets, the database engine,
	// and a policy per service for what it reads.
	services := []string{svcGateway, svcWeb, svcStore, svcBot, svcFortune}
	root, pki := meshtest.VaultPKI(t, ctx, vsrv, services...)
	m.vault = root
	signingKey, weatherKey := randomHex(t), randomHex(t)
	if _, err := root.KVv2("secret").Put(ctx, kvWebPath, map[string]any{kvWebField: signingKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, kvBotPath, map[string]any{kvBotField: weatherKey}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().MountWithContext(ctx, "database", &vaultapi.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	vaultWrite(t, ctx, root, "database/config/chat", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@%s/chat?sslmode=verify-full&sslrootcert=%s", m.pg.Addr, dbCA),
		"allowed_roles":  svcStore,
		"username":       "vault_admin",
		"password":       adminPW,
	})
	vaultWrite(t, ctx, root, "database/roles/"+svcStore, map[string]any{
		"db_name":             "chat",
		"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE chat_owner;`},
		"default_ttl":         int(dbTTL / time.Second),
		"max_ttl":             int(dbMaxTTL / time.Second),
	})
	policies := map[string]string{
		svcWeb:   `path "secret/data/chat/web" { capabilities = ["read"] }`,
		svcBot:   `path "secret/data/chat/bot" { capabilities = ["read"] }`,
		svcStore: `path "database/creds/chat-store" { capabilities = ["read"] }` + "\n" + `path "sys/leases/renew" { capabilities = ["update"] }`,
	}
	token := func(service string) string {
		p := []string{pki.Policies[service]}
		if rules, ok := policies[service]; ok {
			if err := root.Sys().PutPolicyWithContext(ctx, "chat-"+service, rules); err != nil {
				t.Fatal(err)
			}
			p = append(p, "chat-"+service)
		}
		s, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: p})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}

	// Consul: config/, as README.md has the operator write it.
	m.consul = meshtest.ConsulClient(t, csrv.Addr)
	m.writeConfig()

	m.weather = startWeatherAPI(t, weatherKey)
	weatherCA := filepath.Join(t.TempDir(), "weather-ca.pem")
	if err := os.WriteFile(weatherCA, m.weather.caPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	env := func(service string, extra ...string) func(string) string {
		vars := map[string]string{
			"CONSUL_HTTP_ADDR": csrv.Addr, "VAULT_ADDR": vsrv.HTTPAddr(), "VAULT_TOKEN": token(service),
			"ZTN_PKI_MOUNT": "pki", "ZTN_PKI_ROLE": "{service}", "ZTN_TRUST_DOMAIN": meshtest.TrustDomain,
			"ZTN_DATACENTER": "dc1", "ZTN_SERVICE": service,
			"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.OTLPEndpoint(),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			vars[extra[i]] = extra[i+1]
		}
		return func(k string) string { return vars[k] }
	}
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	t.Cleanup(m.stop)
	logger := slog.New(slog.NewTextHandler(m.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gateway := make(chan string, 1)
	metrics := make(chan string, 5)
	rc := roleConfig{out: m.out, logger: logger, addr: "127.0.0.1:0", metricsAddr: "127.0.0.1:0",
		listening: func(service string, a net.Addr) {
			switch {
			case service == svcGateway:
				gateway <- "http://" + a.String()
			case strings.HasSuffix(service, " metrics"):
				metrics <- a.String()
			}
		}}
	run := func(mode string, getenv func(string) string) {
		m.wg.Go(func() {
			if err := runMesh(runCtx, mode, getenv, rc); err != nil && runCtx.Err() == nil {
				t.Errorf("chat -mode %s: %v", mode, err)
			}
		})
	}
	run("store", env(svcStore, envDBURL, "postgres://"+m.pg.Addr+"/chat", envDBCA, dbCA))
	run("web", env(svcWeb))
	run("bot", env(svcBot, envWeatherURL, m.weather.url, envWeatherCA, weatherCA))
	run("gateway", env(svcGateway))
	m.wg.Go(func() { runFortune(t, runCtx, env(svcFortune), rc) })

	select {
	case m.gateway = <-gateway:
	case <-ctx.Done():
		t.Fatal("the gateway did not start")
	}
	// Ready when the bot has its user (store, Vault's login, intentions all work).
	// and the gateway finds chat-web in Consul's catalog.
	poll.WaitFor(t, time.Minute, func() bool { return strings.Contains(m.out.String(), "chat-bot: answering as") })
	poll.WaitFor(t, time.Minute, func() bool {
		res, err := http.Get(m.gateway + "/")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	var targets []string
	for range 5 {
		targets = append(targets, <-metrics)
	}
	m.prom = testenv.Prometheus(t, targets)
	return m
}

func (m *chatMesh) stop() {
	m.cancel()
	m.wg.Wait()
}

// writeConfig writes every config entry of config/ to Consul, in file
// name order (each service's defaults before its intentions), as
// `consul config write` does.
func (m *chatMesh) writeConfig() {
	m.t.Helper()
	files, err := fs.Glob(config, "config/*.json")
	if err != nil || len(files) == 0 {
		m.t.Fatalf("config/: %v %v", files, err)
	}
	for _, f := range files {
		b, err := config.ReadFile(f)
		if err != nil {
			m.t.Fatal(err)
		}
		m.writeEntry(b)
	}
}

// writeEntry writes one config entry (Consul's JSON) to Consul.
func (m *chatMesh) writeEntry(js []byte) {
	m.t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		m.t.Fatal(err)
	}
	e, err := consul.DecodeConfigEntry(raw)
	if err != nil {
		m.t.Fatal(err)
	}
	if _, _, err := m.consul.ConfigEntries().Set(e, nil); err != nil {
		m.t.Fatalf("config entry %s %s: %v", e.GetKind(), e.GetName(), err)
	}
}

// runFortune is `fortune -mode server` of examples/fortune, in process,
// with the chat's telemetry.
func runFortune(t *testing.T, ctx context.Context, getenv func(string) string, rc roleConfig) {
	tel, err := setupTelemetry(ctx, getenv, rc.logger, svcFortune)
	if err != nil {
		t.Error(err)
		return
	}
	defer tel.shutdown()
	stop, err := startMetrics(ctx, tel, rc)
	if err != nil {
		t.Error(err)
		return
	}
	defer stop()
	env, err := ztnenv.New(getenv, ztnenv.WithLogger(rc.logger), ztnenv.WithServiceOptions(tel.providers(svcFortune).ztnOptions()...))
	if err != nil {
		t.Error(err)
		return
	}
	defer env.Close()
	l, err := env.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Errorf("fortune: %v", err)
		return
	}
	go func() { <-ctx.Done(); l.Close() }()
	_ = fortune.Serve(ctx, l)
}

func vaultWrite(t *testing.T, ctx context.Context, c *vaultapi.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().WriteWithContext(ctx, path, data); err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// weatherAPI stands in for the external SaaS: an HTTPS server outside the
// mesh, with its own CA, answering OpenWeatherMap's API for the right key.
type weatherAPI struct {
	srv   *httptest.Server
	url   string
	caPEM []byte
	calls atomic.Int64
}

func startWeatherAPI(t *testing.T, key string) *weatherAPI {
	w := &weatherAPI{}
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.calls.Add(1)
		if r.URL.Path != "/data/2.5/weather" || r.URL.Query().Get("appid") != key {
			http.Error(rw, `{"cod":401,"message":"Invalid API key"}`, http.StatusUnauthorized)
			return
		}
		city := r.URL.Query().Get("q")
		fmt.Fprintf(rw, `{"name":%q,"main":{"temp":12.5},"weather":[{"description":"light rain"}]}`, city)
	}))
	w.srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)
	w.url = w.srv.URL
	w.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.srv.Certificate().Raw})
	return w
}
