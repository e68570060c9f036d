package authz

// KindServiceIntentions is the Kind of every ConfigEntry.
const KindServiceIntentions = "service-intentions"

// ConfigEntry is Consul's service-intentions config entry: every intention
// whose destination is Name (which may be Wildcard), in the form
// `consul config write` takes. Each destination has at most one entry.
//
// Parts of Consul's entry that ztn does not implement are rejected rather
// than ignored, so that a policy never allows more than it says: JWT
// requirements and SamenessGroup sources.
type ConfigEntry struct {
	Kind      string // KindServiceIntentions; "" is accepted from Go code
	Name      string
	Namespace string `json:",omitempty"` // "" means "default"
	Partition string `json:",omitempty"` // "" means "default"
	Sources   []SourceIntention
	Meta      map[string]string `json:",omitempty"`
}

// SourceIntention is one source of a ConfigEntry: an L4 intention (Action)
// or an L7 one (Permissions, evaluated in order).
//
// A source's Partition defaults to the entry's; its Namespace defaults to
// the entry's unless that is Wildcard, in which case it is "default".
//
// A source with a Peer names services of that cluster peer or federated
// trust domain (ztnet names a federated trust domain's peer after it, e.g.
// "partner.example"), and matches only callers of that peer: a source
// without a Peer, even "*", never matches them. As in Consul, Peer cannot
// be a wildcard nor be set with Partition, and a peered source inherits
// nothing from the entry: its Namespace defaults to "default" and it
// matches the peer's default partition.
type SourceIntention struct {
	Name      string
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
	Peer      string `json:",omitempty"`
	// SamenessGroup is not supported: a source that sets it is rejected.
	SamenessGroup string       `json:",omitempty"`
	Action        Action       `json:",omitempty"`
	Permissions   []Permission `json:",omitempty"`
	// Precedence is read-only in Consul; it is ignored here and computed.
	Precedence  int    `json:",omitempty"`
	Type        string `json:",omitempty"` // "" or "consul"
	Description string `json:",omitempty"`
}
