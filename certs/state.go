package certs

import (
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// state is what Rotator and Files share: the current SVID, the error of the
// last attempt to renew it, and whether the source is closed, under one
// lock that also guards each source's own fields.
type state struct {
	mu      sync.RWMutex
	svid    *x509svid.SVID
	lastErr error // of the last attempt, nil after a good one
	closed  bool
}

// currentSVID returns the SVID, ErrClosed once closed, or an error prefixed
// with prefix when its leaf has expired or is not valid yet.
func (s *state) currentSVID(prefix string) (*x509svid.SVID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := certsx.SVIDTimeError(s.svid, s.lastErr, time.Now()); err != nil {
		return nil, fmt.Errorf("%s%w", prefix, err)
	}
	return s.svid, nil
}

// currentBundle returns the bundle lookup finds for td under the read lock,
// ErrClosed once closed, or an error prefixed with prefix when there is none.
func (s *state) currentBundle(td spiffeid.TrustDomain, prefix string, lookup func() *x509bundle.Bundle) (*x509bundle.Bundle, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	b := lookup()
	if b == nil {
		return nil, fmt.Errorf("%sno X.509 bundle for trust domain %q", prefix, td)
	}
	return b, nil
}
