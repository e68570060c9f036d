package authz

import (
	"net/http"
	"testing"
)

func TestAuthorizeL4(t *testing.T) {
	type check struct {
		src, dst string
		allowed  bool
		reason   string
	}
	for _, tc := range []struct {
		name         string
		defaultAllow bool
		entries      []ConfigEntry
		checks       []check
	}{
		{
			name:    "exact allow and deny",
			entries: []ConfigEntry{entry("api", l4("web", allow), l4("batch", deny))},
			checks: []check{
				{"web", "api", true, "intention web → api allows (precedence 9)"},
				{"batch", "api", false, "intention batch → api denies (precedence 9)"},
				{"other", "api", false, "no intention matches (default deny)"},
				{"web", "db", false, "no intention matches (default deny)"},
			},
		},
		{
			name:         "default allow",
			defaultAllow: true,
			entries:      []ConfigEntry{entry("api", l4("batch", deny))},
			checks: []check{
				{"web", "api", true, "no intention matches (default allow)"},
				{"batch", "api", false, "intention batch → api denies (precedence 9)"},
			},
		},
		{
			name:    "exact source beats wildcard source",
			entries: []ConfigEntry{entry("api", l4("*", deny), l4("web", allow))},
			checks: []check{
				{"web", "api", true, "intention web → api allows (precedence 9)"},
				{"db", "api", false, "intention * → api denies (precedence 8)"},
			},
		},
		{
			// Spec §1.2, verified against Consul: precedence 8 beats 6.
			name:    "wildcard source on exact destination beats exact source on wildcard destination",
			entries: []ConfigEntry{entry("api", l4("*", deny)), entry("*", l4("web", allow))},
			checks: []check{
				{"web", "api", false, "intention * → api denies (precedence 8)"},
				{"web", "db", true, "intention web → * allows (precedence 6)"},
				{"db", "db", false, "no intention matches (default deny)"},
			},
		},
		{
			name:         "mirror case under default allow",
			defaultAllow: true,
			entries:      []ConfigEntry{entry("api", l4("*", allow)), entry("*", l4("web", deny))},
			checks: []check{
				{"web", "api", true, "intention * → api allows (precedence 8)"},
				{"web", "db", false, "intention web → * denies (precedence 6)"},
			},
		},
		{
			name: "all nine precedences",
			entries: []ConfigEntry{
				entry("prod/api", l4("prod/web", allow), l4("prod/*", deny), l4("*/*", allow)),
				entry("prod/*", l4("prod/web", deny), l4("prod/*", allow), l4("*/*", deny)),
				entry("*/*", l4("prod/web", allow), l4("prod/*", deny), l4("*/*", allow)),
			},
			checks: []check{
				{"prod/web", "prod/api", true, "intention prod/web → prod/api allows (precedence 9)"},
				{"prod/x", "prod/api", false, "intention prod/* → prod/api denies (precedence 8)"},
				{"dev/x", "prod/api", true, "intention */* → prod/api allows (precedence 7)"},
				{"prod/web", "prod/db", false, "intention prod/web → prod/* denies (precedence 6)"},
				{"prod/x", "prod/db", true, "intention prod/* → prod/* allows (precedence 5)"},
				{"x", "prod/db", false, "intention */* → prod/* denies (precedence 4)"},
				{"prod/web", "dev/db", true, "intention prod/web → */* allows (precedence 3)"},
				{"prod/x", "db", false, "intention prod/* → */* denies (precedence 2)"},
				{"x", "db", true, "intention */* → */* allows (precedence 1)"},
			},
		},
		{
			name: "sources inherit the destination's namespace",
			entries: []ConfigEntry{
				entry("prod/api", l4("web", allow), l4("*", deny)),
				entry("*/*", l4("web", allow)),
			},
			checks: []check{
				{"prod/web", "prod/api", true, "intention prod/web → prod/api allows (precedence 9)"},
				{"prod/x", "prod/api", false, "intention prod/* → prod/api denies (precedence 8)"},
				// default/web is not in prod/*: the */* destination decides.
				{"web", "prod/api", true, "intention web → */* allows (precedence 3)"},
				// Under a wildcard-namespace destination a source's namespace is "default".
				{"web", "dev/db", true, "intention web → */* allows (precedence 3)"},
				{"dev/web", "dev/db", false, "no intention matches (default deny)"},
			},
		},
		{
			name: "partitions are exact and inherited",
			entries: []ConfigEntry{
				entry("p1/default/api", l4("web", allow), l4("p2/default/web", deny)),
				entry("p1/*/*", l4("*/*", allow)),
			},
			checks: []check{
				{"p1/default/web", "p1/default/api", true, "intention p1/default/web → p1/default/api allows (precedence 9)"},
				{"p2/default/web", "p1/default/api", false, "intention p2/default/web → p1/default/api denies (precedence 9)"},
				{"web", "p1/default/api", false, "no intention matches (default deny)"},
				{"p1/x/y", "p1/default/db", true, "intention p1/*/* → p1/*/* allows (precedence 1)"},
				{"web", "api", false, "no intention matches (default deny)"},
				{"default/default/web", "p1/default/db", false, "no intention matches (default deny)"},
			},
		},
		{
			name:    "empty partition and namespace mean default",
			entries: []ConfigEntry{entry("default/default/api", l4("default/web", allow))},
			checks: []check{
				{"web", "api", true, "intention web → api allows (precedence 9)"},
				{"default/default/web", "default/api", true, "intention web → api allows (precedence 9)"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPolicy(t, tc.defaultAllow, tc.entries...)
			for _, c := range tc.checks {
				for _, admit := range []bool{false, true} {
					d := p.Authorize(Request{Source: sid(svc(c.src)), SourcePeer: svc(c.src).Peer, Destination: sid(svc(c.dst)), AdmitL7: admit})
					if d.Allowed != c.allowed || d.Reason() != c.reason {
						t.Errorf("%s → %s: got %v, %q; want %v, %q", c.src, c.dst, d.Allowed, d.Reason(), c.allowed, c.reason)
					}
					// An L4 intention decides requests the same way.
					d = p.Authorize(Request{Source: sid(svc(c.src)), SourcePeer: svc(c.src).Peer, Destination: sid(svc(c.dst)), HTTP: &HTTPRequest{Method: "GET", Path: "/"}})
					if d.Allowed != c.allowed || d.Reason() != c.reason {
						t.Errorf("%s → %s GET /: got %v, %q; want %v, %q", c.src, c.dst, d.Allowed, d.Reason(), c.allowed, c.reason)
					}
				}
			}
		})
	}
}

func TestAuthorizeNotSynced(t *testing.T) {
	for _, p := range []*Policy{NewPolicy(), NewPolicy(WithDefaultAllow()), new(Policy)} {
		for _, req := range []Request{
			{Source: sid(svc("web")), Destination: sid(svc("api"))},
			{Source: sid(svc("web")), Destination: sid(svc("api")), AdmitL7: true},
			{Source: sid(svc("web")), Destination: sid(svc("api")), HTTP: &HTTPRequest{Method: "GET", Path: "/"}},
		} {
			d := p.Authorize(req)
			if d.Allowed || d.Kind() != KindNotSynced || d.Reason() != "policy not synced yet (deny)" {
				t.Errorf("unsynced: got %v %s %q", d.Allowed, d.Kind(), d.Reason())
			}
		}
		if p.Synced() {
			t.Error("Synced before Set")
		}
		if err := p.Set(); err != nil {
			t.Fatal(err)
		}
		if !p.Synced() {
			t.Error("not Synced after Set")
		}
		d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(svc("api"))})
		if d.Kind() != KindDefault || d.Allowed != p.defaultAllow {
			t.Errorf("after empty Set: got %v %s", d.Allowed, d.Kind())
		}
	}
}

