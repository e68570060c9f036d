package authz

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn"
)

func FuzzParseConfigEntries(f *testing.F) {
	for _, s := range []string{
		camelJSON, snakeJSON, "[" + camelJSON + "," + strings.Replace(snakeJSON, `"api"`, `"db"`, 1) + "]",
		`{"Kind":"service-intentions","Name":"*","Namespace":"*","Sources":[{"Name":"*","Namespace":"*","Action":"deny"}]}`,
		`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathExact":"/","Methods":["get"]}}]}]}`,
		`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"Header":[{"Name":"a","Regex":"\\Q(x"}]}}]}]}`,
		`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"*","Peer":"partner.example","Action":"allow"},{"name":"web","peer":"partner.example","action":"deny"}]}`,
		`{"Kind":"service-intentions","Name":"api","JWT":{},"Sources":[]}`, `[]`, `{}`, `[null]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseConfigEntries(data)
		if err != nil {
			if entries != nil {
				t.Fatalf("entries with an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "authz: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		// Whatever parses validates, and compiles.
		for _, e := range entries {
			if err := e.Validate(); err != nil {
				t.Fatalf("parsed entry does not validate: %v", err)
			}
		}
		p := NewPolicy()
		if err := p.Set(entries...); err != nil {
			t.Fatalf("parsed entries do not Set: %v", err)
		}
		// Parsing what json.Marshal writes gives the same entries.
		out, err := json.Marshal(entries)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfigEntries(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(entries, again) {
			t.Fatalf("round trip changed the entries:\n%#v\n%#v", entries, again)
		}
		// And every intention can be evaluated.
		for _, ixn := range p.Intentions() {
			d := p.Authorize(Request{Source: sid(ixn.Source), SourcePeer: ixn.Source.Peer, Destination: sid(ixn.Destination), HTTP: &HTTPRequest{Method: "GET", Path: "/"}})
			if d.Reason() == "" || d.Kind() == KindNone {
				t.Fatalf("bad decision %v", d)
			}
		}
	})
}

// Vocabularies FuzzAuthorize draws from.
var (
	fuzzDests = []string{"api", "db", "prod/api", "prod/*", "*", "*/*", "p1/default/api", "p1/*/*", "p1/ns/*"}
	fuzzSrcs  = []string{"web", "api", "prod/web", "prod/*", "*", "*/*", "p1/default/web", "p1/*/*", "dev/web", "p1/ns/*",
		"partner:web", "partner:*", "partner:*/*", "partner:prod/web", "other:web"}
	fuzzReqs = []string{"web", "api", "db", "prod/web", "prod/api", "prod/db", "dev/web", "x",
		"p1/default/web", "p1/default/api", "p1/ns/x", "p2/default/web",
		"partner:web", "partner:prod/web", "partner:x", "other:web", "partner:p1/default/web", "unknown:web"}
	fuzzPerms = [][]Permission{
		{perm(allow, HTTPMatch{PathPrefix: "/", Methods: []string{"GET"}})},
		{perm(deny, HTTPMatch{PathPrefix: "/admin"}), perm(allow, HTTPMatch{PathPrefix: "/"})},
		{perm(allow, HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Exact: "1"}}})},
		{perm(deny, HTTPMatch{Methods: []string{"POST"}}), perm(allow, HTTPMatch{PathRegex: "/v[0-9]+(/.*)?"})},
		{perm(allow, HTTPMatch{Header: []HeaderMatch{{Name: "x-a", Present: true, Invert: true}}})},
	}
	fuzzMethods = []string{"GET", "POST", "HEAD", "get"}
)

// fuzzPolicy builds a valid policy from data, three bytes an intention.
func fuzzPolicy(t *testing.T, data []byte, defaultAllow bool) *Policy {
	byDest := map[string]*ConfigEntry{}
	var order []string
	for i := 0; i+2 < len(data); i += 3 {
		dst := fuzzDests[int(data[i])%len(fuzzDests)]
		src := l4(fuzzSrcs[int(data[i+1])%len(fuzzSrcs)], allow)
		switch c := int(data[i+2]) % (2 + len(fuzzPerms)); c {
		case 0:
		case 1:
			src.Action = deny
		default:
			if !strings.Contains(dst, "*") {
				src.Action, src.Permissions = "", fuzzPerms[c-2]
			}
		}
		e := byDest[dst]
		if e == nil {
			e = &ConfigEntry{}
			*e = entry(dst)
			byDest[dst] = e
			order = append(order, dst)
		}
		e.Sources = append(e.Sources, src)
	}
	var entries []ConfigEntry
	for _, dst := range order {
		e := byDest[dst]
		// Drop sources that normalize to one already there.
		d := Selector{Partition: orDefault(e.Partition, ztn.DefaultPartition), Namespace: orDefault(e.Namespace, ztn.DefaultNamespace), Name: e.Name}
		seen := map[Selector]bool{}
		var kept []SourceIntention
		for _, s := range e.Sources {
			r, err := compileSource(&s, d)
			if err != nil {
				t.Fatalf("%s: %+v: %v", dst, s, err)
			}
			if !seen[r.Source] {
				seen[r.Source] = true
				kept = append(kept, s)
			}
		}
		e.Sources = kept
		entries = append(entries, *e)
	}
	p := newTestPolicy(t, defaultAllow, entries...)
	return p
}

// normalize fills in the default partition and namespace.
func normalize(s Selector) Selector {
	s.Partition = orDefault(s.Partition, ztn.DefaultPartition)
	s.Namespace = orDefault(s.Namespace, ztn.DefaultNamespace)
	return s
}

// reference is Consul's algorithm read literally: sort every intention by
// precedence, the first that matches source and destination decides.
func reference(ixns []Intention, defaultAllow bool, req Request) (allowed bool, kind string, ixn *Intention, permIdx int) {
	exact := func(s Selector) int {
		switch {
		case s.Namespace == "*":
			return 0
		case s.Name == "*":
			return 1
		}
		return 2
	}
	prec := func(x Intention) int { return 3*exact(x.Destination) + exact(x.Source) + 1 }
	sorted := slices.Clone(ixns)
	slices.SortStableFunc(sorted, func(a, b Intention) int {
		if prec(a) != prec(b) {
			return prec(b) - prec(a)
		}
		ka := []string{a.Source.Peer, a.Source.Partition, a.Source.Namespace, a.Source.Name, a.Destination.Partition, a.Destination.Namespace, a.Destination.Name}
		kb := []string{b.Source.Peer, b.Source.Partition, b.Source.Namespace, b.Source.Name, b.Destination.Partition, b.Destination.Namespace, b.Destination.Name}
		return slices.Compare(ka, kb)
	})
	matches := func(pattern, s Selector) bool {
		return pattern.Peer == s.Peer && pattern.Partition == s.Partition &&
			(pattern.Namespace == "*" || pattern.Namespace == s.Namespace) &&
			(pattern.Name == "*" || pattern.Name == s.Name)
	}
	src, dst := normalize(req.source()), normalize(req.destination())
	for i := range sorted {
		x := &sorted[i]
		if x.Precedence != prec(*x) {
			panic("precedence mismatch")
		}
		if !matches(x.Destination, dst) || !matches(x.Source, src) {
			continue
		}
		switch {
		case len(x.Permissions) == 0:
			return x.Action == ActionAllow, KindIntention, x, -1
		case req.HTTP == nil:
			return req.AdmitL7, KindL7AtL4, x, -1
		}
		for j, p := range x.Permissions {
			_, m, err := compilePermission(&p)
			if err != nil {
				panic(err)
			}
			if m.matches(req.HTTP) {
				return p.Action == ActionAllow, KindL7Permission, x, j
			}
		}
		return defaultAllow, KindL7NoMatch, x, -1
	}
	return defaultAllow, KindDefault, nil, -1
}

func FuzzAuthorize(f *testing.F) {
	f.Add([]byte{0, 4, 1, 4, 0, 0}, uint8(0), uint8(1), uint8(0), "/", "", false, false, false)
	f.Add([]byte{0, 0, 2, 0, 4, 1, 5, 5, 0}, uint8(0), uint8(1), uint8(1), "/x", "1", true, true, true)
	f.Add([]byte{2, 2, 3, 2, 3, 1, 3, 2, 0, 5, 5, 1}, uint8(3), uint8(4), uint8(0), "/admin", "", true, false, false)
	f.Add([]byte{6, 6, 0, 7, 7, 1, 8, 9, 0}, uint8(8), uint8(9), uint8(0), "/v1", "", false, false, true)
	// Peers: "web" and "*" allowed locally, "partner:web" allowed, "partner:*" denied.
	f.Add([]byte{0, 0, 0, 0, 4, 0, 0, 10, 0, 0, 11, 1}, uint8(12), uint8(1), uint8(0), "/", "", false, false, false)
	f.Add([]byte{0, 4, 0, 0, 12, 2, 0, 13, 1}, uint8(12), uint8(1), uint8(0), "/x", "", true, false, true)
	f.Fuzz(func(t *testing.T, data []byte, srcIdx, dstIdx, method uint8, path, hdr string, l7, admit, defaultAllow bool) {
		p := fuzzPolicy(t, data, defaultAllow)
		req := Request{
			Source: sid(svc(fuzzReqs[int(srcIdx)%len(fuzzReqs)])), SourcePeer: svc(fuzzReqs[int(srcIdx)%len(fuzzReqs)]).Peer,
			Destination: sid(svc(fuzzReqs[int(dstIdx)%len(fuzzReqs)])),
			AdmitL7:     admit,
		}
		if l7 {
			req.HTTP = &HTTPRequest{Method: fuzzMethods[int(method)%len(fuzzMethods)], Path: path}
			if hdr != "" {
				req.HTTP.Header = http.Header{"X-A": strings.Split(hdr, "\n")}
			}
		}
		d := p.Authorize(req)
		allowed, kind, x, permIdx := reference(p.Intentions(), defaultAllow, req)
		got, ok := d.Intention()
		if d.Allowed != allowed || d.Kind() != kind || ok != (x != nil) ||
			(x != nil && (got.Source != x.Source || got.Destination != x.Destination)) ||
			(kind == KindL7Permission && int(d.perm) != permIdx) {
			t.Fatalf("%+v: got %v %s %+v; reference %v %s %+v perm %d", req, d.Allowed, d.Kind(), got, allowed, kind, x, permIdx)
		}
		if d.Reason() == "" {
			t.Fatal("empty reason")
		}
		// A caller of a peer is only ever decided by an intention naming
		// that peer, and a reason always names the peer.
		if p := req.SourcePeer; p != "" {
			if x != nil && x.Source.Peer != p {
				t.Fatalf("%+v decided by %+v", req, x)
			}
			if !strings.Contains(d.Reason(), p) {
				t.Fatalf("%+v: reason %q does not name the peer", req, d.Reason())
			}
		}
	})
}
