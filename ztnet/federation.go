package ztnet

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
)

// Federation: clients of other trust domains are authorized as services of
// a peer (authz.Request.SourcePeer), never as the local services of the same name,
// and Dial reaches a server of a federated trust domain only when told to
// (WithServerTrustDomain).

// federatedPeers returns the peer name of each federated trust domain, as
// WithFederatedPeer gave them. Names must be usable in intentions and tell
// the trust domains apart.
func federatedPeers(local spiffeid.TrustDomain, tds []spiffeid.TrustDomain, names map[spiffeid.TrustDomain]string) (map[spiffeid.TrustDomain]string, error) {
	peers := make(map[spiffeid.TrustDomain]string, len(tds))
	byName := make(map[string]spiffeid.TrustDomain, len(tds))
	for _, td := range tds {
		name := names[td]
		switch {
		case td.IsZero():
			return nil, fmt.Errorf("WithFederatedPeer(%q): the trust domain is empty", name)
		case td == local:
			return nil, fmt.Errorf("WithFederatedPeer(%q): %q is the local trust domain", name, td.Name())
		case name == "":
			return nil, fmt.Errorf("peer name of trust domain %q is empty", td.Name())
		case strings.Contains(name, authz.Wildcard):
			return nil, fmt.Errorf("peer name %q of trust domain %q contains the wildcard %q", name, td.Name(), authz.Wildcard)
		}
		if other, dup := byName[name]; dup && other != td {
			pair := []string{other.Name(), td.Name()}
			slices.Sort(pair)
			return nil, fmt.Errorf("trust domains %q and %q have the same peer name %q", pair[0], pair[1], name)
		}
		byName[name] = td
		peers[td] = name
	}
	return peers, nil
}

// peerName is how authorization names the peer a caller belongs to: ""
// for the local trust domain, else the peer its federated trust domain maps
// to.
func (s *Service) peerName(peer ztn.ServiceID) string {
	if peer.TrustDomain == s.id.TrustDomain {
		return ""
	}
	if name, ok := s.peers[peer.TrustDomain]; ok {
		return name
	}
	// Not federated (the verifier refuses those): still never local.
	return peer.TrustDomain.Name()
}

// checkServerTrustDomain reports whether Dial may expect a server in td
// (WithServerTrustDomain): the zero value and the local trust domain
// always, another only when federated.
func (s *Service) checkServerTrustDomain(td spiffeid.TrustDomain) error {
	if td.IsZero() || td == s.id.TrustDomain {
		return nil
	}
	if _, ok := s.peers[td]; ok {
		return nil
	}
	return fmt.Errorf("server trust domain %q is neither the local one (%q) nor federated (WithFederatedPeer)", td.Name(), s.id.TrustDomain.Name())
}
