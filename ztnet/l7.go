package ztnet

import (
	"context"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
)

// WithL7Enforced marks a listener whose server authorizes every request
// itself (grpcztn and httpztn servers set it). A source whose matching
// intention has only L7 permissions is then admitted at connection level,
// with AdmitL7 set in the authz.Request, and its requests are judged one by
// one with AuthorizeRequest. Without it, a listener treats such a source as
// denied, as Consul's connection-level checks do.
func WithL7Enforced() ListenOption { return l7Option{} }

type l7Option struct{}

func (l7Option) applyListen(c *listenConfig) { c.l7 = true }

// AuthorizeRequest judges one HTTP or gRPC request from peer to this service
// against the L7 intentions (path, method, headers), and counts the decision
// in the ztn.authz.decisions metric. It never blocks on the network. A peer
// of a federated trust domain is judged as a service of its peer (see
// WithFederatedTrustDomains), never as the local service of its name.
func (s *Service) AuthorizeRequest(ctx context.Context, peer ztn.ServiceID, req *authz.HTTPRequest) authz.Decision {
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
