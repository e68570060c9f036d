package authz

import (
	"net/http"

	"github.com/ztnlabs/ztn"
)

// Request is what an Authorizer judges: a connection (HTTP == nil) or one
// HTTP/gRPC request (HTTP != nil) from Source to Destination.
//
// Intentions name services by partition, namespace and name (see
// Selector); the trust domain and datacenter of Source and Destination are
// not compared. What tells a federated caller from a local one is
// SourcePeer, which the caller of Authorize sets from Source's trust domain
// (ztnet does, see ztnet.WithFederatedPeer).
type Request struct {
	// Source is the caller's full identity.
	Source ztn.ServiceID
	// SourcePeer is the cluster peer or federated trust domain Source
	// belongs to, as an intention's source names it
	// (SourceIntention.Peer); "" means the local one. A service of a peer is
	// never the local service of the same name: it matches only intentions
	// whose source names its peer, and wildcard sources match it only when
	// they name its peer too.
	SourcePeer string
	// Destination is the service being called; it is always local.
	Destination ztn.ServiceID
	// HTTP is set for a request-level (L7) decision.
	HTTP *HTTPRequest
	// AdmitL7 is set for a connection-level decision on a listener that will
	// authorize every request itself (grpcztn, httpztn): a matching L7
	// intention then admits the connection instead of denying it.
	AdmitL7 bool
}

// source and destination return the request's parties as intentions name
// them.
func (r *Request) source() Selector {
	return Selector{Partition: r.Source.Partition, Namespace: r.Source.Namespace, Name: r.Source.Name, Peer: r.SourcePeer}
}

func (r *Request) destination() Selector {
	return Selector{Partition: r.Destination.Partition, Namespace: r.Destination.Namespace, Name: r.Destination.Name}
}

// HTTPRequest is the part of a request L7 permissions look at.
type HTTPRequest struct {
	Path   string // without the query string; for gRPC "/pkg.Service/Method"
	Method string
	// Header holds the headers, found under their canonical (net/http) or
	// lower-case (HTTP/2, gRPC metadata) names.
	Header http.Header
	// HeaderSource, when set, gives the headers instead of Header. Headers
	// are only read when a permission has a header condition.
	HeaderSource HeaderSource
}

// HeaderSource gives a request's headers without copying them into an
// http.Header: grpcztn reads the RPC's incoming metadata through it.
type HeaderSource interface {
	// Values returns the values of the header with the given lower-case
	// name, or nil when the request has none. The result is not modified.
	Values(lowerName string) []string
}

// Authorizer decides whether a request is allowed. Implementations evaluate
// in memory and never block on the network.
type Authorizer interface {
	Authorize(Request) Decision
}
