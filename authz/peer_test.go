package authz

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn"
)

// A caller of a peer (a federated trust domain) never gets the intentions
// of the local service of the same name, nor local wildcards: only sources
// that name its peer match it.
func TestPeerSourcesMatchOnlyTheirPeer(t *testing.T) {
	const peer = "partner.example"
	partnerWeb := Selector{Name: "web", Peer: peer}
	api := svc("api")

	// Local intentions only: the partner's web is denied by default, and
	// the reason says which peer it came from.
	p := newTestPolicy(t, false, entry("api", l4("web", allow), l4("*", allow)), entry("*", l4("*", allow)))
	if d := p.Authorize(Request{Source: sid(svc("web")), Destination: sid(api)}); !d.Allowed {
		t.Fatalf("local web → api: %v", d)
	}
	for _, req := range []Request{
		{Source: sid(partnerWeb), SourcePeer: partnerWeb.Peer, Destination: sid(api)},
		{Source: sid(partnerWeb), SourcePeer: partnerWeb.Peer, Destination: sid(api), AdmitL7: true},
		{Source: sid(partnerWeb), SourcePeer: partnerWeb.Peer, Destination: sid(api), HTTP: &HTTPRequest{Method: "GET", Path: "/"}},
		{Source: sid(Selector{Name: "db", Peer: peer}), SourcePeer: Selector{Name: "db", Peer: peer}.Peer, Destination: sid(svc("db"))},
	} {
		d := p.Authorize(req)
		if d.Allowed || d.Kind() != KindDefault || d.Default() != true {
			t.Fatalf("%+v: %v", req, d)
		}
		if want := `no intention for peer "partner.example" matches (default deny)`; d.Reason() != want {
			t.Fatalf("reason %q, want %q", d.Reason(), want)
		}
	}
	// Default allow still applies to peers (it is the user's choice), and
	// says so.
	pa := newTestPolicy(t, true, entry("api", l4("web", deny)))
	if d := pa.Authorize(Request{Source: sid(partnerWeb), SourcePeer: partnerWeb.Peer, Destination: sid(api)}); !d.Allowed || !strings.Contains(d.Reason(), `peer "partner.example"`) {
		t.Fatalf("default allow: %v", d)
	}

	// An intention naming the peer admits it, and only it.
	p = newTestPolicy(t, false,
		entry("api", l4("web", deny), l4(peer+":web", allow), l4("other:*", allow), l4("*", deny)),
		entry("db", l4(peer+":*/*", allow)),
	)
	d := p.Authorize(Request{Source: sid(partnerWeb), SourcePeer: partnerWeb.Peer, Destination: sid(api)})
	if !d.Allowed || d.Kind() != KindIntention {
		t.Fatalf("partner web → api: %v", d)
	}
	if want := "intention partner.example:web → api allows (precedence 9)"; d.Reason() != want {
		t.Fatalf("reason %q, want %q", d.Reason(), want)
	}
	if ixn, _ := d.Intention(); ixn.Source != (Selector{Partition: ztn.DefaultPartition, Namespace: ztn.DefaultNamespace, Name: "web", Peer: peer}) {
		t.Fatalf("intention source %+v", ixn.Source)
	}
	for _, tc := range []struct {
		src     Selector
		dst     string
		allowed bool
		reason  string
	}{
		{svc("web"), "api", false, "intention web → api denies (precedence 9)"},
		{Selector{Name: "x", Peer: peer}, "api", false, `no intention for peer "partner.example" matches (default deny)`},
		{Selector{Name: "web", Peer: "other"}, "api", true, "intention other:* → api allows (precedence 8)"},
		{Selector{Name: "web", Peer: "unknown"}, "api", false, `no intention for peer "unknown" matches (default deny)`},
		{Selector{Namespace: "prod", Name: "web", Peer: peer}, "api", false, `no intention for peer "partner.example" matches (default deny)`},
		{Selector{Namespace: "prod", Name: "x", Peer: peer}, "db", true, "intention partner.example:*/* → db allows (precedence 7)"},
		{svc("x"), "db", false, "no intention matches (default deny)"},
		// A peered source names no partition: it matches the peer's
		// default partition only (Consul's IntentionMatch).
		{Selector{Partition: "p1", Name: "web", Peer: peer}, "api", false, `no intention for peer "partner.example" matches (default deny)`},
	} {
		d := p.Authorize(Request{Source: sid(tc.src), SourcePeer: tc.src.Peer, Destination: sid(svc(tc.dst))})
		if d.Allowed != tc.allowed || d.Reason() != tc.reason {
			t.Errorf("%s → %s: %v; want allowed=%v %q", tc.src, tc.dst, d, tc.allowed, tc.reason)
		}
	}
}

