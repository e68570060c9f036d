package ztnenv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// meshVars is a complete mesh-mode environment (nothing listens at the
// addresses: New makes no request).
func meshVars() map[string]string {
	return map[string]string{
		"CONSUL_HTTP_ADDR": "127.0.0.1:1",
		"VAULT_ADDR":       "http://127.0.0.1:1",
		"VAULT_TOKEN":      "s.token",
		"ZTN_PKI_MOUNT":    "pki",
		"ZTN_PKI_ROLE":     "{service}",
		"ZTN_TRUST_DOMAIN": "ztn.test",
		"ZTN_DATACENTER":   "dc1",
	}
}

func getenvFrom(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNewEnvMeshSettings(t *testing.T) {
	all := []string{"CONSUL_HTTP_ADDR", "VAULT_ADDR", "VAULT_TOKEN", "ZTN_PKI_MOUNT", "ZTN_PKI_ROLE", "ZTN_TRUST_DOMAIN", "ZTN_DATACENTER"}
	tests := []struct {
		name    string
		set     map[string]string // applied over meshVars(); "" deletes
		none    bool              // start from an empty environment instead
		missing []string
		invalid []string // variable names expected among the invalid ones
		want    []string // substrings of the error
	}{
		{name: "complete"},
		{name: "complete with optional settings", set: map[string]string{
			"ZTN_DEV": "0", "ZTN_CERT_TTL": "10m", "ZTN_SERVICE": "web", "CONSUL_HTTP_TOKEN": "t", "VAULT_NAMESPACE": "ns1",
			"ZTN_PKI_ROLE": "ztn-{service}", "ZTN_TRUST_DOMAIN": "spiffe://ztn.test",
		}},
		{name: "nothing set", none: true, missing: all, want: []string{
			"ztnenv: environment: set CONSUL_HTTP_ADDR (the Consul agent's HTTP API, e.g. 127.0.0.1:8500), VAULT_ADDR (",
			"ZTN_PKI_MOUNT (the Vault PKI mount that signs service certificates, e.g. pki)",
			"ZTN_DATACENTER (the datacenter in the services' SPIFFE IDs",
			"; or set ZTN_DEV=1 for the embedded dev mesh",
		}},
		{name: "no consul", set: map[string]string{"CONSUL_HTTP_ADDR": ""}, missing: []string{"CONSUL_HTTP_ADDR"}},
		{name: "no vault address", set: map[string]string{"VAULT_ADDR": ""}, missing: []string{"VAULT_ADDR"}},
		{name: "no vault token", set: map[string]string{"VAULT_TOKEN": ""}, missing: []string{"VAULT_TOKEN"}},
		{name: "no mount", set: map[string]string{"ZTN_PKI_MOUNT": ""}, missing: []string{"ZTN_PKI_MOUNT"}},
		{name: "no role", set: map[string]string{"ZTN_PKI_ROLE": ""}, missing: []string{"ZTN_PKI_ROLE"},
			want: []string{"ZTN_PKI_ROLE (the PKI role that signs, {service} standing for the service name"}},
		{name: "no trust domain", set: map[string]string{"ZTN_TRUST_DOMAIN": ""}, missing: []string{"ZTN_TRUST_DOMAIN"}},
		{name: "no datacenter", set: map[string]string{"ZTN_DATACENTER": ""}, missing: []string{"ZTN_DATACENTER"}},
		{name: "mount of slashes", set: map[string]string{"ZTN_PKI_MOUNT": "//"}, invalid: []string{"ZTN_PKI_MOUNT"}},
		{name: "unknown placeholder", set: map[string]string{"ZTN_PKI_ROLE": "ztn-{name}"}, invalid: []string{"ZTN_PKI_ROLE"}},
		{name: "role with a slash", set: map[string]string{"ZTN_PKI_ROLE": "roles/{service}"}, invalid: []string{"ZTN_PKI_ROLE"}},
		{name: "bad trust domain", set: map[string]string{"ZTN_TRUST_DOMAIN": "Not A Domain"}, invalid: []string{"ZTN_TRUST_DOMAIN"}},
		{name: "bad datacenter", set: map[string]string{"ZTN_DATACENTER": "dc/1"}, invalid: []string{"ZTN_DATACENTER"}},
		{name: "bad ttl", set: map[string]string{"ZTN_CERT_TTL": "soon"}, invalid: []string{"ZTN_CERT_TTL"},
			want: []string{`fix ZTN_CERT_TTL="soon": not a Go duration`}},
		{name: "negative ttl", set: map[string]string{"ZTN_CERT_TTL": "-1h"}, invalid: []string{"ZTN_CERT_TTL"}},
		{name: "bad service", set: map[string]string{"ZTN_SERVICE": "web/1"}, invalid: []string{"ZTN_SERVICE"}},
		{name: "plain HTTP to a remote Vault", set: map[string]string{"VAULT_ADDR": "http://vault.example.com:8200"}, invalid: []string{"VAULT_ADDR"},
			want: []string{"plain HTTP to a host that is not this machine", "set ZTN_ALLOW_HTTP=1"}},
		{name: "plain HTTP to a remote Consul", set: map[string]string{"CONSUL_HTTP_ADDR": "10.0.0.5:8500"}, invalid: []string{"CONSUL_HTTP_ADDR"}},
		{name: "remote Consul over TLS", set: map[string]string{"CONSUL_HTTP_ADDR": "10.0.0.5:8500", "CONSUL_HTTP_SSL": "true", "VAULT_ADDR": "https://vault.example.com:8200"}},
		{name: "plain HTTP allowed explicitly", set: map[string]string{"CONSUL_HTTP_ADDR": "http://10.0.0.5:8500", "VAULT_ADDR": "http://vault.example.com:8200", "ZTN_ALLOW_HTTP": "1"}},
		{name: "intentions file in mesh mode", set: map[string]string{"ZTN_INTENTIONS": "x.json"}, invalid: []string{"ZTN_INTENTIONS"},
			want: []string{"only the dev mesh reads intentions from a file"}},
		{name: "missing and invalid together", set: map[string]string{"VAULT_TOKEN": "", "ZTN_DATACENTER": "", "ZTN_CERT_TTL": "x", "ZTN_TRUST_DOMAIN": "a b"},
			missing: []string{"VAULT_TOKEN", "ZTN_DATACENTER"}, invalid: []string{"ZTN_TRUST_DOMAIN", "ZTN_CERT_TTL"},
			want: []string{"set VAULT_TOKEN (", "; fix ZTN_TRUST_DOMAIN=", `; ZTN_CERT_TTL="x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := meshVars()
			if tt.none {
				vars = map[string]string{}
			}
			for k, v := range tt.set {
				if v == "" {
					delete(vars, k)
				} else {
					vars[k] = v
				}
			}
			e, err := New(getenvFrom(vars), WithLogger(discardLogger))
			if tt.missing == nil && tt.invalid == nil {
				if err != nil {
					t.Fatal(err)
				}
				if e.Dev() != nil || e.Consul() == nil {
					t.Error("not in mesh mode")
				}
				if err := e.Close(); err != nil {
					t.Error(err)
				}
				return
			}
			if err == nil {
				e.Close()
				t.Fatal("no error")
			}
			var ee *Error
			if !errors.As(err, &ee) {
				t.Fatalf("%T %v, want *Error", err, err)
			}
			if !slices.Equal(ee.Missing, tt.missing) {
				t.Errorf("missing %q, want %q", ee.Missing, tt.missing)
			}
			var invalid []string
			for _, s := range ee.Invalid {
				invalid = append(invalid, s[:strings.Index(s, "=")])
			}
			if !slices.Equal(invalid, tt.invalid) {
				t.Errorf("invalid %q, want %q", ee.Invalid, tt.invalid)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, m := range tt.missing {
				if !strings.Contains(err.Error(), m+" (") {
					t.Errorf("error %q does not say what %s is", err, m)
				}
			}
		})
	}
}

func TestNewEnvDevSettings(t *testing.T) {
	if _, err := New(getenvFrom(map[string]string{"ZTN_DEV": "yes"})); err == nil ||
		!strings.Contains(err.Error(), `ZTN_DEV="yes": set it to 1 for the embedded dev mesh, or unset it`) {
		t.Errorf("ZTN_DEV=yes: %v", err)
	}
	for _, bad := range []map[string]string{
		{"ZTN_DEV": "1", "ZTN_CERT_TTL": "0s"},
		{"ZTN_DEV": "1", "ZTN_SERVICE": "a b"},
		{"ZTN_DEV": "1", "ZTN_TRUST_DOMAIN": "Not A Domain"},
		{"ZTN_DEV": "1", "ZTN_INTENTIONS": filepath.Join(t.TempDir(), "missing.json")},
	} {
		if e, err := New(getenvFrom(bad), WithLogger(discardLogger)); err == nil {
			e.Close()
			t.Errorf("%v: no error", bad)
		}
	}
}

// The dev mesh through Env: intentions from ZTN_INTENTIONS, Listen, Dial as
// ZTN_SERVICE; the Consul and Vault settings are ignored (with a warning).
func TestEnvDev(t *testing.T) {
	file := filepath.Join(t.TempDir(), "intentions.json")
	err := os.WriteFile(file, []byte(`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	vars := meshVars()
	vars["ZTN_DEV"], vars["ZTN_INTENTIONS"], vars["ZTN_SERVICE"] = "1", file, "web"
	logs := &logtest.Buffer{}
	e, err := New(getenvFrom(vars), WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Dev() == nil || e.Consul() != nil {
		t.Fatal("not the dev mesh")
	}
	if recs := logs.Records(t, "ztn: ZTN_DEV=1: the embedded dev mesh ignores the Consul and Vault settings"); len(recs) != 1 ||
		recs[0]["ignored"] != "CONSUL_HTTP_ADDR,VAULT_ADDR,ZTN_PKI_MOUNT,ZTN_PKI_ROLE" {
		t.Errorf("warning: %v", recs)
	}
	ctx := poll.Context(t, 10*time.Second)
	api, err := e.Service(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	l, err := api.Listen(ctx, "tcp", "127.0.0.1:0")
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
	c, err := e.Dial(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	server, _ := ztnet.Peer(c)
	if err != nil || string(got) != "spiffe://ztn.test/ns/default/dc/dc1/svc/web" || server.String() != "spiffe://ztn.test/ns/default/dc/dc1/svc/api" {
		t.Errorf("server saw %q (%v); client reached %s", got, err, server)
	}
	// The same name gives the same Service.
	s1, _ := e.Service(ctx, "web")
	s2, _ := e.Service(ctx, "web")
	if s1 != s2 {
		t.Error("two Services for one name")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service(ctx, "web"); err == nil {
		t.Error("Service after Close")
	}
}

func TestEnvDialNeedsService(t *testing.T) {
	e, err := New(getenvFrom(map[string]string{"ZTN_DEV": "1"}), WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Dial(context.Background(), "api")
	if err == nil || !strings.Contains(err.Error(), "set ZTN_SERVICE to the name of the calling service") {
		t.Errorf("Dial without ZTN_SERVICE: %v", err)
	}
}

// Mesh mode reports an unreachable Vault on first use, naming the settings
// involved, and tries again on the next use.
func TestEnvMeshUnreachable(t *testing.T) {
	e, err := New(getenvFrom(meshVars()), WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := poll.Context(t, 20*time.Second)
	for range 2 {
		_, err = e.Service(ctx, "api")
		if err == nil || !strings.Contains(err.Error(), "ztnenv: service api: identity from Vault (VAULT_ADDR=http://127.0.0.1:1, ZTN_PKI_MOUNT=pki, role api)") {
			t.Errorf("Listen: %v", err)
		}
	}
}

var discardLogger = slog.New(slog.DiscardHandler)
