package grpcztn

import (
	"context"

	"google.golang.org/grpc/peer"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// Peer returns the identity of the peer of the RPC whose context this is
// (the caller on a server, the server on a client), and whether the RPC came
// over a ztn connection.
func Peer(ctx context.Context) (ztn.ServiceID, bool) {
	ai, ok := peerAuthInfo(ctx)
	return ai.Peer, ok
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

// peerOf returns the identity of a ztn connection's peer.
func peerOf(c *ztnet.Conn) ztn.ServiceID {
	p, _ := ztnet.Peer(c)
	return p
}
