package consulca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/time/rate"

	"github.com/ztnlabs/ztn/internal/certsx"
	"github.com/ztnlabs/ztn/internal/consulx"
)

// rootsBody is the body of /v1/agent/connect/ca/roots.
type rootsBody struct {
	ActiveRootID string
	TrustDomain  string
	Roots        []struct {
		ID                string
		RootCert          string
		IntermediateCerts []string
		Active            bool
	}
}

// caRoots is a parsed and checked roots response.
type caRoots struct {
	td            spiffeid.TrustDomain
	roots         []*x509.Certificate // every root, active or not
	active        *x509.Certificate
	intermediates []*x509.Certificate // the active root's, in order
}

// fetchRoots gets the roots, blocking as fetchLeaf does.
func (c *issuer) fetchRoots(ctx context.Context, index uint64) (*caRoots, uint64, error) {
	var body rootsBody
	meta, err := c.query(ctx, "/v1/agent/connect/ca/roots", &body, index, c.wait)
	if err != nil {
		return nil, 0, fmt.Errorf("consulca: CA roots: %w", c.describe(err))
	}
	roots, err := parseRoots(&body)
	if err != nil {
		return nil, 0, fmt.Errorf("consulca: CA roots: malformed response: %w", err)
	}
	if !c.td.IsZero() && roots.td != c.td {
		return nil, 0, fmt.Errorf("consulca: CA roots: the trust domain changed from %s to %s (a new cluster ID?); restart to follow it", c.td, roots.td)
	}
	return roots, meta.LastIndex, nil
}

// parseRoots checks a roots response: a valid trust domain, at least
// one root, every RootCert exactly one CA certificate, the active root
// among them, and its intermediates parseable.
func parseRoots(body *rootsBody) (*caRoots, error) {
	td, err := spiffeid.TrustDomainFromString(strings.ToLower(body.TrustDomain))
	if err != nil || body.TrustDomain == "" {
		return nil, fmt.Errorf("TrustDomain %q: %v", body.TrustDomain, errOrString(err, "empty"))
	}
	if len(body.Roots) == 0 {
		return nil, errors.New("no roots")
	}
	out := &caRoots{td: td}
	active := false
	for i, r := range body.Roots {
		certs, err := certsx.PEMCertificates([]byte(r.RootCert), false)
		switch {
		case err != nil:
			return nil, fmt.Errorf("Roots[%d] (%s): RootCert: %v", i, r.ID, err)
		case len(certs) != 1:
			return nil, fmt.Errorf("Roots[%d] (%s): RootCert: %d certificates, want 1", i, r.ID, len(certs))
		case !certs[0].IsCA:
			return nil, fmt.Errorf("Roots[%d] (%s): RootCert is not a CA certificate", i, r.ID)
		}
		if !certsx.ContainsCert(out.roots, certs[0]) {
			out.roots = append(out.roots, certs[0])
		}
		isActive := r.ID == body.ActiveRootID
		if isActive != r.Active && body.ActiveRootID != "" {
			return nil, fmt.Errorf("Roots[%d] (%s): Active is %v but ActiveRootID is %q", i, r.ID, r.Active, body.ActiveRootID)
		}
		if !r.Active {
			continue
		}
		if active {
			return nil, fmt.Errorf("Roots[%d] (%s): a second active root", i, r.ID)
		}
		active = true
		out.active = certs[0]
		for j, p := range r.IntermediateCerts {
			ics, err := certsx.PEMCertificates([]byte(p), false)
			if err != nil {
				return nil, fmt.Errorf("Roots[%d] (%s): IntermediateCerts[%d]: %v", i, r.ID, j, err)
			}
			out.intermediates = append(out.intermediates, ics...)
		}
	}
	if !active {
		return nil, fmt.Errorf("no active root (ActiveRootID %q)", body.ActiveRootID)
	}
	return out, nil
}

// WatchBundles implements certs.BundleWatcher: it follows the agent's roots with
// blocking queries and reports them when they change. Errors (an
// unreachable agent, a malformed response) are returned to the Rotator,
// which logs them and calls again after a backoff; the last good roots stay
// in use meanwhile.
func (c *issuer) WatchBundles(ctx context.Context, update func([]*x509bundle.Bundle)) error {
	var (
		index uint64
		last  []*x509.Certificate
		// At most one request a second on average (bursts of 2), so an
		// agent answering at once (a flapping index) cannot make it spin.
		pace = rate.NewLimiter(rate.Every(time.Second), 2)
	)
	for first := true; ; first = false {
		if err := pace.Wait(ctx); err != nil {
			return err
		}
		roots, next, err := c.fetchRoots(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if first || !certsx.SameCertSet(roots.roots, last) {
			last = roots.roots
			update([]*x509bundle.Bundle{x509bundle.FromX509Authorities(c.td, roots.roots)})
		}
		index = consulx.NextIndex(index, next)
	}
}
