package ztnet

// Span attributes naming the two ends of a connection or request by their
// SPIFFE IDs (spiffe://<trust-domain>/ns/<ns>/dc/<dc>/svc/<name>). The spans
// of Dial ("ztnet.Dial", client) and of an accepted connection's handshake
// ("ztnet.Accept", server) carry both once the peer is known (a refused
// client's too); the adapters httpztn and grpcztn set them on their request
// and RPC spans.
const (
	// AttrSourceID is the SPIFFE ID of the end that opened the connection
	// or sent the request.
	AttrSourceID = "ztn.source.spiffe_id"
	// AttrDestinationID is the SPIFFE ID of the end that accepted the
	// connection or served the request.
	AttrDestinationID = "ztn.destination.spiffe_id"
)
