package ztnet

import (
	"context"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
)

// authorizeRequest judges one HTTP or gRPC request from peer to this service
// against the L7 intentions (path, method, headers), and counts the decision
// in the ztn.authz.decisions metric. It never blocks on the network. A peer
// of a federated trust domain is judged as a service of its peer (see
// WithFederatedPeer), never as the local service of its name. The adapters
// call it through internal/ztnhook.
func (s *Service) authorizeRequest(ctx context.Context, peer ztn.ServiceID, req *authz.HTTPRequest) authz.Decision {
	if s.made() != nil || s.cfg.authorizer == nil {
		return authz.Decision{} // denies
	}
	d := s.cfg.authorizer.Authorize(authz.Request{
		Source:      peer,
		SourcePeer:  s.peerName(peer),
		Destination: s.id,
		HTTP:        req,
	})
	s.m.decision(ctx, d)
	return d
}
