package certs

import (
	"fmt"
	"sync"
	"time"

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
