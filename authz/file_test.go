package authz

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const camelJSON = `{
  "Kind": "service-intentions",
  "Name": "api",
  "Namespace": "prod",
  "Meta": {"owner": "team-a"},
  "Sources": [
    {
      "Name": "web",
      "Permissions": [
        {
          "Action": "deny",
          "HTTP": {
            "PathPrefix": "/admin",
            "Header": [{"Name": "x-role", "Exact": "admin", "Invert": true}]
          }
        },
        {
          "Action": "allow",
          "HTTP": {
            "PathRegex": "/v[0-9]+/.*",
            "Methods": ["GET", "head"],
            "Header": [{"Name": "x-tenant", "Contains": "Acme", "IgnoreCase": true}]
          }
        }
      ]
    },
    {"Name": "*", "Namespace": "*", "Action": "deny", "Precedence": 7, "Type": "consul", "Description": "everyone else"}
  ],
  "CreateIndex": 12,
  "ModifyIndex": 34
}`

const snakeJSON = `{
  "kind": "service-intentions",
  "name": "api",
  "namespace": "prod",
  "meta": {"owner": "team-a"},
  "sources": [
    {
      "name": "web",
      "permissions": [
        {
          "action": "deny",
          "http": {
            "path_prefix": "/admin",
            "header": [{"name": "x-role", "exact": "admin", "invert": true}]
          }
        },
        {
          "action": "allow",
          "http": {
            "path_regex": "/v[0-9]+/.*",
            "methods": ["GET", "head"],
            "header": [{"name": "x-tenant", "contains": "Acme", "ignore_case": true}]
          }
        }
      ]
    },
    {"name": "*", "namespace": "*", "action": "deny", "precedence": 7, "type": "consul", "description": "everyone else",
     "legacy_id": "", "legacy_create_time": null, "LegacyUpdateTime": "2020-01-01T00:00:00Z", "legacy_meta": {}}
  ],
  "create_index": 12,
  "modify_index": 34
}`

var wantEntry = ConfigEntry{
	Kind:      KindServiceIntentions,
	Name:      "api",
	Namespace: "prod",
	Meta:      map[string]string{"owner": "team-a"},
	Sources: []SourceIntention{
		{Name: "web", Permissions: []Permission{
			{Action: deny, HTTP: &HTTPMatch{PathPrefix: "/admin", Header: []HeaderMatch{{Name: "x-role", Exact: "admin", Invert: true}}}},
			{Action: allow, HTTP: &HTTPMatch{PathRegex: "/v[0-9]+/.*", Methods: []string{"GET", "head"},
				Header: []HeaderMatch{{Name: "x-tenant", Contains: "Acme", IgnoreCase: true}}}},
		}},
		{Name: "*", Namespace: "*", Action: deny, Type: "consul", Description: "everyone else"},
	},
}

