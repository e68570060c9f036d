package authz

import (
	"fmt"
	"net/http"
	"testing"
)

// bigPolicy has 10,000 intentions: 1,000 destinations with 9 exact sources
// and a "*" source each, plus wildcard-destination intentions.
func bigPolicy(b *testing.B) *Policy {
	entries := make([]ConfigEntry, 0, 1002)
	for d := range 1000 {
		e := entry(fmt.Sprintf("svc-%d", d))
		for s := range 9 {
			e.Sources = append(e.Sources, l4(fmt.Sprintf("client-%d", (d+s)%1000), allow))
		}
		e.Sources = append(e.Sources, l4("*", deny))
		entries = append(entries, e)
	}
	entries = append(entries,
		entry("*", l4("monitor", allow), l4("*", deny)),
		entry("*/*", l4("*/*", deny)),
	)
	p := newTestPolicy(b, false, entries...)
	if n := len(p.Intentions()); n < 10000 {
		b.Fatalf("%d intentions", n)
	}
	return p
}

func BenchmarkAuthorizeL4_10k(b *testing.B) {
	p := bigPolicy(b)
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"exact", Request{Source: sid(Selector{Name: "client-503"}), Destination: sid(Selector{Name: "svc-500"})}},
		{"wildcard-source", Request{Source: sid(Selector{Name: "other"}), Destination: sid(Selector{Name: "svc-500"})}},
		{"wildcard-destination", Request{Source: sid(Selector{Name: "monitor"}), Destination: sid(Selector{Name: "unknown"})}},
		{"default", Request{Source: sid(Selector{Namespace: "dev", Name: "x"}), Destination: sid(Selector{Namespace: "dev", Name: "y"})}},
		{"peer-default", Request{Source: sid(Selector{Name: "client-503", Peer: "partner"}), SourcePeer: Selector{Name: "client-503", Peer: "partner"}.Peer, Destination: sid(Selector{Name: "svc-500"})}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var d Decision
			for b.Loop() {
				d = p.Authorize(bc.req)
			}
			if d.Kind() == KindNone {
				b.Fatal(d)
			}
		})
	}
}

func BenchmarkAuthorizeL7(b *testing.B) {
	p := newTestPolicy(b, false, entry("api",
		l7("web",
			perm(deny, HTTPMatch{PathPrefix: "/admin"}),
			perm(allow, HTTPMatch{PathRegex: "/v[0-9]+/users/[^/]+", Methods: []string{"GET", "HEAD"}}),
			perm(allow, HTTPMatch{PathPrefix: "/", Methods: []string{"POST"},
				Header: []HeaderMatch{{Name: "x-tenant", Contains: "acme", IgnoreCase: true}, {Name: "x-debug", Present: true, Invert: true}}}),
		),
		l4("*", deny),
	))
	header := http.Header{"X-Tenant": {"ACME-corp"}, "Content-Type": {"application/json"}}
	for _, bc := range []struct {
		name string
		req  HTTPRequest
	}{
		{"prefix-deny", HTTPRequest{Method: "GET", Path: "/admin/x", Header: header}},
		{"regex-allow", HTTPRequest{Method: "GET", Path: "/v1/users/42", Header: header}},
		{"headers-allow", HTTPRequest{Method: "POST", Path: "/orders", Header: header}},
		{"no-match", HTTPRequest{Method: "DELETE", Path: "/orders", Header: header}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			req := Request{Source: sid(Selector{Name: "web"}), Destination: sid(Selector{Name: "api"}), HTTP: &bc.req}
			var d Decision
			for b.Loop() {
				d = p.Authorize(req)
			}
			if d.Kind() != KindL7Permission && d.Kind() != KindL7NoMatch {
				b.Fatal(d)
			}
		})
	}
}

func BenchmarkSet10k(b *testing.B) {
	p := bigPolicy(b)
	entries := make([]ConfigEntry, 0, 1000)
	for d := range 1000 {
		e := entry(fmt.Sprintf("svc-%d", d))
		for s := range 10 {
			e.Sources = append(e.Sources, l4(fmt.Sprintf("client-%d", s), allow))
		}
		entries = append(entries, e)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Set(entries...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecisionReason(b *testing.B) {
	p := newTestPolicy(b, false, entry("api", l4("web", allow)))
	d := p.Authorize(Request{Source: sid(Selector{Name: "web"}), Destination: sid(Selector{Name: "api"})})
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Reason()
	}
}
