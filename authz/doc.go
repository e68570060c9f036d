// Package authz decides which service may talk to which, with Consul
// intentions evaluated in memory.
//
// A [Policy] holds intentions, written as Consul's service-intentions config
// entries, and is the [Authorizer] ztnet, grpcztn and httpztn consult for
// every connection and request:
//
//	policy := authz.NewPolicy() // default deny
//	err := policy.Set(authz.ConfigEntry{
//		Name: "api",
//		Sources: []authz.SourceIntention{
//			{Name: "web", Action: authz.ActionAllow},
//			{Name: "*", Action: authz.ActionDeny},
//		},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	d := policy.Authorize(authz.Request{Source: web, Destination: api})
//	fmt.Println(d) // allow: intention web → api allows (precedence 9)
//
// With ztnet the policy is given to a Service (ztnet.WithAuthorizer), or to
// the dev mesh; intentions that live in Consul come from package
// github.com/ztnlabs/ztn/consul, whose Intentions is an Authorizer too.
//
// # Model
//
// An intention allows or denies traffic from a source service to a
// destination service. Intentions are written as Consul's service-intentions
// config entries ([ConfigEntry]): one entry per destination, listing its
// sources ([SourceIntention]). A source is either an L4 intention, with an
// [Action] ([ActionAllow] or [ActionDeny]) that applies to whole connections
// and every request on them, or an L7 intention, with ordered
// [Permission]s that match HTTP and gRPC requests by path, method and
// headers ([HTTPMatch]).
//
// Names and namespaces may be the [Wildcard] "*" (the whole value only, and
// "*/name" is invalid); partitions and peers may not. Validation follows
// Consul's (agent/structs/config_entry_intentions.go); what ztn cannot
// enforce is rejected rather than ignored: JWT requirements and
// SamenessGroup sources.
//
// # Peers and federated trust domains
//
// A caller from another cluster or trust domain has a [Request].SourcePeer
// (ztnet sets it for a federated trust domain, named after the trust domain
// unless ztnet.WithFederatedPeer names it otherwise). It is never the local
// service of the same name: it matches only sources that name its peer, as
// in Consul's peering, so neither "web" nor "*" written for local callers
// admits the partner's web; `{"Name": "web", "Peer": "partner.example"}` or
// `{"Name": "*", "Peer": "partner.example"}` does. A peered source
// inherits nothing from the entry: it matches the peer's default partition
// and, unless it says otherwise, namespace. Reasons name the peer
// ("intention partner.example:web → api allows (precedence 9)"; `no
// intention for peer "partner.example" matches (default deny)`). The
// default (deny, or [WithDefaultAllow]'s allow) applies to peers as to local
// callers.
//
// # Evaluation
//
// [Policy.Authorize] follows Consul's documented rule: of the intentions
// that apply to the destination (its own, its namespace's "ns/*" and "*/*"),
// sorted by precedence, the first whose source matches the caller decides.
// Precedence is 9 for an exact destination, 6 for "ns/*" and 3 for "*/*",
// minus one for each wildcard part of the source; so with "* → api deny" and
// "web → * allow", web → api is denied (precedence 8 beats 6). Evaluation
// takes a handful of map lookups whatever the number of intentions, and a
// connection-level decision allocates nothing.
//
// When no intention matches, the default applies: deny, or allow with
// [WithDefaultAllow] (Consul's default with ACLs disabled). Until intentions
// have been set once, everything is denied ([KindNotSynced]).
//
// A connection-level request ([Request].HTTP == nil) whose deciding
// intention is an L7 one is denied, as Consul's /agent/connect/authorize
// does, unless the request sets AdmitL7: listeners that authorize every
// request (grpcztn, httpztn) admit the connection and judge each request.
// For a request (HTTP != nil), an L4 intention decides by its Action; an L7
// intention's permissions are tried in order and the first that matches
// decides; if none does, the default applies. Lower-precedence intentions
// are not consulted, as in Consul.
//
// Every [Decision] says why ([Decision.Reason]), names its category for
// metrics ([Decision.Kind]) and, when one decided, returns the intention
// ([Decision.Intention]).
//
// # Matching requests
//
// Paths are matched as [HTTPRequest].Path gives them: without the query
// string, and not normalized, so that authorization judges exactly the path
// the handler routes on. (Envoy normalizes the path, per Consul's
// RequestNormalization defaults, before both its authorization and the
// upstream see it; a server that cleans paths must authorize the cleaned
// path. net/http's ServeMux redirects unclean paths instead of serving
// them.) A path that does not start with "/" matches no path condition.
// gRPC paths are "/pkg.Service/Method". [HTTPMatch].PathPrefix is a plain
// string prefix, as in Consul: "/api" matches "/apis" too.
//
// Methods compare without case with the permission's, and GET covers HEAD
// (see [HTTPMatch]; Envoy compares exactly). Header conditions
// ([HeaderMatch]) follow Envoy: a header with several values is matched as
// the values joined by ","; a missing header matches no value condition,
// even inverted, and only an inverted Present matches it; IgnoreCase folds
// ASCII letters only; regexes (RE2, Go's regexp) must match the whole
// value. Header names are case-insensitive: [HTTPRequest].Header is read
// with canonical keys (as net/http stores them) and then with lower-case
// keys (as gRPC metadata stores them), or through a [HeaderSource] by
// lower-case name when one is set; ":method" and ":path" read the request's
// Method and Path.
//
// # Where Consul's own evaluators differ
//
// Envoy's RBAC filter subtracts a higher-precedence source only from less
// specific sources, so under default deny "* → api deny" + "web → * allow"
// lets web reach api through Envoy, while Consul's authorize and check
// endpoints, and this package, deny it (spec §1.5). ztn implements the
// documented first-match rule.
//
// # Sources of intentions
//
// [Policy] holds the intentions and is the Authorizer. [Policy.Set] replaces
// them from [ConfigEntry] values; [LoadFile], [Policy.LoadFile] and
// [Policy.Reload] read the JSON that `consul config write` takes
// ([ParseConfigEntries]). [Policy.Changed] signals each change, for
// re-checking live connections. Package github.com/ztnlabs/ztn/consul keeps
// a destination's intentions in sync from Consul itself.
package authz