func TestAuthorizeL7(t *testing.T) {
	get := func(path string) *HTTPRequest { return &HTTPRequest{Method: http.MethodGet, Path: path} }
	post := func(path string) *HTTPRequest { return &HTTPRequest{Method: http.MethodPost, Path: path} }
	type check struct {
		src     string
		req     *HTTPRequest // nil: connection level
		admit   bool
		allowed bool
		kind    string
		reason  string
	}
	for _, tc := range []struct {
		name         string
		defaultAllow bool
		entries      []ConfigEntry
		checks       []check
	}{
		{
			name: "permissions in order, first match decides",
			entries: []ConfigEntry{entry("api",
				l7("web",
					perm(deny, HTTPMatch{PathPrefix: "/admin"}),
					perm(allow, HTTPMatch{PathPrefix: "/", Methods: []string{"GET", "head"}}),
					perm(allow, HTTPMatch{PathExact: "/admin/login"}), // shadowed by permission 1
				),
				l4("*", allow),
			)},
			checks: []check{
				{"web", get("/admin/login"), false, false, KindL7Permission, "L7 intention web → api: permission 1 (prefix /admin) denies"},
				{"web", get("/users"), false, true, KindL7Permission, "L7 intention web → api: permission 2 (GET,HEAD prefix /) allows"},
				{"web", &HTTPRequest{Method: "HEAD", Path: "/"}, false, true, KindL7Permission, "L7 intention web → api: permission 2 (GET,HEAD prefix /) allows"},
				{"web", post("/users"), false, false, KindL7NoMatch, "L7 intention web → api: no permission matched (default deny)"},
				{"web", nil, false, false, KindL7AtL4, "intention web → api has L7 permissions only, connection-level check denies"},
				{"web", nil, true, true, KindL7AtL4, "intention web → api has L7 permissions, connection admitted for per-request checks"},
				{"other", post("/users"), false, true, KindIntention, "intention * → api allows (precedence 8)"},
				{"other", nil, false, true, KindIntention, "intention * → api allows (precedence 8)"},
			},
		},
		{
			// Spec §1.4, verified against Consul: lower-precedence
			// intentions are not consulted, the default applies.
			name:         "no permission matches: default allow, * deny not consulted",
			defaultAllow: true,
			entries: []ConfigEntry{entry("api",
				l7("web", perm(allow, HTTPMatch{PathExact: "/", Methods: []string{"GET"}})),
				l4("*", deny),
			)},
			checks: []check{
				{"web", post("/x"), false, true, KindL7NoMatch, "L7 intention web → api: no permission matched (default allow)"},
				{"web", get("/"), false, true, KindL7Permission, "L7 intention web → api: permission 1 (GET /) allows"},
				{"other", get("/"), false, false, KindIntention, "intention * → api denies (precedence 8)"},
			},
		},
		{
			name: "L7 intention on a wildcard source",
			entries: []ConfigEntry{entry("api",
				l7("*", perm(allow, HTTPMatch{PathRegex: "/v[0-9]+/.*"})),
			), entry("*", l4("*", allow))},
			checks: []check{
				{"web", get("/v1/users"), false, true, KindL7Permission, "L7 intention * → api: permission 1 (regex /v[0-9]+/.*) allows"},
				{"web", get("/x/v1/users"), false, false, KindL7NoMatch, "L7 intention * → api: no permission matched (default deny)"},
				{"web", nil, false, false, KindL7AtL4, "intention * → api has L7 permissions only, connection-level check denies"},
				{"web", nil, true, true, KindL7AtL4, "intention * → api has L7 permissions, connection admitted for per-request checks"},
			},
		},
		{
			name:    "L4 deny is not admitted by AdmitL7",
			entries: []ConfigEntry{entry("api", l4("web", deny))},
			checks: []check{
				{"web", nil, true, false, KindIntention, "intention web → api denies (precedence 9)"},
				{"web", get("/"), false, false, KindIntention, "intention web → api denies (precedence 9)"},
			},
		},
		{
			name: "gRPC paths",
			entries: []ConfigEntry{entry("api", l7("web",
				perm(allow, HTTPMatch{PathExact: "/pkg.Users/Get", Methods: []string{"POST"}}),
				perm(deny, HTTPMatch{PathPrefix: "/pkg.Users/"}),
			))},
			checks: []check{
				{"web", post("/pkg.Users/Get"), false, true, KindL7Permission, "L7 intention web → api: permission 1 (POST /pkg.Users/Get) allows"},
				{"web", post("/pkg.Users/Delete"), false, false, KindL7Permission, "L7 intention web → api: permission 2 (prefix /pkg.Users/) denies"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPolicy(t, tc.defaultAllow, tc.entries...)
			for _, c := range tc.checks {
				d := p.Authorize(Request{Source: sid(svc(c.src)), SourcePeer: svc(c.src).Peer, Destination: sid(svc("api")), HTTP: c.req, AdmitL7: c.admit})
				if d.Allowed != c.allowed || d.Kind() != c.kind || d.Reason() != c.reason {
					t.Errorf("%s %+v admit=%v: got %v %s %q; want %v %s %q", c.src, c.req, c.admit,
						d.Allowed, d.Kind(), d.Reason(), c.allowed, c.kind, c.reason)
				}
			}
		})
	}
}

func TestDecision(t *testing.T) {
	var zero Decision
	if zero.Allowed || zero.Kind() != KindNone || zero.Reason() != "no decision (deny)" || zero.String() != "deny: no decision (deny)" {
		t.Errorf("zero Decision: %v %s %q", zero.Allowed, zero.Kind(), zero)
	}
	if _, ok := zero.Intention(); ok {
		t.Error("zero Decision has an intention")
	}

	p := newTestPolicy(t, false, entry("api", l4("web", allow), l7("batch", perm(deny, HTTPMatch{Methods: []string{"DELETE"}}))))
	d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(svc("api"))})
	ixn, ok := d.Intention()
	if !ok || ixn.Source != (Selector{Partition: "default", Namespace: "default", Name: "web"}) || ixn.Destination != (Selector{Partition: "default", Namespace: "default", Name: "api"}) ||
		ixn.Precedence != 9 || ixn.Action != allow {
		t.Errorf("Intention() = %+v, %v", ixn, ok)
	}
	if d.Default() {
		t.Error("intention decision reported as default")
	}
	if s := d.String(); s != "allow: intention web → api allows (precedence 9)" {
		t.Errorf("String() = %q", s)
	}
	d = p.Authorize(Request{Source: sid(svc("x")), Destination: sid(svc("api"))})
	if !d.Default() || d.Kind() != KindDefault {
		t.Errorf("default decision: %v %s", d.Default(), d.Kind())
	}
	d = p.Authorize(Request{Source: sid(svc("batch")), Destination: sid(svc("api")), HTTP: &HTTPRequest{Method: "GET", Path: "/"}})
	if !d.Default() || d.Kind() != KindL7NoMatch || d.Allowed {
		t.Errorf("l7 no match: %v %s %v", d.Default(), d.Kind(), d.Allowed)
	}
	if ixn, ok := d.Intention(); !ok || len(ixn.Permissions) != 1 || ixn.Permissions[0].HTTP.Methods[0] != "DELETE" {
		t.Errorf("L7 Intention() = %+v, %v", ixn, ok)
	}
}

