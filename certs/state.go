package certs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/certsx"
	"github.com/ztnlabs/ztn/internal/notify"
)

// state is what Rotator and Files share: their metrics, watchers and
// background goroutines, and the current SVID, the error of the last
// attempt to renew it and whether the source is closed, under one lock
// (mu) that also guards each source's own fields.
type state struct {
	made    bool // by the constructor: the zero value's methods fail
	metrics *certsx.Metrics
	changed notify.Broadcast
	cancel  context.CancelFunc // stops the background goroutines in wg
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu      sync.RWMutex
	svid    *x509svid.SVID
	lastErr error // of the last attempt, nil after a good one
	closed  bool
}

// sourceKind names a kind of source in its errors.
type sourceKind struct{ name, constructor, prefix string }

var (
	rotatorKind = &sourceKind{"Rotator", "NewRotator (or DevCA.Source, a backend's New)", "certs: "}
	filesKind   = &sourceKind{"Files", "NewFiles", "certs: files: "}
)

// notNew is the error of a k whose constructor did not make it.
func (k *sourceKind) notNew() error { return errNotNew(k.name, k.constructor) }

// rlockOpen read-locks s, the state of a source of kind k, unless the
// source was not made by its constructor or is closed.
func (s *state) rlockOpen(k *sourceKind) error {
	if !s.made {
		return k.notNew()
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// currentSVID returns the SVID of a source of kind k, ErrClosed once
// closed, or an error when its leaf has expired or is not valid yet.
func (s *state) currentSVID(k *sourceKind) (*x509svid.SVID, error) {
	if err := s.rlockOpen(k); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if err := certsx.SVIDTimeError(s.svid, s.lastErr, time.Now()); err != nil {
		return nil, fmt.Errorf("%s%w", k.prefix, err)
	}
	return s.svid, nil
}

// currentBundle returns the bundle lookup finds for td under the read lock
// in a source of kind k, ErrClosed once closed, or an error when there is
// none.
func (s *state) currentBundle(td spiffeid.TrustDomain, k *sourceKind, lookup func() *x509bundle.Bundle) (*x509bundle.Bundle, error) {
	if err := s.rlockOpen(k); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if b := lookup(); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%sno X.509 bundle for trust domain %q", k.prefix, td)
}

// close closes a source of kind k: the getters return ErrClosed from then
// on, the background goroutines are stopped and waited for, the metrics
// unregistered and the watchers woken. It is idempotent.
func (s *state) close(k *sourceKind) error {
	if !s.made {
		return k.notNew()
	}
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.metrics.Close()
		s.changed.Notify()
	})
	return s.closeErr
}
