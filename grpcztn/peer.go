package grpcztn

import (
	"context"

	"google.golang.org/grpc/peer"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// Peer returns the identity of the peer of the RPC whose context this is
// (the caller on a server, the server on a client), and whether the RPC came
// over a ztn connection (to a server made by [NewServer] or with
// [ServerOptions]).
func Peer(ctx context.Context) (ztn.ServiceID, bool) {
	ai, ok := peerAuthInfo(ctx)
	return ai.peer, ok
}

// peerAuthInfo returns the ztn authInfo of the RPC's peer, if it has one.
func peerAuthInfo(ctx context.Context) (authInfo, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return authInfo{}, false
	}
	ai, ok := p.AuthInfo.(authInfo)
	return ai, ok
}

// peerOf returns the identity of a ztn connection's peer.
func peerOf(c *ztnet.Conn) ztn.ServiceID {
	p, _ := ztnet.Peer(c)
	return p
}
