package authz

import (
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
)

// svc parses "name", "ns/name" or "ap/ns/name", each optionally prefixed
// by "peer:" (as Service.String writes them).
func svc(s string) Selector {
	peer, s, ok := strings.Cut(s, ":")
	if !ok {
		peer, s = "", peer
	}
	parts := strings.Split(s, "/")
	switch len(parts) {
	case 1:
		return Selector{Name: parts[0], Peer: peer}
	case 2:
		return Selector{Namespace: parts[0], Name: parts[1], Peer: peer}
	default:
		return Selector{Partition: parts[0], Namespace: parts[1], Name: parts[2], Peer: peer}
	}
}

// entry builds the entry for dst ("name", "ns/name" or "ap/ns/name").
func entry(dst string, sources ...SourceIntention) ConfigEntry {
	d := svc(dst)
	return ConfigEntry{Kind: KindServiceIntentions, Name: d.Name, Namespace: d.Namespace, Partition: d.Partition, Sources: sources}
}

// l4 builds an L4 source; src is as svc takes it.
func l4(src string, a Action) SourceIntention {
	s := svc(src)
	return SourceIntention{Name: s.Name, Namespace: s.Namespace, Partition: s.Partition, Peer: s.Peer, Action: a}
}

// l7 builds an L7 source.
func l7(src string, perms ...Permission) SourceIntention {
	s := l4(src, "")
	s.Permissions = perms
	return s
}

func perm(a Action, h HTTPMatch) Permission { return Permission{Action: a, HTTP: &h} }

func newTestPolicy(t testing.TB, defaultAllow bool, entries ...ConfigEntry) *Policy {
	t.Helper()
	var opts []Option
	if defaultAllow {
		opts = append(opts, WithDefaultAllow())
	}
	p := NewPolicy(opts...)
	if err := p.Set(entries...); err != nil {
		t.Fatalf("Set: %v", err)
	}
	return p
}

const (
	allow = ActionAllow
	deny  = ActionDeny
)

// sid returns the identity of the service s selects, in trust domain
// ztn.test and datacenter dc1 (which authorization does not look at).
func sid(s Selector) ztn.ServiceID {
	return ztn.ServiceID{TrustDomain: spiffeid.RequireTrustDomainFromString("ztn.test"), Partition: s.Partition, Namespace: s.Namespace, Datacenter: "dc1", Name: s.Name}
}

func l4req(src, dst string) Request {
	return Request{Source: sid(Selector{Name: src}), Destination: sid(Selector{Name: dst})}
}
