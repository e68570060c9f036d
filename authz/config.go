package authz

// KindServiceIntentions is the Kind of every ConfigEntry.
const KindServiceIntentions = "service-intentions"

// ConfigEntry is Consul's service-intentions config entry: every intention
// whose destination is Name (which may be Wildcard), in the form
// `consul config write` takes. Each destination has at most one entry.
//
// Parts of Consul's entry that ztn does not implement are rejected rather
// than ignored, so that a policy never allows more than it says: JWT
// requirements, and Peer and SamenessGroup sources (ztn does not support
// cluster peering).
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
type SourceIntention struct {
	Name      string
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
	Peer      string `json:",omitempty"` // not supported: rejected
	// SamenessGroup is not supported: a source that sets it is rejected.
	SamenessGroup string       `json:",omitempty"`
	Action        Action       `json:",omitempty"`
	Permissions   []Permission `json:",omitempty"`
	// Precedence is read-only in Consul; it is ignored here and computed.
	Precedence  int    `json:",omitempty"`
	Type        string `json:",omitempty"` // "" or "consul"
	Description string `json:",omitempty"`
}