// A peered source inherits neither the destination's namespace nor its
// partition (Consul's normalize), and sorts by peer after precedence (the
// local peer "" first).
func TestPeerSourceNormalization(t *testing.T) {
	p := newTestPolicy(t, false,
		entry("prod/api", l4("partner:web", allow), l4("web", allow)),
		entry("p1/default/db", l4("partner:*", allow)),
	)
	want := []Intention{
		{Source: Selector{Partition: "default", Namespace: "prod", Name: "web"}, Destination: Selector{Partition: "default", Namespace: "prod", Name: "api"}, Action: allow, Precedence: 9},
		{Source: Selector{Partition: "default", Namespace: "default", Name: "web", Peer: "partner"}, Destination: Selector{Partition: "default", Namespace: "prod", Name: "api"}, Action: allow, Precedence: 9},
		{Source: Selector{Partition: "default", Namespace: "default", Name: "*", Peer: "partner"}, Destination: Selector{Partition: "p1", Namespace: "default", Name: "db"}, Action: allow, Precedence: 8},
	}
	got := p.Intentions()
	if len(got) != len(want) {
		t.Fatalf("intentions %+v", got)
	}
	for i := range want {
		if got[i].Source != want[i].Source || got[i].Destination != want[i].Destination || got[i].Precedence != want[i].Precedence {
			t.Errorf("intention %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if d := p.Authorize(Request{Source: sid(Selector{Name: "web", Peer: "partner"}), SourcePeer: Selector{Name: "web", Peer: "partner"}.Peer, Destination: sid(svc("prod/api"))}); !d.Allowed {
		t.Errorf("partner web → prod/api: %v", d)
	}
	if d := p.Authorize(Request{Source: sid(Selector{Namespace: "prod", Name: "web", Peer: "partner"}), SourcePeer: Selector{Namespace: "prod", Name: "web", Peer: "partner"}.Peer, Destination: sid(svc("prod/api"))}); d.Allowed {
		t.Errorf("partner prod/web → prod/api: %v", d)
	}
	if d := p.Authorize(Request{Source: sid(Selector{Name: "x", Peer: "partner"}), SourcePeer: Selector{Name: "x", Peer: "partner"}.Peer, Destination: sid(svc("p1/default/db"))}); !d.Allowed {
		t.Errorf("partner x → p1/default/db: %v", d)
	}
	if d := p.Authorize(Request{Source: sid(Selector{Partition: "p1", Name: "x"}), Destination: sid(svc("p1/default/db"))}); d.Allowed {
		t.Errorf("local p1 x → p1/default/db: %v", d)
	}
}

// L7 intentions of a peer apply to that peer's requests only; a local L7
// intention never judges a peer's request.
func TestPeerL7(t *testing.T) {
	p := newTestPolicy(t, false, entry("api",
		l7("web", perm(allow, HTTPMatch{PathPrefix: "/"})),
		l7("partner:web", perm(deny, HTTPMatch{PathPrefix: "/admin"}), perm(allow, HTTPMatch{PathPrefix: "/", Methods: []string{"GET"}})),
	))
	req := func(src Selector, method, path string) Request {
		return Request{Source: sid(src), SourcePeer: src.Peer, Destination: sid(svc("api")), HTTP: &HTTPRequest{Method: method, Path: path, Header: http.Header{}}}
	}
	partner := Selector{Name: "web", Peer: "partner"}
	for _, tc := range []struct {
		req     Request
		allowed bool
		reason  string
	}{
		{req(svc("web"), "POST", "/admin"), true, "L7 intention web → api: permission 1 (prefix /) allows"},
		{req(partner, "GET", "/x"), true, "L7 intention partner:web → api: permission 2 (GET prefix /) allows"},
		{req(partner, "GET", "/admin"), false, "L7 intention partner:web → api: permission 1 (prefix /admin) denies"},
		{req(partner, "POST", "/x"), false, "L7 intention partner:web → api: no permission matched (default deny)"},
		{req(Selector{Name: "web", Peer: "other"}, "GET", "/x"), false, `no intention for peer "other" matches (default deny)`},
		{Request{Source: sid(partner), SourcePeer: partner.Peer, Destination: sid(svc("api")), AdmitL7: true}, true, "intention partner:web → api has L7 permissions, connection admitted for per-request checks"},
	} {
		d := p.Authorize(tc.req)
		if d.Allowed != tc.allowed || d.Reason() != tc.reason {
			t.Errorf("%s %+v: %v; want allowed=%v %q", tc.req.Source, tc.req.HTTP, d, tc.allowed, tc.reason)
		}
	}
}

// Peer in a policy file (Consul's JSON, either spelling) is parsed, kept
// through a JSON round trip, and enforced.
func TestPeerPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intentions.json")
	js := `[{"Kind":"service-intentions","Name":"api","Sources":[
		{"Name":"web","Action":"allow"},
		{"Name":"web","Peer":"partner.example","Action":"deny"},
		{"name":"*","peer":"partner.example","action":"allow"}]},
	{"kind":"service-intentions","name":"db","sources":[
		{"name":"*","action":"allow"}]}]`
	if err := os.WriteFile(path, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := entries[0].Sources[2]; s.Peer != "partner.example" || s.Name != "*" {
		t.Fatalf("parsed %+v", s)
	}
	p := NewPolicy()
	if err := p.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src     Selector
		dst     string
		allowed bool
		reason  string
	}{
		{svc("web"), "api", true, "intention web → api allows (precedence 9)"},
		{Selector{Name: "web", Peer: "partner.example"}, "api", false, "intention partner.example:web → api denies (precedence 9)"},
		{Selector{Name: "cron", Peer: "partner.example"}, "api", true, "intention partner.example:* → api allows (precedence 8)"},
		{svc("cron"), "api", false, "no intention matches (default deny)"},
		{svc("cron"), "db", true, "intention * → db allows (precedence 8)"},
		{Selector{Name: "cron", Peer: "partner.example"}, "db", false, `no intention for peer "partner.example" matches (default deny)`},
	} {
		d := p.Authorize(Request{Source: sid(tc.src), SourcePeer: tc.src.Peer, Destination: sid(svc(tc.dst))})
		if d.Allowed != tc.allowed || d.Reason() != tc.reason {
			t.Errorf("%s → %s: %v; want allowed=%v %q", tc.src, tc.dst, d, tc.allowed, tc.reason)
		}
	}
}
