package authz

import (
	"net/http"
	"strings"
	"testing"
)

// mdSource is a HeaderSource over lower-case keys, as gRPC metadata is.
type mdSource map[string][]string

func (m mdSource) Values(name string) []string { return m[name] }

// Header conditions decide the same whether the headers come as an
// http.Header or through a HeaderSource, which takes precedence.
func TestHeaderSource(t *testing.T) {
	matches := []HTTPMatch{
		{Header: []HeaderMatch{{Name: "X-Tenant", Exact: "blue"}}},
		{Header: []HeaderMatch{{Name: "x-tenant", Present: true, Invert: true}}},
		{Header: []HeaderMatch{{Name: "X-A", Exact: "a,b"}}},
		{Header: []HeaderMatch{{Name: "x-a", Prefix: "A", IgnoreCase: true}}},
		{Header: []HeaderMatch{{Name: ":authority", Exact: "api"}}},
		{Header: []HeaderMatch{{Name: ":method", Exact: "POST"}, {Name: ":path", Prefix: "/pkg."}}},
	}
	headers := []http.Header{
		nil,
		{"X-Tenant": {"blue"}},
		{"X-Tenant": {"red"}},
		{"X-A": {"a", "b"}},
		{"X-A": {"a"}},
		{":authority": {"api"}},
	}
	for _, hm := range matches {
		_, m, err := compilePermission(&Permission{Action: ActionAllow, HTTP: &hm})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			md := mdSource{}
			for k, v := range h {
				md[strings.ToLower(k)] = v
			}
			viaHeader := m.matches(&HTTPRequest{Method: "POST", Path: "/pkg.S/M", Header: h})
			viaSource := m.matches(&HTTPRequest{Method: "POST", Path: "/pkg.S/M", HeaderSource: md,
				Header: http.Header{"X-Tenant": {"blue"}, "X-A": {"a", "b"}}}) // ignored
			if viaHeader != viaSource {
				t.Errorf("%+v on %v: %v through Header, %v through HeaderSource", hm.Header, h, viaHeader, viaSource)
			}
		}
	}
}
