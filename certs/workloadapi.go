package certs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/internal/notify"
)

// WorkloadAPIConfig configures NewWorkloadAPI. The zero value uses the
// Workload API at SPIFFE_ENDPOINT_SOCKET and its default SVID.
type WorkloadAPIConfig struct {
	// Address is the SPIFFE Workload API's address, "unix:///path/to/socket"
	// or "tcp://<ip>:<port>" (default: the SPIFFE_ENDPOINT_SOCKET
	// environment variable).
	Address string
	// Service, if set, picks among the SVIDs the Workload API offers the one
	// whose SPIFFE ID is a service ID naming this service
	// (spiffe://<td>/ns/<ns>/dc/<dc>/svc/<Service>). Default: the Workload
	// API's default SVID (the first).
	Service string
}

// WorkloadAPI is a Source backed by the SPIFFE Workload API (a SPIRE agent,
// for example) through go-spiffe's workloadapi.X509Source, which keeps a
// stream open to the agent and receives each new SVID and bundle as the
// agent rotates them. Create it with NewWorkloadAPI.
//
// The SPIRE agent renews the SVID; WorkloadAPI checks each one it receives
// before using it: it must be a valid X509-SVID whose chain verifies, now,
// against the bundle of its trust domain that came with it, and have the
// same SPIFFE ID as the first one (the identity of a source never changes).
// An update that fails is logged at warn level and counted as a failed
// rotation in ztn.certs.rotations, and the last good SVID and bundle stay in
// use; so are errors the Workload API client reports (a lost connection, an
// agent that does not know the workload, an unparseable response).
// GetX509SVID never hands out an expired leaf (fail closed). Peers of the
// SVID's trust domain are verified against the bundle of the last good
// update; those of federated trust domains against the bundles the Workload
// API sent last.
//
// Changed (Watcher) is closed on each update from the Workload API (SVID or
// bundles) and on Close. A WorkloadAPI is safe for concurrent use.
type WorkloadAPI struct {
	src     *workloadapi.X509Source
	addr    string
	log     *slog.Logger
	metrics *metrics
	changed notify.Broadcast
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	offered atomic.Pointer[[]spiffeid.ID] // the IDs of the last update, for errors

	closeOnce sync.Once
	closeErr  error

	mu      sync.RWMutex
	id      spiffeid.ID // fixed by the first SVID
	svid    *x509svid.SVID
	bundle  *x509bundle.Bundle // of id's trust domain; svid verifies against it
	lastErr error              // of the last update, nil after a good one
	closed  bool
}

var (
	_ Source  = (*WorkloadAPI)(nil)
	_ Watcher = (*WorkloadAPI)(nil)
)

// NewWorkloadAPI connects to the Workload API and waits for a first SVID
// that passes the checks of WorkloadAPI, until ctx is done: give ctx a
// deadline, since a Workload API that does not know the workload (no
// registration entry) answers nothing. opts take WithLogger and
// WithMeterProvider; the other Options are about issuance and do not apply.
func NewWorkloadAPI(ctx context.Context, cfg WorkloadAPIConfig, opts ...Option) (*WorkloadAPI, error) {
	rc := newConfig(opts)
	addr := cfg.Address
	if addr == "" {
		a, ok := workloadapi.GetDefaultAddress()
		if !ok || a == "" {
			return nil, fmt.Errorf("certs: workload API: no Address in WorkloadAPIConfig and %s is not set", workloadapi.SocketEnv)
		}
		addr = a
	}
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return nil, fmt.Errorf("certs: workload API: address %q: %w", addr, err)
	}
	if cfg.Service != "" {
		if err := ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("example.org"), "dc", cfg.Service).Validate(); err != nil {
			return nil, fmt.Errorf("certs: workload API: service %q: %w", cfg.Service, err)
		}
	}
	w := &WorkloadAPI{addr: addr, log: rc.logger.With("workload_api", addr)}
	m, err := newMetrics(rc.meterProvider, w.expiry)
	if err != nil {
		return nil, err
	}
	w.metrics = m

	wlog := &workloadAPILog{w: w}
	src, err := workloadapi.NewX509Source(ctx,
		workloadapi.WithClientOptions(workloadapi.WithAddr(addr), workloadapi.WithLogger(wlog)),
		workloadapi.WithDefaultX509SVIDPicker(w.picker(cfg.Service)))
	if err != nil {
		m.rotation(err)
		_ = m.close()
		if last := wlog.last(); last != "" {
			err = fmt.Errorf("%w (last error from the Workload API: %s)", err, last)
		}
		return nil, fmt.Errorf("certs: workload API at %s: no X.509-SVID: %w", addr, err)
	}
	w.src = src
	svid, bundle, err := w.check(spiffeid.ID{}, cfg.Service)
	m.rotation(err)
	if err != nil {
		_ = src.Close()
		_ = m.close()
		return nil, err
	}
	w.mu.Lock() // the picker and the client's log read them
	w.id, w.svid, w.bundle = svid.ID, svid, bundle
	w.mu.Unlock()
	w.logSVID(svid, "certs: workload API: SVID received")

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	w.wg.Go(func() { w.watch(bg, cfg.Service) })
	return w, nil
}

