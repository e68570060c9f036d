package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// Rotator is a Source that keeps an SVID from an Issuer fresh.
//
// It renews the SVID at a uniformly random moment between 60% and 90% of the
// leaf's lifetime (measured from NotBefore), and in any case at least twice
// the slowest recent issuance before expiry, so a slow issuer still delivers
// in time. It retries failures with jittered exponential backoff, shortened
// while the leaf is valid so that a retry happens before it expires. It never
// hands out an expired leaf: GetX509SVID fails from then on, until an
// issuance succeeds again.
//
// Its trust bundle for each trust domain is the union of the roots the issuer
// reports (with each issuance and, for a BundleWatcher, between issuances). A
// root that is no longer reported is kept until every leaf the Rotator has
// seen issued under it has expired; then it is dropped.
//
// Changed (Watcher) is closed on every SVID rotation, bundle change and on
// Close. A Rotator is safe for concurrent use.
type Rotator struct {
	issuer Issuer
	cfg    config
	wake   chan struct{} // capacity 1: the schedule moved earlier

	state   // mu also guards the fields below; lastErr is of the last issuance
	keepers map[spiffeid.TrustDomain]*rootKeeper
	bundles map[spiffeid.TrustDomain]*x509bundle.Bundle // built from keepers, never mutated
	renewAt time.Time                                   // next scheduled issuance
	forceAt time.Time                                   // issuance asked for by RenewSoon, or zero

	took issueTimes // owned by the issuing goroutine (NewRotator, then run)
}

var (
	_ Source  = (*Rotator)(nil)
	_ Watcher = (*Rotator)(nil)
)

// NewRotator obtains a first SVID from issuer, synchronously, and starts
// renewing it in the background until Close. ctx bounds the first issuance
// only; later issuances run under a context that keeps ctx's values and that
// Close cancels. If the first issuance fails, NewRotator returns the
// issuer's error as it is (see [Issuer]), or an error of its own when what
// the issuer returned is not a valid SVID.
func NewRotator(ctx context.Context, issuer Issuer, opts ...Option) (*Rotator, error) {
	cfg := newConfig(opts)
	r := &Rotator{
		issuer:  issuer,
		cfg:     cfg,
		wake:    make(chan struct{}, 1),
		keepers: make(map[spiffeid.TrustDomain]*rootKeeper),
		bundles: make(map[spiffeid.TrustDomain]*x509bundle.Bundle),
	}
	m, err := certsx.NewMetrics(cfg.MeterProvider, r.observe)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	r.metrics = m
	id, err := r.issue(ctx)
	m.Rotation(err)
	if err != nil {
		_ = m.Close()
		return nil, err // the issuer's own error names it
	}
	r.install(time.Now(), id)

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.made = cancel, true
	r.wg.Go(func() { r.run(bg) })
	if w, ok := issuer.(BundleWatcher); ok {
		r.wg.Go(func() { r.watchBundles(bg, w) })
	}
	return r, nil
}

// GetX509SVID returns the current SVID, or an error if its leaf has expired
// (or is not valid yet) or the Rotator is closed. It implements
// x509svid.Source.
func (r *Rotator) GetX509SVID() (*x509svid.SVID, error) { return r.currentSVID(rotatorKind) }

// GetX509BundleForTrustDomain returns the current trust bundle of td. It
// implements x509bundle.Source. The returned bundle must not be modified.
func (r *Rotator) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return r.currentBundle(td, rotatorKind, func() *x509bundle.Bundle { return r.bundles[td] })
}

// Changed returns a channel closed at the next SVID rotation, bundle change
// or Close. It implements Watcher.
func (r *Rotator) Changed() <-chan struct{} {
	return r.changed.Changed()
}

