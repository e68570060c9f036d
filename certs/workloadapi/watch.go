package workloadapi

import (
	"context"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// watch checks each update of the X509Source until ctx is done, and wakes
// up when the current SVID expires to report it.
func (w *Source) watch(ctx context.Context, service string) {
	expired := time.NewTimer(0)
	defer expired.Stop()
	for {
		w.mu.RLock()
		na := w.svid.Certificates[0].NotAfter
		w.mu.RUnlock()
		expired.Reset(time.Until(na) + time.Millisecond)
		select {
		case <-ctx.Done():
			return
		case <-expired.C:
			w.mu.RLock()
			svid, lastErr := w.svid, w.lastErr
			w.mu.RUnlock()
			if leaf := svid.Certificates[0]; time.Now().After(leaf.NotAfter) {
				w.log.Error("workloadapi: the SVID has expired and no valid replacement has arrived; failing closed",
					"spiffe_id", svid.ID.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter, "last_error", lastErr)
				// Report once: wait for an update.
				select {
				case <-ctx.Done():
					return
				case <-w.src.Updated():
				}
				w.update(service)
			}
		case <-w.src.Updated():
			w.update(service)
		}
	}
}

// update takes an update from the X509Source.
func (w *Source) update(service string) {
	w.mu.RLock()
	cur, want := w.svid, w.id
	w.mu.RUnlock()
	svid, bundle, err := w.check(want, service)
	if err != nil {
		w.failed(err)
		// Federated bundles may have changed even so.
		w.changed.Notify()
		return
	}
	w.mu.Lock()
	prevBundle := w.bundle
	w.svid, w.bundle, w.lastErr = svid, bundle, nil
	w.mu.Unlock()
	if !bundle.Equal(prevBundle) {
		w.log.Info("workloadapi: trust bundle changed", "trust_domain", bundle.TrustDomain().Name(), "roots", len(bundle.X509Authorities()))
	}
	if svid.Certificates[0].Equal(cur.Certificates[0]) {
		w.log.Debug("workloadapi: update without a new SVID", "spiffe_id", svid.ID.String())
	} else {
		w.metrics.Rotation(nil)
		w.logSVID(svid, "workloadapi: SVID rotated")
	}
	w.changed.Notify()
}

// failed records and reports a failed update.
func (w *Source) failed(err error) {
	w.metrics.Rotation(err)
	w.mu.Lock()
	w.lastErr = err
	cur := w.svid
	w.mu.Unlock()
	if cur == nil {
		return // New reports it
	}
	leaf := cur.Certificates[0]
	w.log.Warn("workloadapi: update failed; keeping the last good SVID",
		"error", err, "spiffe_id", cur.ID.String(), "serial", leaf.SerialNumber.Text(16),
		"expires_in", time.Until(leaf.NotAfter).Round(time.Second), "expired", time.Now().After(leaf.NotAfter))
}

func (w *Source) logSVID(svid *x509svid.SVID, msg string) {
	leaf := svid.Certificates[0]
	w.log.Info(msg, "spiffe_id", svid.ID.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
}

// observe reports the SVID and its trust domain's bundle, for the metrics.
func (w *Source) observe() (certsx.Observation, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed || w.svid == nil {
		return certsx.Observation{}, false
	}
	return certsx.Observation{SVID: w.svid, Bundles: []*x509bundle.Bundle{w.bundle}}, true
}
