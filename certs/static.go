package certs

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// Static is a [Source] of certificates the program already holds: one SVID
// and a fixed set of trust bundles, never renewed (to have them reloaded
// from disk, use [Files]). Create it with [NewStatic].
//
// GetX509SVID fails once the SVID has expired (fail closed). A Static is
// safe for concurrent use.
type Static struct {
	svid    *x509svid.SVID
	bundles *x509bundle.Set
	closed  atomic.Bool
}

var _ Source = (*Static)(nil)

// NewStatic returns a Static that serves svid and verifies peers against
// bundles, one per trust domain. svid must be a valid X509-SVID usable for
// mutual TLS (exactly one URI SAN, not a CA, client and server
// authentication) with its private key, and must verify now against the
// bundle of its own trust domain, which is required; bundles of other trust
// domains are those of federated peers. svid and bundles must not be
// modified afterwards.
func NewStatic(svid *x509svid.SVID, bundles ...*x509bundle.Bundle) (*Static, error) {
	if svid == nil {
		return nil, errors.New("certs: static: no SVID")
	}
	id, err := certsx.CheckSVIDChain(svid.Certificates, svid.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("certs: static: not a valid X509-SVID: %w", err)
	}
	if id != svid.ID {
		return nil, fmt.Errorf("certs: static: the SVID's ID is %s but its leaf certificate's is %s", svid.ID, id)
	}
	set := x509bundle.NewSet()
	for _, b := range bundles {
		switch {
		case b == nil:
			return nil, errors.New("certs: static: nil bundle")
		case set.Has(b.TrustDomain()):
			return nil, fmt.Errorf("certs: static: two bundles for trust domain %s", b.TrustDomain())
		}
		set.Add(b)
	}
	if !set.Has(id.TrustDomain()) {
		return nil, fmt.Errorf("certs: static: no bundle for the SVID's trust domain %s", id.TrustDomain())
	}
	if _, _, err := x509svid.Verify(svid.Certificates, set); err != nil {
		return nil, fmt.Errorf("certs: static: the SVID of %s does not verify against its trust domain's bundle: %w", id, err)
	}
	return &Static{svid: svid, bundles: set}, nil
}

// GetX509SVID returns the SVID, or an error once it has expired or the
// Static is closed. It implements x509svid.Source.
func (s *Static) GetX509SVID() (*x509svid.SVID, error) {
	if s.svid == nil {
		return nil, errNotNew("Static", "NewStatic")
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if err := certsx.SVIDTimeError(s.svid, nil, time.Now()); err != nil {
		return nil, fmt.Errorf("certs: static: %w", err)
	}
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle of td given to NewStatic.
// It implements x509bundle.Source. The returned bundle must not be
// modified.
func (s *Static) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if s.bundles == nil {
		return nil, errNotNew("Static", "NewStatic")
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	b, ok := s.bundles.Get(td)
	if !ok {
		return nil, fmt.Errorf("certs: static: no X.509 bundle for trust domain %q", td)
	}
	return b, nil
}

// Close makes the getters return [ErrClosed] from now on. It is
// idempotent.
func (s *Static) Close() error {
	if s.svid == nil {
		return errNotNew("Static", "NewStatic")
	}
	s.closed.Store(true)
	return nil
}