// RenewSoon asks for a new SVID at a uniformly random moment within maxDelay
// (0: now), e.g. after the CA changed; the normal schedule resumes after it.
// It does not wait; watch Changed to see the result.
func (r *Rotator) RenewSoon(maxDelay time.Duration) {
	if !r.made {
		return // not made by NewRotator: nothing renews
	}
	at := time.Now().Add(certsx.Jitter(maxDelay))
	r.mu.Lock()
	if r.forceAt.IsZero() || at.Before(r.forceAt) {
		r.forceAt = at
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close stops renewing, waits for the background goroutines to end and wakes
// the watchers. Afterwards the getters return ErrClosed. Close is idempotent.
func (r *Rotator) Close() error { return r.close(rotatorKind) }

// run is the renewal loop.
func (r *Rotator) run(ctx context.Context) {
	bo := certsx.Backoff{Min: r.cfg.MinBackoff, Max: r.cfg.MaxBackoff}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		r.mu.RLock()
		next := r.nextWakeLocked()
		r.mu.RUnlock()
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			continue
		case <-timer.C:
		}

		now := time.Now()
		r.mu.Lock()
		due := !now.Before(r.renewAt) || (!r.forceAt.IsZero() && !now.Before(r.forceAt))
		var changed []spiffeid.TrustDomain
		if due {
			r.forceAt = time.Time{}
		} else {
			changed = r.pruneLocked(now)
		}
		r.mu.Unlock()
		if !due {
			if len(changed) > 0 {
				r.logBundles(changed)
				r.changed.Notify()
			}
			continue
		}
		r.renew(ctx, &bo)
	}
}

// nextWakeLocked returns when run has something to do: renew, or drop a root.
func (r *Rotator) nextWakeLocked() time.Time {
	next := r.renewAt
	if !r.forceAt.IsZero() && r.forceAt.Before(next) {
		next = r.forceAt
	}
	for _, k := range r.keepers {
		if d := k.nextDrop(); !d.IsZero() && d.Before(next) {
			next = d
		}
	}
	return next
}

// renew makes one issuance attempt and schedules the next one.
func (r *Rotator) renew(ctx context.Context, bo *certsx.Backoff) {
	id, err := r.issue(ctx)
	if ctx.Err() != nil {
		return // closing
	}
	r.metrics.Rotation(err)
	now := time.Now()
	if err == nil {
		bo.Reset()
		r.install(now, id)
		return
	}
	r.mu.Lock()
	r.lastErr = err
	spiffeID, notAfter := r.svid.ID, r.svid.Certificates[0].NotAfter
	wait := bo.Next(notAfter.Sub(now))
	r.renewAt = now.Add(wait)
	r.mu.Unlock()
	r.cfg.Logger.Warn("certs: SVID renewal failed",
		"spiffe_id", spiffeID.String(), "error", err,
		"expires_in", notAfter.Sub(now).Round(time.Millisecond), "expired", !now.Before(notAfter),
		"retry_in", wait.Round(time.Millisecond))
}

// issue calls the issuer and checks what it returned: the SVID must verify,
// now, against the bundle the issuer reports for its trust domain.
func (r *Rotator) issue(ctx context.Context) (*Identity, error) {
	start := time.Now()
	id, err := r.issuer.Issue(ctx)
	if err != nil {
		return nil, err
	}
	r.took.add(time.Since(start))
	if id == nil || id.SVID == nil || len(id.SVID.Certificates) == 0 || id.SVID.PrivateKey == nil {
		return nil, errors.New("certs: issuer returned no SVID")
	}
	if _, _, err := x509svid.Verify(id.SVID.Certificates, x509bundle.NewSet(id.Bundles...)); err != nil {
		return nil, fmt.Errorf("certs: issuer returned an SVID for %s that does not verify against its bundle: %w", id.SVID.ID, err)
	}
	return id, nil
}

// install makes id current and schedules its renewal.
func (r *Rotator) install(now time.Time, id *Identity) {
	leaf := id.SVID.Certificates[0]
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	// Never renew sooner than this after a success, even when the issuer
	// returns a leaf already past 90% of its life.
	minPause := min(r.cfg.MinBackoff, life/10)
	renewAt := renewalTime(now, leaf.NotBefore, leaf.NotAfter, r.took.margin())
	if renewAt.Before(now.Add(minPause)) {
		renewAt = now.Add(minPause)
	}

	r.mu.Lock()
	r.svid = id.SVID
	r.lastErr = nil
	r.renewAt = renewAt
	changed, _ := r.mergeLocked(now, id.Bundles, id.SVID.Certificates)
	r.mu.Unlock()

	r.cfg.Logger.Info("certs: SVID issued",
		"spiffe_id", id.SVID.ID.String(), "serial", leaf.SerialNumber.Text(16),
		"not_after", leaf.NotAfter, "next_renewal", renewAt)
	r.logBundles(changed)
	r.changed.Notify()
}

