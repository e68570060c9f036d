package authz

import "net/http"

// Service names a service the way intentions do.
type Service struct {
	Partition string // "" means "default"
	Namespace string // "" means "default"
	Name      string
}

// Request is what an Authorizer judges: a connection (HTTP == nil) or one
// HTTP/gRPC request (HTTP != nil) from Source to Destination.
type Request struct {
	Source      Service
	Destination Service
	// HTTP is set for a request-level (L7) decision.
	HTTP *HTTPRequest
	// AdmitL7 is set for a connection-level decision on a listener that will
	// authorize every request itself (grpcztn, httpztn): a matching L7
	// intention then admits the connection instead of denying it.
	AdmitL7 bool
}

// HTTPRequest is the part of a request L7 permissions look at.
type HTTPRequest struct {
	Path   string // without the query string; for gRPC "/pkg.Service/Method"
	Method string
	Header http.Header
}

// Authorizer decides whether a request is allowed. Implementations evaluate
// in memory and never block on the network.
type Authorizer interface {
	Authorize(Request) Decision
}