func TestAuthorizeL4Allocs(t *testing.T) {
	p := newTestPolicy(t, false,
		entry("api", l4("web", allow), l4("*", deny), l7("batch", perm(allow, HTTPMatch{Methods: []string{"GET"}}))),
		entry("*", l4("web", allow)),
	)
	for _, req := range []Request{
		{Source: sid(svc("web")), Destination: sid(svc("api"))},
		{Source: sid(svc("other")), Destination: sid(svc("api"))},
		{Source: sid(svc("web")), Destination: sid(svc("db"))},
		{Source: sid(svc("other")), Destination: sid(svc("db"))},
		{Source: sid(svc("batch")), Destination: sid(svc("api"))},
		{Source: sid(svc("batch")), Destination: sid(svc("api")), HTTP: &HTTPRequest{Method: "GET", Path: "/x", Header: http.Header{"X-A": {"b"}}}},
	} {
		if n := testing.AllocsPerRun(100, func() { p.Authorize(req) }); n != 0 {
			t.Errorf("%+v: %v allocs, want 0", req, n)
		}
	}
}

func TestIntentionsOrder(t *testing.T) {
	p := newTestPolicy(t, false,
		entry("*", l4("web", allow), l4("*", deny)),
		entry("api", l4("b", allow), l4("a", deny), l4("*", deny)),
		entry("db", l4("a", allow)),
	)
	var got []string
	for _, ixn := range p.Intentions() {
		got = append(got, ixn.Source.String()+">"+ixn.Destination.String())
	}
	want := []string{"a>api", "a>db", "b>api", "*>api", "web>*", "*>*"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if NewPolicy().Intentions() != nil {
		t.Error("unsynced policy has intentions")
	}
}

func TestServiceString(t *testing.T) {
	for s, want := range map[Selector]string{
		{Name: "api"}: "api",
		{Partition: "default", Namespace: "default", Name: "api"}: "api",
		{Namespace: "prod", Name: "api"}:                          "prod/api",
		{Namespace: "*", Name: "*"}:                               "*/*",
		{Partition: "p1", Name: "api"}:                            "p1/default/api",
		{Partition: "p1", Namespace: "ns", Name: "*"}:             "p1/ns/*",
	} {
		if got := s.String(); got != want {
			t.Errorf("%+v: got %q, want %q", s, got, want)
		}
	}
}
