package authz

import (
	"net/http"
	"testing"
)

// TestPermissionMatch checks one permission's conditions against requests.
func TestPermissionMatch(t *testing.T) {
	type req struct {
		method, path string
		header       http.Header
		want         bool
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		name  string
		match HTTPMatch
		reqs  []req
	}{
		{"path exact", HTTPMatch{PathExact: "/a/b"}, []req{
			{"GET", "/a/b", nil, true},
			{"GET", "/a/b/", nil, false},
			{"GET", "/a", nil, false},
			{"GET", "/A/b", nil, false},
		}},
		{"path prefix is a string prefix", HTTPMatch{PathPrefix: "/api"}, []req{
			{"GET", "/api", nil, true},
			{"GET", "/api/x", nil, true},
			{"GET", "/apis", nil, true},
			{"GET", "/ap", nil, false},
		}},
		{"path prefix /", HTTPMatch{PathPrefix: "/"}, []req{
			{"GET", "/", nil, true},
			{"GET", "/anything", nil, true},
			{"GET", "", nil, false},
			{"GET", "*", nil, false},
			{"GET", "relative", nil, false},
		}},
		{"path regex matches the whole path", HTTPMatch{PathRegex: "/v[0-9]+"}, []req{
			{"GET", "/v1", nil, true},
			{"GET", "/v12", nil, true},
			{"GET", "/v1/x", nil, false},
			{"GET", "/x/v1", nil, false},
		}},
		{"path regex alternation is anchored as a whole", HTTPMatch{PathRegex: "/a|/b"}, []req{
			{"GET", "/a", nil, true},
			{"GET", "/b", nil, true},
			{"GET", "/ab", nil, false},
			{"GET", "/a/b", nil, false},
		}},
		{"path regex full match prefers the whole string", HTTPMatch{PathRegex: "/a|/ab"}, []req{
			{"GET", "/ab", nil, true},
		}},
		{"path regex with unterminated \\Q", HTTPMatch{PathRegex: `\Q/a)|(.*`}, []req{
			{"GET", "/a)|(.*", nil, true},
			{"GET", "/anything", nil, false},
		}},
		{"non-absolute path never matches a regex", HTTPMatch{PathRegex: ".*"}, []req{
			{"GET", "/x", nil, true},
			{"GET", "x", nil, false},
			{"GET", "", nil, false},
		}},
		{"methods", HTTPMatch{Methods: []string{"get", "POST"}}, []req{
			{"GET", "/", nil, true},
			{"POST", "", nil, true},
			{"PUT", "/", nil, false},
			{"GETX", "/", nil, false},
			{"GE", "/", nil, false},
		}},
		{"methods match whatever their case", HTTPMatch{Methods: []string{"POST", "DELETE"}}, []req{
			{"post", "/", nil, true},
			{"Delete", "/", nil, true},
			{"dELETE", "/", nil, true},
			{"put", "/", nil, false},
		}},
		{"GET covers HEAD", HTTPMatch{Methods: []string{"GET"}}, []req{
			{"GET", "/", nil, true},
			{"get", "/", nil, true},
			{"HEAD", "/", nil, true},
			{"head", "/", nil, true},
			{"POST", "/", nil, false},
			{"OPTIONS", "/", nil, false},
		}},
		{"HEAD does not cover GET", HTTPMatch{Methods: []string{"HEAD"}}, []req{
			{"HEAD", "/", nil, true},
			{"Head", "/", nil, true},
			{"GET", "/", nil, false},
		}},
		{"all conditions must hold", HTTPMatch{PathPrefix: "/a", Methods: []string{"GET"}, Header: []HeaderMatch{{Name: "x-a", Present: true}}}, []req{
			{"GET", "/a", hdr("X-A", ""), true},
			{"POST", "/a", hdr("X-A", ""), false},
			{"GET", "/b", hdr("X-A", ""), false},
			{"GET", "/a", nil, false},
		}},
		{"header present", HTTPMatch{Header: []HeaderMatch{{Name: "X-Debug", Present: true}}}, []req{
			{"GET", "/", hdr("X-Debug", "1"), true},
			{"GET", "/", hdr("X-Debug", ""), true},
			{"GET", "/", hdr("X-Other", "1"), false},
			{"GET", "/", nil, false},
		}},
		{"header present inverted matches absence", HTTPMatch{Header: []HeaderMatch{{Name: "x-debug", Present: true, Invert: true}}}, []req{
			{"GET", "/", hdr("X-Debug", "1"), false},
			{"GET", "/", nil, true},
		}},
		{"header exact", HTTPMatch{Header: []HeaderMatch{{Name: "x-role", Exact: "admin"}}}, []req{
			{"GET", "/", hdr("X-Role", "admin"), true},
			{"GET", "/", hdr("X-Role", "Admin"), false},
			{"GET", "/", hdr("X-Role", "admins"), false},
			{"GET", "/", nil, false},
		}},
		{"header exact inverted: absent header does not match (Envoy)", HTTPMatch{Header: []HeaderMatch{{Name: "x-role", Exact: "admin", Invert: true}}}, []req{
			{"GET", "/", hdr("X-Role", "admin"), false},
			{"GET", "/", hdr("X-Role", "user"), true},
			{"GET", "/", nil, false},
		}},
		{"header exact ignore case", HTTPMatch{Header: []HeaderMatch{{Name: "x-role", Exact: "AdMin", IgnoreCase: true}}}, []req{
			{"GET", "/", hdr("X-Role", "admin"), true},
			{"GET", "/", hdr("X-Role", "ADMIN"), true},
			{"GET", "/", hdr("X-Role", "admin2"), false},
		}},
		{"ignore case folds ASCII only", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Exact: "k", IgnoreCase: true}}}, []req{
			{"GET", "/", hdr("X-A", "K"), true},
			{"GET", "/", hdr("X-A", "\u212a"), false}, // Kelvin sign
		}},
		{"header prefix", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Prefix: "Bearer "}}}, []req{
			{"GET", "/", hdr("X-A", "Bearer xyz"), true},
			{"GET", "/", hdr("X-A", "bearer xyz"), false},
			{"GET", "/", hdr("X-A", "Bear"), false},
		}},
		{"header prefix ignore case inverted", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Prefix: "bearer ", IgnoreCase: true, Invert: true}}}, []req{
			{"GET", "/", hdr("X-A", "BEARER xyz"), false},
			{"GET", "/", hdr("X-A", "Basic xyz"), true},
			{"GET", "/", nil, false},
		}},
		{"header suffix", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Suffix: ".internal"}}}, []req{
			{"GET", "/", hdr("X-A", "a.internal"), true},
			{"GET", "/", hdr("X-A", "a.INTERNAL"), false},
			{"GET", "/", hdr("X-A", "internal"), false},
		}},
		{"header suffix ignore case", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Suffix: ".Internal", IgnoreCase: true}}}, []req{
			{"GET", "/", hdr("X-A", "a.INTERNAL"), true},
			{"GET", "/", hdr("X-A", "nal"), false},
		}},
		{"header contains", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Contains: "mid"}}}, []req{
			{"GET", "/", hdr("X-A", "amidb"), true},
			{"GET", "/", hdr("X-A", "aMIDb"), false},
			{"GET", "/", hdr("X-A", "mi"), false},
		}},
		{"header contains ignore case", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Contains: "MiD", IgnoreCase: true}}}, []req{
			{"GET", "/", hdr("X-A", "aMIDb"), true},
			{"GET", "/", hdr("X-A", "mid"), true},
			{"GET", "/", hdr("X-A", "mi-d"), false},
		}},
		{"header regex matches the whole value", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Regex: "v[0-9]"}}}, []req{
			{"GET", "/", hdr("X-A", "v1"), true},
			{"GET", "/", hdr("X-A", "v12"), false},
			{"GET", "/", hdr("X-A", "xv1"), false},
		}},
		{"header regex inverted", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Regex: `\d{3}`, Invert: true}}}, []req{
			{"GET", "/", hdr("X-A", "1234"), true},
			{"GET", "/", hdr("X-A", "123"), false},
			{"GET", "/", nil, false},
		}},
		{"multi-valued header is joined with commas", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Exact: "a,b"}}}, []req{
			{"GET", "/", hdr("X-A", "a", "X-A", "b"), true},
			{"GET", "/", hdr("X-A", "a"), false},
			{"GET", "/", hdr("X-A", "b", "X-A", "a"), false},
		}},
		{"multi-valued header with contains", HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Contains: "b"}}}, []req{
			{"GET", "/", hdr("X-A", "a", "X-A", "b"), true},
		}},
		{"lower-case header keys (gRPC metadata)", HTTPMatch{Header: []HeaderMatch{{Name: "X-Tenant", Exact: "t1"}}}, []req{
			{"GET", "/", http.Header{"x-tenant": {"t1"}}, true},
			{"GET", "/", http.Header{"X-Tenant": {"t1"}}, true},
			{"GET", "/", http.Header{"x-TENANT": {"t1"}}, false},
		}},
		{"pseudo headers", HTTPMatch{Header: []HeaderMatch{{Name: ":method", Exact: "GET"}, {Name: ":path", Prefix: "/a"}}}, []req{
			{"GET", "/a", nil, true},
			{"get", "/a", nil, true}, // :method reads the method upper-cased
			{"POST", "/a", nil, false},
			{"GET", "/b", nil, false},
		}},
		{":authority from the header map", HTTPMatch{Header: []HeaderMatch{{Name: ":authority", Exact: "api.local"}}}, []req{
			{"GET", "/", http.Header{":authority": {"api.local"}}, true},
			{"GET", "/", nil, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, m, err := compilePermission(&Permission{Action: allow, HTTP: &tc.match})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.reqs {
				got := m.matches(&HTTPRequest{Method: r.method, Path: r.path, Header: r.header})
				if got != r.want {
					t.Errorf("%s %q %v: got %v, want %v", r.method, r.path, r.header, got, r.want)
				}
			}
		})
	}
}

func TestFoldASCII(t *testing.T) {
	if lowerASCII("AbC-é") != "abc-é" || lowerASCII("abc") != "abc" {
		t.Error("lowerASCII")
	}
	if !containsFoldASCII("xxABCxx", "abc") || containsFoldASCII("ab", "abc") || !containsFoldASCII("x", "") {
		t.Error("containsFoldASCII")
	}
}