// watchBundles runs w.WatchBundles until ctx is done.
func (r *Rotator) watchBundles(ctx context.Context, w BundleWatcher) {
	bo := certsx.Backoff{Min: r.cfg.MinBackoff, Max: r.cfg.MaxBackoff}
	for {
		start := time.Now()
		err := w.WatchBundles(ctx, r.updateBundles)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > r.cfg.MaxBackoff {
			bo.Reset()
		}
		wait := bo.Next(0)
		r.cfg.Logger.Warn("certs: watching the issuer's trust bundles failed", "error", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// updateBundles takes a report from a BundleWatcher.
func (r *Rotator) updateBundles(bundles []*x509bundle.Bundle) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	changed, reissue := r.mergeLocked(time.Now(), bundles, nil)
	r.mu.Unlock()
	if len(changed) > 0 {
		r.logBundles(changed)
		r.changed.Notify()
	}
	if reissue {
		r.cfg.Logger.Info("certs: issuer's roots changed, re-issuing soon", "within", r.cfg.RootChangeWindow)
		r.RenewSoon(r.cfg.RootChangeWindow)
	}
}

// mergeLocked records a report of the issuer's bundles (and, after an
// issuance, the new chain) and rebuilds the bundles that changed. It returns
// the trust domains whose bundle changed and whether the SVID should move to
// another root: the report for its trust domain has a new root, or none of
// its roots is one the current SVID chains to.
func (r *Rotator) mergeLocked(now time.Time, bundles []*x509bundle.Bundle, chain []*x509.Certificate) (changed []spiffeid.TrustDomain, reissue bool) {
	reported := make(map[spiffeid.TrustDomain][]*x509.Certificate)
	for _, b := range bundles {
		td := b.TrustDomain()
		reported[td] = append(reported[td], b.X509Authorities()...)
		if r.keepers[td] == nil {
			r.keepers[td] = new(rootKeeper)
		}
	}
	local := r.svid.ID.TrustDomain()
	for td, k := range r.keepers {
		c, added := k.observe(now, reported[td], chain)
		if td == local && added {
			reissue = true
		}
		if c {
			changed = append(changed, td)
			r.rebuildLocked(td)
		}
	}
	if !slices.ContainsFunc(reported[local], func(root *x509.Certificate) bool { return certsx.ChainsTo(r.svid.Certificates, root) }) {
		reissue = true
	}
	return changed, reissue
}

// pruneLocked drops the roots that are due and returns the trust domains
// whose bundle changed.
func (r *Rotator) pruneLocked(now time.Time) (changed []spiffeid.TrustDomain) {
	for td, k := range r.keepers {
		if k.prune(now) {
			changed = append(changed, td)
			r.rebuildLocked(td)
		}
	}
	return changed
}

func (r *Rotator) rebuildLocked(td spiffeid.TrustDomain) {
	k := r.keepers[td]
	if len(k.roots) == 0 {
		delete(r.keepers, td)
		delete(r.bundles, td)
		return
	}
	r.bundles[td] = x509bundle.FromX509Authorities(td, k.certs())
}

// logBundles logs the bundles of tds, which just changed.
func (r *Rotator) logBundles(tds []spiffeid.TrustDomain) {
	r.mu.RLock()
	roots := make([]int, len(tds))
	for i, td := range tds {
		if b := r.bundles[td]; b != nil {
			roots[i] = len(b.X509Authorities())
		}
	}
	r.mu.RUnlock()
	for i, td := range tds {
		r.cfg.Logger.Info("certs: trust bundle changed", "trust_domain", td.Name(), "roots", roots[i])
	}
}

// observe reports the current SVID and bundles, for the metrics.
func (r *Rotator) observe() (certsx.Observation, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed || r.svid == nil {
		return certsx.Observation{}, false
	}
	bundles := make([]*x509bundle.Bundle, 0, len(r.bundles))
	for _, b := range r.bundles {
		bundles = append(bundles, b)
	}
	return certsx.Observation{SVID: r.svid, Bundles: bundles}, true
}