func TestParseConfigEntries(t *testing.T) {
	for name, data := range map[string]string{
		"camel object": camelJSON,
		"snake object": snakeJSON,
		"camel array":  "[" + camelJSON + "]",
		"BOM":          "\xef\xbb\xbf" + camelJSON,
		"mixed array":  "\n[" + snakeJSON + ",\n" + strings.Replace(camelJSON, `"api"`, `"db"`, 1) + "]\n",
	} {
		t.Run(name, func(t *testing.T) {
			entries, err := ParseConfigEntries([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) == 0 || !reflect.DeepEqual(entries[0], wantEntry) {
				t.Fatalf("got %#v\nwant %#v", entries, wantEntry)
			}
			if strings.HasPrefix(name, "mixed") {
				if len(entries) != 2 || entries[1].Name != "db" {
					t.Fatalf("got %#v", entries)
				}
			}
		})
	}
	if entries, err := ParseConfigEntries([]byte(" [ ] ")); err != nil || len(entries) != 0 {
		t.Errorf("empty array: %v, %v", entries, err)
	}
}

func TestParseConfigEntriesErrors(t *testing.T) {
	const src = `"Sources":[{"Name":"web","Action":"allow"}]`
	for _, tc := range []struct {
		name, data, err string
	}{
		{"empty", "  ", "authz: empty input"},
		{"syntax", "{\n  \"Kind\": \"service-intentions\",\n  \"Name\": api\n}", "authz: invalid JSON at line 3, column 11: invalid character 'a'"},
		{"trailing data", `{"Kind":"service-intentions","Name":"api",` + src + `} {}`, "authz: invalid JSON"},
		{"not an object", `"api"`, "authz: want a service-intentions entry (a JSON object) or an array of them, got a string"},
		{"array of non-objects", `[1]`, "authz: entry 1: want a JSON object, got a number"},
		{"null", `null`, "got null"},
		{"no kind", `{"Name":"api",` + src + `}`, `authz: entry "api": Kind is required ("service-intentions")`},
		{"other kind", `{"Kind":"service-defaults","Name":"api"}`, `authz: entry "api": Kind is "service-defaults": only "service-intentions" entries hold intentions`},
		{"kind is case sensitive", `{"Kind":"Service-Intentions","Name":"api",` + src + `}`, `Kind is "Service-Intentions"`},
		{"unknown entry key", `{"Kind":"service-intentions","Name":"api","Sorces":[]}`, `authz: entry 1: unknown key "Sorces" (known keys: CreateIndex, Hash, JWT, Kind, Meta, ModifyIndex, Name, Namespace, Partition, Sources)`},
		{"unknown source key", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Actoin":"allow"}]}`, `authz: entry "api": source 1: unknown key "Actoin"`},
		{"unknown permission key", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","Http2":{}}]}]}`, `source 1 ("web"): permission 1: unknown key "Http2"`},
		{"unknown HTTP key", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"Path":"/"}}]}]}`, `permission 1: HTTP: unknown key "Path"`},
		{"unknown header key", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"Header":[{"Name":"a","Equals":"b"}]}}]}]}`, `permission 1: HTTP: header 1: unknown key "Equals"`},
		{"duplicate key", `{"Kind":"service-intentions","Name":"api","name":"db",` + src + `}`, `entry 1: key Name is given twice (as "Name" and "name")`},
		{"duplicate snake key", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/","path_prefix":"/a"}}]}]}`, `HTTP: key PathPrefix is given twice (as "PathPrefix" and "path_prefix")`},
		{"entry JWT", `{"Kind":"service-intentions","Name":"api","JWT":{"Providers":[{"Name":"okta"}]},` + src + `}`, `authz: entry "api": JWT requirements are not supported by ztn`},
		{"permission JWT", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","JWT":{"Providers":[]}}]}]}`, `source 1 ("web"): permission 1: JWT requirements are not supported`},
		{"legacy meta", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow","LegacyMeta":{"a":"b"}}]}`, `source 1 ("web"): LegacyMeta must be omitted`},
		{"wildcard peer", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"*","Action":"allow"}]}`, `source 1 ("web" of peer "*"): Peer "*": a peer cannot be a wildcard`},
		{"peer and partition", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"dc2","Partition":"default","Action":"allow"}]}`, `Peer and Partition cannot both be set`},
		{"number for peer", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":2,"Action":"allow"}]}`, `Peer: want a string, got a number`},
		{"sameness group", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","sameness_group":"g","Action":"allow"}]}`, `SamenessGroup "g": ztn does not support sameness groups`},
		{"string for bool", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"Header":[{"Name":"a","Present":"true"}]}}]}]}`, `header 1: Present: want true or false, got a string`},
		{"number for string", `{"Kind":"service-intentions","Name":5}`, `authz: entry 1: Name: want a string, got a number`},
		{"object for sources", `{"Kind":"service-intentions","Name":"api","Sources":{}}`, `entry "api": Sources: want an array, got an object`},
		{"string for methods", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"Methods":"GET"}}]}]}`, `HTTP: Methods: want an array of strings, got a string`},
		{"null source", `{"Kind":"service-intentions","Name":"api","Sources":[null]}`, `source 1: want a JSON object, got null`},
		{"validation error", `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"},{"Name":"web","Action":"deny"}]}`, `authz: entry "api": source 2 ("web"): source web is already defined by source 1`},
		{"duplicate destination", `[{"Kind":"service-intentions","Name":"api",` + src + `},{"Kind":"service-intentions","Name":"api",` + src + `}]`, `authz: entry "api": entry 1 has the same destination`},
		{"second entry", `[{"Kind":"service-intentions","Name":"api",` + src + `},{"Kind":"service-intentions"}]`, `authz: entry 2: Name (the destination) is required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := ParseConfigEntries([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, %v; want an error containing %q", entries, err, tc.err)
			}
			if entries != nil {
				t.Errorf("entries returned with an error: %v", entries)
			}
		})
	}
}

func TestParseNulls(t *testing.T) {
	// null means absent, as in Consul.
	entries, err := ParseConfigEntries([]byte(`{"Kind":"service-intentions","Name":"api","Namespace":null,"JWT":null,"Meta":null,
		"Sources":[{"Name":"web","Action":"allow","Permissions":null,"Peer":null}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ConfigEntry{{Kind: KindServiceIntentions, Name: "api", Sources: []SourceIntention{{Name: "web", Action: allow}}}}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("got %#v", entries)
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"PathPrefix": "path_prefix", "LegacyID": "legacy_id", "HTTP": "http", "JWT": "jwt",
		"SamenessGroup": "sameness_group", "IgnoreCase": "ignore_case", "Name": "name",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "intentions.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(camelJSON)
	entries, err := LoadFile(path)
	if err != nil || len(entries) != 1 || !reflect.DeepEqual(entries[0], wantEntry) {
		t.Fatalf("LoadFile: %v, %v", entries, err)
	}

	p := NewPolicy()
	if err := p.Reload(); err == nil || err.Error() != "authz: Reload: no file was loaded" {
		t.Errorf("Reload before LoadFile: %v", err)
	}
	missing := filepath.Join(dir, "missing.json")
	err = p.LoadFile(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || err.Error() != "authz: "+missing+": open: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadFile(missing); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile missing: %v", err)
	}
	if p.Synced() {
		t.Error("synced after a failed LoadFile")
	}

	if err := p.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	web := Selector{Namespace: "prod", Name: "web"}
	api := Selector{Namespace: "prod", Name: "api"}
	check := func(src Selector, path string, want bool) {
		t.Helper()
		d := p.Authorize(Request{Source: sid(src), SourcePeer: src.Peer, Destination: sid(api), HTTP: &HTTPRequest{Method: "GET", Path: path, Header: map[string][]string{"X-Tenant": {"ACME-1"}}}})
		if d.Allowed != want {
			t.Errorf("%v GET %s: %v", src, path, d)
		}
	}
	check(web, "/v1/users", true)
	check(web, "/admin", false)
	check(Selector{Namespace: "dev", Name: "x"}, "/v1/users", false)

	// A broken file keeps the policy in force, and says where it is.
	changed := p.Changed()
	write(`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"},{"Name":"x"}]}`)
	err = p.Reload()
	if want := `authz: ` + path + `: entry "api": source 2 ("x"): Action is ""`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Reload of a bad file: %v, want %s", err, want)
	}
	check(web, "/v1/users", true)
	select {
	case <-changed:
		t.Fatal("Changed closed by a failed Reload")
	default:
	}

	write(`{"Kind":"service-intentions","Name":"api","Namespace":"prod","Sources":[{"Name":"web","Action":"deny"}]}`)
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	<-changed
	check(web, "/v1/users", false)

	// A failed LoadFile of another path keeps Reload on the last good one.
	if err := p.LoadFile(missing); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
	if err := p.Reload(); err != nil {
		t.Errorf("Reload after a failed LoadFile: %v", err)
	}
}
