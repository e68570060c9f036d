package authz

import "github.com/ztnlabs/ztn"

// Action is what an intention, or one of its permissions, does with the
// traffic it matches.
type Action string

// The two actions. Consul spells them in lower case only.
const (
	ActionAllow Action = "allow"
	ActionDeny  Action = "deny"
)

// Wildcard, as a whole Name or Namespace, matches every value. Partitions are
// never wildcards.
const Wildcard = "*"

// Selector names services the way intentions do: a source or the
// destination of an Intention, as "[peer:][partition/][namespace/]name".
// Name and Namespace may be Wildcard; an empty Partition or Namespace means
// [ztn.DefaultPartition] or [ztn.DefaultNamespace].
//
// Peer is the cluster peer or federated trust domain a source belongs to
// (see [Request].SourcePeer); "" means the local one. Destinations are always
// local.
type Selector struct {
	Partition string // "" means "default"
	Namespace string // "" means "default"
	Name      string
	Peer      string // "" means local
}

// String formats s as Consul does, "[partition/]namespace/name", leaving
// out a default partition and then a default namespace: "api",
// "prod/api", "*/*", "part1/default/api". A service of a peer is prefixed
// with the peer and a colon: "partner.example:web", "partner.example:*".
func (s Selector) String() string {
	defP := s.Partition == "" || s.Partition == ztn.DefaultPartition
	defNS := s.Namespace == "" || s.Namespace == ztn.DefaultNamespace
	var name string
	switch {
	case defP && defNS:
		name = s.Name
	case defP:
		name = s.Namespace + "/" + s.Name
	default:
		name = s.Partition + "/" + orDefault(s.Namespace, ztn.DefaultNamespace) + "/" + s.Name
	}
	if s.Peer != "" {
		return s.Peer + ":" + name
	}
	return name
}

// Intention is one validated and normalized (source, destination) rule, as
// Consul's /v1/connect/intentions/match returns it: Partition and Namespace
// are filled in, Methods are upper case, and Precedence is computed.
//
// An L4 intention has an Action; an L7 intention has Permissions instead and
// an empty Action.
type Intention struct {
	// Source may name a Peer; its Name or Namespace may be Wildcard.
	Source      Selector
	Destination Selector // Name or Namespace may be Wildcard; never a Peer
	Action      Action
	Permissions []Permission
	// Precedence orders intentions: higher first. It is 9, 8 or 7 for an
	// exact destination, 6, 5 or 4 for "ns/*" and 3, 2 or 1 for "*/*",
	// depending on the source in the same way (exact, "ns/*", "*/*").
	Precedence  int
	Description string
}

// Permission is one ordered L7 rule of an intention: when HTTP matches a
// request, Action decides it.
type Permission struct {
	Action Action
	HTTP   *HTTPMatch `json:",omitempty"`
}

// HTTPMatch matches a request when every condition it sets holds: the path
// condition (at most one of PathExact, PathPrefix, PathRegex), every Header
// condition, and Methods (the request method is one of them). At least one
// condition must be set.
//
// Methods match without regard to case, and a list that names GET also
// matches HEAD: net/http serves HEAD with the GET handler and hands "get" to
// handlers as it is, so a rule denying GET must deny those too. Envoy, which
// Consul's sidecars run, compares methods exactly; ztn's match is wider,
// never narrower (every request Envoy's rule matches, ztn's matches). A
// ":method" header condition reads the method upper-cased, without the HEAD
// rule.
//
// Paths are compared as given in [HTTPRequest].Path (no query string, no
// normalization); a path that does not start with "/" never matches a path
// condition. Regexes use RE2 syntax (Go's regexp) and must match the whole
// value.
type HTTPMatch struct {
	// PathExact matches the path equal to it.
	PathExact string `json:",omitempty"`
	// PathPrefix matches every path that starts with it, as a plain string
	// prefix, as in Consul: "/api" matches "/api", "/api/users" and also
	// "/apis" and "/api-v2"; write "/api/" to stay inside the segment.
	// (httpztn.Route's PathPrefix, unlike this one, matches whole path
	// segments.)
	PathPrefix string `json:",omitempty"`
	// PathRegex matches a path that the regular expression matches whole.
	PathRegex string `json:",omitempty"`
	// Header lists header conditions, all of which must hold.
	Header []HeaderMatch `json:",omitempty"`
	// Methods, when set, lists the methods that match.
	Methods []string `json:",omitempty"`
}

// HeaderMatch is one header condition: Name plus exactly one of Present,
// Exact, Prefix, Suffix, Contains and Regex. Invert negates the result and
// IgnoreCase (not with Present or Regex) compares ASCII letters without case.
//
// The semantics are Envoy's, which is what Consul's L7 intentions run on:
//   - a header with several values is matched as its values joined by ",";
//   - a missing header matches no value condition, inverted or not; only an
//     inverted Present matches it ("header is absent");
//   - names are case-insensitive; ":method" and ":path" read
//     HTTPRequest.Method and HTTPRequest.Path (the path without the query,
//     unlike Envoy's ":path").
type HeaderMatch struct {
	Name       string
	Present    bool   `json:",omitempty"`
	Exact      string `json:",omitempty"`
	Prefix     string `json:",omitempty"`
	Suffix     string `json:",omitempty"`
	Contains   string `json:",omitempty"`
	Regex      string `json:",omitempty"`
	Invert     bool   `json:",omitempty"`
	IgnoreCase bool   `json:",omitempty"`
}