// picker returns the X509Source's SVID picker: the SVID with the ID of the
// first one once known, else the first of service (if set), else the
// first. It also records what was offered.
func (w *WorkloadAPI) picker(service string) func([]*x509svid.SVID) *x509svid.SVID {
	return func(svids []*x509svid.SVID) *x509svid.SVID {
		ids := make([]spiffeid.ID, len(svids))
		for i, s := range svids {
			ids[i] = s.ID
		}
		w.offered.Store(&ids)
		w.mu.RLock()
		pinned := w.id
		w.mu.RUnlock()
		for _, s := range svids {
			switch {
			case !pinned.IsZero():
				if s.ID == pinned {
					return s
				}
			case service != "":
				if sid, err := ztn.ServiceIDFromSPIFFEID(s.ID); err == nil && sid.Name == service {
					return s
				}
			default:
				return s
			}
		}
		return nil
	}
}

// check validates the X509Source's current SVID and returns it with the
// bundle of its trust domain; want, if not zero, is the SPIFFE ID it must
// have.
func (w *WorkloadAPI) check(want spiffeid.ID, service string) (*x509svid.SVID, *x509bundle.Bundle, error) {
	svid, err := w.src.GetX509SVID()
	if err != nil || svid == nil {
		var offered []spiffeid.ID
		if p := w.offered.Load(); p != nil {
			offered = *p
		}
		switch {
		case !want.IsZero():
			return nil, nil, fmt.Errorf("certs: workload API at %s: no SVID for %s any more (offered: %v)", w.addr, want, offered)
		case service != "":
			return nil, nil, fmt.Errorf("certs: workload API at %s: no SVID for service %q (offered: %v)", w.addr, service, offered)
		}
		return nil, nil, fmt.Errorf("certs: workload API at %s: no SVID: %v", w.addr, errOrString(err, "none offered"))
	}
	id, err := checkSVIDChain(svid.Certificates, svid.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: workload API at %s: SVID %s: not a valid X509-SVID: %w", w.addr, svid.ID, err)
	}
	if !want.IsZero() && id != want {
		return nil, nil, fmt.Errorf("certs: workload API at %s: SVID for %s, want %s (the identity of a source never changes)", w.addr, id, want)
	}
	bundle, err := w.src.GetX509BundleForTrustDomain(id.TrustDomain())
	if err != nil {
		return nil, nil, fmt.Errorf("certs: workload API at %s: no bundle for the trust domain of SVID %s: %w", w.addr, id, err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		leaf := svid.Certificates[0]
		if now := time.Now(); now.After(leaf.NotAfter) {
			return nil, nil, fmt.Errorf("certs: workload API at %s: SVID %s (serial %s) expired at %s",
				w.addr, id, leaf.SerialNumber.Text(16), leaf.NotAfter.Format(time.RFC3339))
		}
		return nil, nil, fmt.Errorf("certs: workload API at %s: SVID %s does not verify against its trust domain's bundle: %w", w.addr, id, err)
	}
	return svid, bundle, nil
}

// watch checks each update of the X509Source until ctx is done, and wakes
// up when the current SVID expires to report it.
func (w *WorkloadAPI) watch(ctx context.Context, service string) {
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
				w.log.Error("certs: workload API: the SVID has expired and no valid replacement has arrived; failing closed",
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
func (w *WorkloadAPI) update(service string) {
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
		w.log.Info("certs: trust bundle changed", "trust_domain", bundle.TrustDomain().Name(), "roots", len(bundle.X509Authorities()))
	}
	if svid.Certificates[0].Equal(cur.Certificates[0]) {
		w.log.Debug("certs: workload API: update without a new SVID", "spiffe_id", svid.ID.String())
	} else {
		w.metrics.rotation(nil)
		w.logSVID(svid, "certs: workload API: SVID rotated")
	}
	w.changed.Notify()
}

// failed records and reports a failed update.
func (w *WorkloadAPI) failed(err error) {
	w.metrics.rotation(err)
	w.mu.Lock()
	w.lastErr = err
	cur := w.svid
	w.mu.Unlock()
	if cur == nil {
		return // NewWorkloadAPI reports it
	}
	leaf := cur.Certificates[0]
	w.log.Warn("certs: workload API: update failed; keeping the last good SVID",
		"error", err, "spiffe_id", cur.ID.String(), "serial", leaf.SerialNumber.Text(16),
		"expires_in", time.Until(leaf.NotAfter).Round(time.Second), "expired", time.Now().After(leaf.NotAfter))
}

// GetX509SVID returns the current SVID, or an error if its leaf has expired
// (or is not valid yet) or the source is closed. It implements
// x509svid.Source.
func (w *WorkloadAPI) GetX509SVID() (*x509svid.SVID, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, ErrClosed
	}
	if err := svidTimeError(w.svid, w.lastErr, time.Now()); err != nil {
		return nil, fmt.Errorf("certs: workload API: %w", err)
	}
	return w.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle of td: for the SVID's
// trust domain, the one of the last good update; for another, the one the
// Workload API sent last. It implements x509bundle.Source. The returned
// bundle must not be modified.
func (w *WorkloadAPI) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	w.mu.RLock()
	closed, own := w.closed, w.bundle
	w.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if td == own.TrustDomain() {
		return own, nil
	}
	b, err := w.src.GetX509BundleForTrustDomain(td)
	if err != nil {
		return nil, fmt.Errorf("certs: workload API: no X.509 bundle for trust domain %q: %w", td, err)
	}
	return b, nil
}

// Changed returns a channel closed at the next update from the Workload API
// or Close. It implements Watcher.
func (w *WorkloadAPI) Changed() <-chan struct{} {
	return w.changed.Changed()
}

// Close closes the connection to the Workload API and wakes the watchers.
// Afterwards the getters return ErrClosed. Close is idempotent.
func (w *WorkloadAPI) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.cancel()
		w.wg.Wait()
		w.closeErr = errors.Join(w.src.Close(), w.metrics.close())
		w.changed.Notify()
	})
	return w.closeErr
}

