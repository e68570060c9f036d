package authz

import (
	"strings"
	"testing"
)

func TestValidateErrors(t *testing.T) {
	ok := l4("web", allow)
	get := HTTPMatch{Methods: []string{"GET"}}
	withHTTP := func(h HTTPMatch) ConfigEntry { return entry("api", l7("web", perm(allow, h))) }
	withHeader := func(hm HeaderMatch) ConfigEntry { return withHTTP(HTTPMatch{Header: []HeaderMatch{hm}}) }
	src := func(s SourceIntention) ConfigEntry { return entry("api", s) }
	for _, tc := range []struct {
		name    string
		entries []ConfigEntry
		err     string
	}{
		{"wrong kind", []ConfigEntry{{Kind: "service-defaults", Name: "api", Sources: []SourceIntention{ok}}},
			`authz: entry "api": Kind is "service-defaults", want "service-intentions"`},
		{"no name", []ConfigEntry{{Sources: []SourceIntention{ok}}},
			`authz: entry 1: Name (the destination) is required`},
		{"no sources", []ConfigEntry{entry("api")},
			`authz: entry "api": at least one source is required`},
		{"partial wildcard destination name", []ConfigEntry{entry("ap*", ok)},
			`authz: entry "ap*": Name "ap*": the wildcard "*" can only be the whole value`},
		{"partial wildcard destination namespace", []ConfigEntry{entry("pr*/*", ok)},
			`Namespace "pr*": the wildcard "*" can only be the whole value`},
		{"exact destination name in wildcard namespace", []ConfigEntry{entry("*/api", ok)},
			`authz: entry "*/api": Name "api": an exact name cannot follow a wildcard namespace`},
		{"wildcard destination partition", []ConfigEntry{entry("*/default/api", ok)},
			`Partition "*": a partition cannot be a wildcard`},
		{"meta too big", []ConfigEntry{{Name: "api", Sources: []SourceIntention{ok}, Meta: map[string]string{"k": strings.Repeat("v", 513)}}},
			`Meta value for key "k" is longer than 512 bytes`},
		{"source without name", []ConfigEntry{src(SourceIntention{Action: allow})},
			`authz: entry "api": source 1: Name is required`},
		{"partial wildcard source", []ConfigEntry{src(l4("w*b", allow))},
			`authz: entry "api": source 1 ("w*b"): Name "w*b": the wildcard "*" can only be the whole value`},
		{"exact source name in wildcard namespace", []ConfigEntry{src(l4("*/web", allow))},
			`source 1 ("web"): Name "web": an exact name cannot follow a wildcard namespace`},
		{"wildcard source partition", []ConfigEntry{src(l4("*/*/*", allow))},
			`Partition "*": a partition cannot be a wildcard`},
		{"wildcard peer", []ConfigEntry{src(SourceIntention{Name: "web", Peer: "*", Action: allow})},
			`source 1 ("web" of peer "*"): Peer "*": a peer cannot be a wildcard`},
		{"partial wildcard peer", []ConfigEntry{src(SourceIntention{Name: "*", Peer: "part*", Action: allow})},
			`Peer "part*": a peer cannot be a wildcard`},
		{"peer and partition", []ConfigEntry{src(SourceIntention{Name: "web", Peer: "other", Partition: "default", Action: allow})},
			`source 1 ("web" of peer "other"): Peer "other": Peer and Partition cannot both be set`},
		{"peer and sameness group", []ConfigEntry{src(SourceIntention{Name: "web", Peer: "other", SamenessGroup: "g", Action: allow})},
			`SamenessGroup "g": ztn does not support sameness groups`},
		{"peer, exact name in wildcard namespace", []ConfigEntry{src(SourceIntention{Name: "web", Namespace: "*", Peer: "other", Action: allow})},
			`Name "web": an exact name cannot follow a wildcard namespace`},
		{"peer defined twice", []ConfigEntry{entry("api", l4("other:web", allow), l4("other:default/web", deny))},
			`source 2 ("web" of peer "other"): source other:web is already defined by source 1`},
		{"sameness group", []ConfigEntry{src(SourceIntention{Name: "web", SamenessGroup: "g", Action: allow})},
			`source 1 ("web"): SamenessGroup "g": ztn does not support sameness groups`},
		{"no action", []ConfigEntry{src(l4("web", ""))},
			`source 1 ("web"): Action is "": it must be "allow" or "deny" (or use Permissions)`},
		{"bad action", []ConfigEntry{src(l4("web", "Allow"))},
			`Action is "Allow": it must be "allow" or "deny"`},
		{"action and permissions", []ConfigEntry{src(SourceIntention{Name: "web", Action: allow, Permissions: []Permission{perm(allow, get)}})},
			`source 1 ("web"): Action must be omitted when Permissions are set`},
		{"permissions on wildcard destination", []ConfigEntry{entry("*", l7("web", perm(allow, get)))},
			`authz: entry "*": source 1 ("web"): Permissions cannot be used when the destination is a wildcard`},
		{"permissions on namespace wildcard destination", []ConfigEntry{entry("prod/*", l7("web", perm(allow, get)))},
			`Permissions cannot be used when the destination is a wildcard`},
		{"bad type", []ConfigEntry{src(SourceIntention{Name: "web", Action: allow, Type: "external"})},
			`Type is "external", want "consul"`},
		{"description too long", []ConfigEntry{src(SourceIntention{Name: "web", Action: allow, Description: strings.Repeat("d", 513)})},
			`Description is longer than 512 bytes`},
		{"duplicate source", []ConfigEntry{entry("api", l4("web", allow), l4("x", deny), l4("default/web", deny))},
			`authz: entry "api": source 3 ("web"): source web is already defined by source 1`},
		{"duplicate source after namespace inheritance", []ConfigEntry{entry("prod/api", l4("web", allow), l4("prod/web", deny))},
			`source 2 ("web"): source prod/web is already defined by source 1`},
		{"duplicate destination", []ConfigEntry{entry("api", ok), entry("default/api", ok)},
			`authz: entry "api": entry 1 has the same destination; a destination has one entry`},
		{"permission bad action", []ConfigEntry{src(l7("web", perm("", get)))},
			`source 1 ("web"): permission 1: Action is "": it must be "allow" or "deny"`},
		{"permission without HTTP", []ConfigEntry{src(l7("web", Permission{Action: allow}))},
			`permission 1: HTTP is required`},
		{"permission with empty HTTP", []ConfigEntry{withHTTP(HTTPMatch{})},
			`permission 1: HTTP must set at least one condition`},
		{"two path conditions", []ConfigEntry{withHTTP(HTTPMatch{PathExact: "/a", PathPrefix: "/b"})},
			`permission 1: HTTP: at most one of PathExact, PathPrefix and PathRegex may be set`},
		{"path and regex", []ConfigEntry{withHTTP(HTTPMatch{PathPrefix: "/b", PathRegex: "/c"})},
			`at most one of PathExact, PathPrefix and PathRegex may be set`},
		{"relative exact path", []ConfigEntry{withHTTP(HTTPMatch{PathExact: "a"})},
			`HTTP: PathExact "a" must start with "/"`},
		{"relative prefix", []ConfigEntry{withHTTP(HTTPMatch{PathPrefix: "a/"})},
			`HTTP: PathPrefix "a/" must start with "/"`},
		{"bad path regex", []ConfigEntry{withHTTP(HTTPMatch{PathRegex: "/(a"})},
			`HTTP: PathRegex "/(a": error parsing regexp`},
		{"Perl-only regex", []ConfigEntry{withHTTP(HTTPMatch{PathRegex: "/(?=a)"})},
			`PathRegex "/(?=a)": error parsing regexp`},
		{"bad method", []ConfigEntry{withHTTP(HTTPMatch{Methods: []string{"GET", "FETCH"}})},
			`HTTP: Methods: "FETCH" is not an HTTP method`},
		{"duplicate method after upper-casing", []ConfigEntry{withHTTP(HTTPMatch{Methods: []string{"GET", "get"}})},
			`HTTP: Methods: "GET" is listed more than once`},
		{"header without name", []ConfigEntry{withHeader(HeaderMatch{Exact: "a"})},
			`permission 1: HTTP: header 1: Name is required`},
		{"header without condition", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a"})},
			`HTTP: header 1 ("x-a"): exactly one of Present, Exact, Prefix, Suffix, Contains and Regex must be set`},
		{"header with inverted nothing", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a", Invert: true})},
			`exactly one of Present, Exact, Prefix, Suffix, Contains and Regex must be set`},
		{"header with two conditions", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a", Present: true, Exact: "a"})},
			`exactly one of Present, Exact, Prefix, Suffix, Contains and Regex must be set`},
		{"header prefix and contains", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a", Prefix: "a", Contains: "b"})},
			`exactly one of Present, Exact, Prefix, Suffix, Contains and Regex must be set`},
		{"ignore case with present", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a", Present: true, IgnoreCase: true})},
			`HTTP: header 1 ("x-a"): IgnoreCase cannot be used with Present or Regex`},
		{"ignore case with regex", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a", Regex: "a", IgnoreCase: true})},
			`IgnoreCase cannot be used with Present or Regex`},
		{"bad header regex", []ConfigEntry{withHeader(HeaderMatch{Name: "x-a", Regex: "a**"})},
			`HTTP: header 1 ("x-a"): Regex "a**": error parsing regexp`},
		{"second entry invalid", []ConfigEntry{entry("db", ok), entry("api", l4("web", "maybe"))},
			`authz: entry "api": source 1 ("web"): Action is "maybe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPolicy(t, false, entry("keep", l4("web", allow)))
			changed := p.Changed()
			err := p.Set(tc.entries...)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Set: got %v, want an error containing %q", err, tc.err)
			}
			// Nothing changed.
			if d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(svc("keep"))}); !d.Allowed {
				t.Errorf("after failed Set: %v", d)
			}
			select {
			case <-changed:
				t.Error("Changed closed by a failed Set")
			default:
			}
			// Validate reports the same for a single entry.
			if len(tc.entries) == 1 {
				if err2 := tc.entries[0].Validate(); err2 == nil || err2.Error() != err.Error() {
					t.Errorf("Validate: got %v, want %v", err2, err)
				}
			}
		})
	}
}

func TestNormalization(t *testing.T) {
	in := []ConfigEntry{
		entry("prod/api",
			l4("web", allow),
			l4("*", deny),
			l4("dev/x", deny),
			l4("*/*", allow),
			l7("grpc", perm(allow, HTTPMatch{Methods: []string{"post", "Get"}, Header: []HeaderMatch{{Name: "X-A", Exact: "B", IgnoreCase: true}}})),
		),
		entry("*/*", l4("web", allow), l4("ns/*", deny)),
		entry("p1/ns/*", l4("web", allow)),
	}
	methods := in[0].Sources[4].Permissions[0].HTTP.Methods
	p := newTestPolicy(t, false, in...)
	want := map[string]int{
		"prod/web>prod/api":  9,
		"prod/*>prod/api":    8,
		"dev/x>prod/api":     9,
		"*/*>prod/api":       7,
		"prod/grpc>prod/api": 9,
		"web>*/*":            3,
		"ns/*>*/*":           2,
		"p1/ns/web>p1/ns/*":  6,
	}
	got := p.Intentions()
	if len(got) != len(want) {
		t.Fatalf("got %d intentions, want %d", len(got), len(want))
	}
	for _, ixn := range got {
		key := ixn.Source.String() + ">" + ixn.Destination.String()
		if prec, ok := want[key]; !ok || prec != ixn.Precedence {
			t.Errorf("%s: precedence %d, want %d (known %v)", key, ixn.Precedence, prec, ok)
		}
		if ixn.Source.Partition == "" || ixn.Source.Namespace == "" || ixn.Destination.Partition == "" || ixn.Destination.Namespace == "" {
			t.Errorf("%s: not normalized: %+v", key, ixn)
		}
		if key == "prod/grpc>prod/api" {
			if m := ixn.Permissions[0].HTTP.Methods; m[0] != "POST" || m[1] != "GET" {
				t.Errorf("methods not upper-cased: %v", m)
			}
			if h := ixn.Permissions[0].HTTP.Header[0]; h.Exact != "B" {
				t.Errorf("header value changed: %+v", h)
			}
		}
	}
	if methods[0] != "post" {
		t.Errorf("Set modified its input: %v", methods)
	}
}

func TestPrecedenceTable(t *testing.T) {
	// The table of Consul's docs (connect/intentions): destination then
	// source as namespace/name.
	for _, tc := range []struct {
		src, dst Selector
		want     int
	}{
		{Selector{Namespace: "a", Name: "b"}, Selector{Namespace: "a", Name: "b"}, 9},
		{Selector{Namespace: "a", Name: "*"}, Selector{Namespace: "a", Name: "b"}, 8},
		{Selector{Namespace: "*", Name: "*"}, Selector{Namespace: "a", Name: "b"}, 7},
		{Selector{Namespace: "a", Name: "b"}, Selector{Namespace: "a", Name: "*"}, 6},
		{Selector{Namespace: "a", Name: "*"}, Selector{Namespace: "a", Name: "*"}, 5},
		{Selector{Namespace: "*", Name: "*"}, Selector{Namespace: "a", Name: "*"}, 4},
		{Selector{Namespace: "a", Name: "b"}, Selector{Namespace: "*", Name: "*"}, 3},
		{Selector{Namespace: "a", Name: "*"}, Selector{Namespace: "*", Name: "*"}, 2},
		{Selector{Namespace: "*", Name: "*"}, Selector{Namespace: "*", Name: "*"}, 1},
	} {
		if got := precedence(tc.src, tc.dst); got != tc.want {
			t.Errorf("%v → %v: %d, want %d", tc.src, tc.dst, got, tc.want)
		}
	}
}
