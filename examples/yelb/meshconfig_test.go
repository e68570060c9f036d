package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// Mesh mode's settings: every missing one named at once; plain HTTP to
// another machine refused unless allowed; a bad -peer explained; an app
// server without -db-pki, or with a bad one, refused before it starts.
func TestMeshSettings(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	_, err := readMeshEnv(env(nil))
	var e *ztnenv.Error
	if !errors.As(err, &e) || len(e.Missing) != 7 {
		t.Fatalf("no settings: %v; want the 7 missing named", err)
	}
	good := map[string]string{
		"CONSUL_HTTP_ADDR": "127.0.0.1:8500", "VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_TOKEN": "t",
		"ZTN_PKI_MOUNT": "pki", "ZTN_PKI_ROLE": "{service}", "ZTN_TRUST_DOMAIN": "example.org", "ZTN_DATACENTER": "dc1",
	}
	if _, err := readMeshEnv(env(good)); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	for k, v := range map[string]string{
		"CONSUL_HTTP_ADDR": "consul.example.org:8500", "VAULT_ADDR": "http://vault.example.org:8200",
		"ZTN_TRUST_DOMAIN": "not a domain",
	} {
		bad := map[string]string{}
		for k2, v2 := range good {
			bad[k2] = v2
		}
		bad[k] = v
		if _, err := readMeshEnv(env(bad)); !errors.As(err, &e) || len(e.Invalid) != 1 || !strings.HasPrefix(e.Invalid[0], k+"=") {
			t.Errorf("%s=%s: %v; want it named as invalid", k, v, err)
		}
		if k != "ZTN_TRUST_DOMAIN" {
			bad["ZTN_ALLOW_HTTP"] = "1"
			if _, err := readMeshEnv(env(bad)); err != nil {
				t.Errorf("%s=%s with ZTN_ALLOW_HTTP=1: %v", k, v, err)
			}
		}
	}
	for _, s := range []string{"", "frontend", "frontend=td", "=td@m", "p=not a td@m", "p=td@"} {
		if _, err := parsePeer(s); err == nil {
			t.Errorf("-peer %q accepted", s)
		}
	}
	for _, s := range []string{"", "-", "x.example", "not a td@pki-yelb-db"} {
		err := runMesh(context.Background(), io.Discard, meshConfig{Mode: "appserver", Postgres: "127.0.0.1:1", Redis: "127.0.0.1:2",
			DBPKI: s, Getenv: env(good)})
		if err == nil || !strings.Contains(err.Error(), "-db-pki") {
			t.Errorf("appserver with -db-pki %q: %v; want it refused, naming -db-pki", s, err)
		}
	}
	if td, m, err := parseTDMount("db.example@pki-yelb-db/"); err != nil || td.Name() != "db.example" || m != "pki-yelb-db" {
		t.Errorf("parseTDMount: %v %q, %v", td, m, err)
	}
	if p, err := parsePeer("frontend=frontend.example@pki-frontend/"); err != nil || p.Name != "frontend" || p.TD.Name() != "frontend.example" || p.Mount != "pki-frontend" {
		t.Errorf("parsePeer: %+v, %v", p, err)
	}
}