func (w *WorkloadAPI) logSVID(svid *x509svid.SVID, msg string) {
	leaf := svid.Certificates[0]
	w.log.Info(msg, "spiffe_id", svid.ID.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
}

// expiry reports the SPIFFE ID and seconds until the leaf expires, for the
// expiry gauge.
func (w *WorkloadAPI) expiry() (string, float64, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed || w.svid == nil {
		return "", 0, false
	}
	return w.svid.ID.String(), time.Until(w.svid.Certificates[0].NotAfter).Seconds(), true
}

// workloadAPILog routes go-spiffe's Workload API client log to the source's
// logger; its errors count as failed rotations.
type workloadAPILog struct {
	w       *WorkloadAPI
	mu      sync.Mutex
	lastMsg string
}

func (l *workloadAPILog) Debugf(format string, args ...any) {
	l.w.log.Debug("certs: workload API: " + fmt.Sprintf(format, args...))
}

func (l *workloadAPILog) Infof(format string, args ...any) {
	l.w.log.Info("certs: workload API: " + fmt.Sprintf(format, args...))
}

func (l *workloadAPILog) Warnf(format string, args ...any) {
	l.w.log.Warn("certs: workload API: " + fmt.Sprintf(format, args...))
}

func (l *workloadAPILog) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lastMsg = msg
	l.mu.Unlock()
	l.w.mu.RLock()
	started := l.w.svid != nil
	l.w.mu.RUnlock()
	if !started {
		// Before the first SVID NewWorkloadAPI is still waiting: debug
		// only, its error will say what went wrong.
		l.w.log.Debug("certs: workload API: " + msg)
		return
	}
	l.w.failed(errors.New("certs: workload API: " + msg))
}

func (l *workloadAPILog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastMsg
}
