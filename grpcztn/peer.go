package grpcztn

import (
	"context"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/peer"
)

// PeerID returns the SPIFFE ID of the peer of the RPC whose context this is
// (the caller on a server, the server on a client), and whether the RPC came
// over a ztn connection.
func PeerID(ctx context.Context) (spiffeid.ID, bool) {
	ai, ok := peerAuthInfo(ctx)
	return ai.ID, ok
}

// peerAuthInfo returns the ztn AuthInfo of the RPC's peer, if it has one.
func peerAuthInfo(ctx context.Context) (AuthInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return AuthInfo{}, false
	}
	ai, ok := p.AuthInfo.(AuthInfo)
	return ai, ok
}
