package workloadapi

// Config configures New. The zero value uses the
// Workload API at SPIFFE_ENDPOINT_SOCKET and its default SVID.
type Config struct {
	// Address is the SPIFFE Workload API's address, "unix:///path/to/socket"
	// or "tcp://<ip>:<port>" (default: the SPIFFE_ENDPOINT_SOCKET
	// environment variable).
	Address string
	// Service, if set, picks among the SVIDs the Workload API offers the one
	// whose SPIFFE ID is a service ID naming this service
	// (spiffe://<td>/ns/<ns>/dc/<dc>/svc/<Service>). Default: the Workload
	// API's default SVID (the first).
	Service string
}
