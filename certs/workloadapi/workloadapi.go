package workloadapi

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
	wlapi "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
	"github.com/ztnlabs/ztn/internal/notify"
)

// Source is a [certs.Source] backed by the SPIFFE Workload API (a SPIRE
// agent, for example) through go-spiffe's workloadapi.X509Source, which keeps a
// stream open to the agent and receives each new SVID and bundle as the
// agent rotates them. Create it with [New].
//
// The SPIRE agent renews the SVID; Source checks each one it receives
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
// Changed ([certs.Watcher]) is closed on each update from the Workload API (SVID or
// bundles) and on Close. A Source is safe for concurrent use.
type Source struct {
	src     *wlapi.X509Source
	addr    string
	log     *slog.Logger
	metrics *certsx.Metrics
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

// errNotNew is returned by the methods of a Source not made by New.
var errNotNew = errors.New("workloadapi: Source not created with New")

var (
	_ certs.Source  = (*Source)(nil)
	_ certs.Watcher = (*Source)(nil)
)

// New connects to the Workload API and waits for a first SVID
// that passes the checks of Source, until ctx is done: give ctx a
// deadline, since a Workload API that does not know the workload (no
// registration entry) answers nothing. opts take [certs.WithLogger] and
// [certs.WithMeterProvider]; the other options are about issuance and do
// not apply.
func New(ctx context.Context, cfg Config, opts ...certs.Option) (*Source, error) {
	rc := certsx.NewConfig(opts)
	addr := cfg.Address
	if addr == "" {
		a, ok := wlapi.GetDefaultAddress()
		if !ok || a == "" {
			return nil, fmt.Errorf("workloadapi: no Address in Config and %s is not set", wlapi.SocketEnv)
		}
		addr = a
	}
	if err := wlapi.ValidateAddress(addr); err != nil {
		return nil, fmt.Errorf("workloadapi: address %q: %w", addr, err)
	}
	if cfg.Service != "" {
		if err := ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("example.org"), "dc", cfg.Service).Validate(); err != nil {
			return nil, fmt.Errorf("workloadapi: service %q: %w", cfg.Service, err)
		}
	}
	w := &Source{addr: addr, log: rc.Logger.With("workload_api", addr)}
	m, err := certsx.NewMetrics(rc.MeterProvider, w.observe)
	if err != nil {
		return nil, err
	}
	w.metrics = m

	wlog := &clientLog{w: w}
	src, err := wlapi.NewX509Source(ctx,
		wlapi.WithClientOptions(wlapi.WithAddr(addr), wlapi.WithLogger(wlog)),
		wlapi.WithDefaultX509SVIDPicker(w.picker(cfg.Service)))
	if err != nil {
		m.Rotation(err)
		_ = m.Close()
		if last := wlog.last(); last != "" {
			err = fmt.Errorf("%w (last error from the Workload API: %s)", err, last)
		}
		return nil, fmt.Errorf("workloadapi: %s: no X.509-SVID: %w", addr, err)
	}
	w.src = src
	svid, bundle, err := w.check(spiffeid.ID{}, cfg.Service)
	m.Rotation(err)
	if err != nil {
		_ = src.Close()
		_ = m.Close()
		return nil, err
	}
	w.mu.Lock() // the picker and the client's log read them
	w.id, w.svid, w.bundle = svid.ID, svid, bundle
	w.mu.Unlock()
	w.logSVID(svid, "workloadapi: SVID received")

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	w.wg.Go(func() { w.watch(bg, cfg.Service) })
	return w, nil
}

// picker returns the X509Source's SVID picker: the SVID with the ID of the
// first one once known, else the first of service (if set), else the
// first. It also records what was offered.
func (w *Source) picker(service string) func([]*x509svid.SVID) *x509svid.SVID {
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
func (w *Source) check(want spiffeid.ID, service string) (*x509svid.SVID, *x509bundle.Bundle, error) {
	svid, err := w.src.GetX509SVID()
	if err != nil || svid == nil {
		var offered []spiffeid.ID
		if p := w.offered.Load(); p != nil {
			offered = *p
		}
		switch {
		case !want.IsZero():
			return nil, nil, fmt.Errorf("workloadapi: %s: no SVID for %s any more (offered: %v)", w.addr, want, offered)
		case service != "":
			return nil, nil, fmt.Errorf("workloadapi: %s: no SVID for service %q (offered: %v)", w.addr, service, offered)
		}
		if err == nil {
			err = errors.New("none offered")
		}
		return nil, nil, fmt.Errorf("workloadapi: %s: no SVID: %w", w.addr, err)
	}
	id, err := certsx.CheckSVIDChain(svid.Certificates, svid.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("workloadapi: %s: SVID %s: not a valid X509-SVID: %w", w.addr, svid.ID, err)
	}
	if !want.IsZero() && id != want {
		return nil, nil, fmt.Errorf("workloadapi: %s: SVID for %s, want %s (the identity of a source never changes)", w.addr, id, want)
	}
	bundle, err := w.src.GetX509BundleForTrustDomain(id.TrustDomain())
	if err != nil {
		return nil, nil, fmt.Errorf("workloadapi: %s: no bundle for the trust domain of SVID %s: %w", w.addr, id, err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		leaf := svid.Certificates[0]
		if now := time.Now(); now.After(leaf.NotAfter) {
			return nil, nil, fmt.Errorf("workloadapi: %s: SVID %s (serial %s) expired at %s",
				w.addr, id, leaf.SerialNumber.Text(16), leaf.NotAfter.Format(time.RFC3339))
		}
		return nil, nil, fmt.Errorf("workloadapi: %s: SVID %s does not verify against its trust domain's bundle: %w", w.addr, id, err)
	}
	return svid, bundle, nil
}

// GetX509SVID returns the current SVID, or an error if its leaf has expired
// (or is not valid yet) or the source is closed. It implements
// x509svid.Source.
func (w *Source) GetX509SVID() (*x509svid.SVID, error) {
	if w.cancel == nil {
		return nil, errNotNew
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return nil, certs.ErrClosed
	}
	if err := certsx.SVIDTimeError(w.svid, w.lastErr, time.Now()); err != nil {
		return nil, fmt.Errorf("workloadapi: %w", err)
	}
	return w.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle of td: for the SVID's
// trust domain, the one of the last good update; for another, the one the
// Workload API sent last. It implements x509bundle.Source. The returned
// bundle must not be modified.
func (w *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if w.cancel == nil {
		return nil, errNotNew
	}
	w.mu.RLock()
	closed, own := w.closed, w.bundle
	w.mu.RUnlock()
	if closed {
		return nil, certs.ErrClosed
	}
	if td == own.TrustDomain() {
		return own, nil
	}
	b, err := w.src.GetX509BundleForTrustDomain(td)
	if err != nil {
		return nil, fmt.Errorf("workloadapi: no X.509 bundle for trust domain %q: %w", td, err)
	}
	return b, nil
}

// Changed returns a channel closed at the next update from the Workload API
// or Close. It implements [certs.Watcher].
func (w *Source) Changed() <-chan struct{} {
	return w.changed.Changed()
}

// Close closes the connection to the Workload API and wakes the watchers.
// Afterwards the getters return [certs.ErrClosed]. Close is idempotent.
func (w *Source) Close() error {
	if w.cancel == nil {
		return errNotNew
	}
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.cancel()
		w.wg.Wait()
		w.closeErr = errors.Join(w.src.Close(), w.metrics.Close())
		w.changed.Notify()
	})
	return w.closeErr
}
