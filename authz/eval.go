package authz

import "github.com/ztnlabs/ztn"

// snapshot is an immutable compiled set of intentions.
//
// Consul's rule is: sort the intentions that apply to the destination
// (those for it, for its "ns/*" and for "*/*") by precedence, and the first
// whose source matches decides. Precedence is fixed by the destination's
// specificity (9-7, 6-4, 3-1) and then the source's (exact, "ns/*", "*/*"),
// so the nine candidates that can match a (source, destination) pair all
// have different precedences, and each exists at most once (a destination
// has one entry, and an entry names a source once). The first match in the
// sorted list is therefore the first candidate found when looking them up
// from the most specific to the least: at most nine lookups, whatever the
// number of intentions. FuzzAuthorize checks this against the sorted list.
//
// Peers take part in the keys: a source of a peer can only be found under
// its own peer, so neither a local name nor a local wildcard ever matches
// it (Consul's IntentionMatch compares SourcePeer first).
//
// Lookups use small integer keys: every peer, partition, namespace and name
// the intentions mention is numbered once, so a request costs one string
// lookup per name (none for "default" or the local peer) and a few
// integer-keyed map lookups.
type snapshot struct {
	symbols map[string]symbol
	byPair  map[pairKey]*rule
	// levels[d][s] reports whether any rule has a destination of
	// specificity d and a source of specificity s (0 exact, 1 "ns/*",
	// 2 "*/*"), to skip lookups that cannot hit.
	levels [3][3]bool
	rules  []*rule // every rule, in evaluation (precedence) order
}

// symbol numbers a string the intentions mention; symUnknown is any other.
type symbol uint32

const (
	symUnknown symbol = iota
	symWildcard
	symDefault
	symLocal // the peer "": the local cluster / trust domain
)

// pairKey is a (source, destination) pair as written in an intention.
type pairKey struct {
	src, dst symKey
}

type symKey struct {
	peer, partition, namespace, name symbol
}

func newSnapshot(rules []*rule) *snapshot {
	s := &snapshot{
		symbols: map[string]symbol{Wildcard: symWildcard, ztn.DefaultNamespace: symDefault, "": symLocal},
		byPair:  make(map[pairKey]*rule, len(rules)),
		rules:   rules,
	}
	intern := func(str string) symbol {
		sym, ok := s.symbols[str]
		if !ok {
			sym = symbol(len(s.symbols) + 1) // symUnknown is never used; the constants are 1..len
			s.symbols[str] = sym
		}
		return sym
	}
	key := func(svc Selector) symKey {
		return symKey{intern(svc.Peer), intern(svc.Partition), intern(svc.Namespace), intern(svc.Name)}
	}
	for _, r := range rules {
		s.byPair[pairKey{key(r.Source), key(r.Destination)}] = r
		s.levels[2-exactParts(r.Destination)][2-exactParts(r.Source)] = true
	}
	return s
}

// key returns the symbols of a request's service; ok is false if its peer
// or partition is unknown, in which case no intention can match it.
func (s *snapshot) key(svc Selector) (k symKey, ok bool) {
	k = symKey{symLocal, s.scope(svc.Partition), s.scope(svc.Namespace), s.symbols[svc.Name]}
	if svc.Peer != "" {
		k.peer = s.symbols[svc.Peer]
	}
	return k, k.partition != symUnknown && k.peer != symUnknown
}

// scope returns the symbol of a partition or namespace, "" meaning
// "default".
func (s *snapshot) scope(str string) symbol {
	if str == "" || str == ztn.DefaultNamespace {
		return symDefault
	}
	return s.symbols[str]
}

// widen returns k (level 0), its "ns/*" (1) or its "*/*" (2); ok is false
// when that form cannot be in the snapshot because a part is unknown.
func widen(k symKey, level int) (symKey, bool) {
	switch level {
	case 0:
		return k, k.namespace != symUnknown && k.name != symUnknown
	case 1:
		k.name = symWildcard
		return k, k.namespace != symUnknown
	default:
		k.namespace, k.name = symWildcard, symWildcard
		return k, true
	}
}

// match returns the intention that decides traffic from src to dst, or nil.
func (s *snapshot) match(src, dst Selector) *rule {
	sk, ok1 := s.key(src)
	dk, ok2 := s.key(dst)
	if !ok1 || !ok2 {
		return nil
	}
	for d := range 3 {
		dw, ok := widen(dk, d)
		if !ok {
			continue
		}
		for k := range 3 {
			if !s.levels[d][k] {
				continue
			}
			if sw, ok := widen(sk, k); ok {
				if r := s.byPair[pairKey{sw, dw}]; r != nil {
					return r
				}
			}
		}
	}
	return nil
}

// authorize evaluates req; defaultAllow is what applies when no intention
// (or no permission of a matched L7 intention) decides.
func (s *snapshot) authorize(req *Request, defaultAllow bool) Decision {
	r := s.match(req.source(), req.destination())
	switch {
	case r == nil:
		return Decision{Allowed: defaultAllow, kind: reasonDefault, peer: req.SourcePeer}
	case len(r.perms) == 0:
		return Decision{Allowed: r.Action == ActionAllow, kind: reasonIntention, rule: r}
	case req.HTTP == nil:
		return Decision{Allowed: req.AdmitL7, kind: reasonL7AtL4, rule: r}
	}
	for i := range r.perms {
		if r.perms[i].matches(req.HTTP) {
			return Decision{Allowed: r.perms[i].allow, kind: reasonL7Permission, perm: int32(i), rule: r}
		}
	}
	return Decision{Allowed: defaultAllow, kind: reasonL7NoMatch, rule: r}
}
