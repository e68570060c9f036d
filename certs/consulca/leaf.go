package consulca

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
	"github.com/ztnlabs/ztn/internal/consulx"
)

// leafBody is the body of /v1/agent/connect/ca/leaf/<service>.
type leafBody struct {
	SerialNumber  string
	CertPEM       string
	PrivateKeyPEM string
	ModifyIndex   uint64
}

// Issue implements certs.Issuer.
func (c *issuer) Issue(ctx context.Context) (*certs.Identity, error) {
	leaf, index, err := c.fetchLeaf(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	// The roots after the leaf: they include the leaf's root even if the CA
	// rotated in between.
	roots, _, err := c.fetchRoots(ctx, 0)
	if err != nil {
		return nil, err
	}
	svid, err := c.parseLeaf(leaf, roots)
	if err != nil {
		return nil, err
	}
	if leaf.SerialNumber == c.lastSerial {
		// The agent still has the leaf we have. Early in its life (a forced
		// renewal, a retry) that is the answer. Past 60% of it, or if it is
		// not from the active root, the agent is due to renew it: wait for
		// that rather than install the same leaf again.
		l := svid.Certificates[0]
		life := l.NotAfter.Sub(l.NotBefore)
		current := certsx.ChainsTo(svid.Certificates, roots.active)
		if now := c.now(); current && now.Before(l.NotBefore.Add(life*6/10)) {
			return c.identity(svid, roots), nil
		}
		if leaf, err = c.awaitRenewal(ctx, leaf, svid, index, current); err != nil {
			return nil, err
		}
		if roots, _, err = c.fetchRoots(ctx, 0); err != nil {
			return nil, err
		}
		if svid, err = c.parseLeaf(leaf, roots); err != nil {
			return nil, err
		}
	}
	c.lastSerial = leaf.SerialNumber
	return c.identity(svid, roots), nil
}

func (c *issuer) identity(svid *x509svid.SVID, roots *caRoots) *certs.Identity {
	return &certs.Identity{
		SVID:    svid,
		Bundles: []*x509bundle.Bundle{x509bundle.FromX509Authorities(c.td, roots.roots)},
	}
}

// awaitRenewal waits for the agent to replace cur (fetched at index, parsed
// as svid), which the Rotator already has.
//
// If cur is from the active root (current), the agent renews it at a random
// moment of its own renewal window, at the latest at 90% of the leaf's
// life: awaitRenewal waits for that with blocking queries. If it is not,
// the agent had not seen the root change yet when it answered; a
// non-blocking query re-issues the leaf as soon as it has (a blocking one
// would add the agent's own 0-30s jitter to the Rotator's root change
// window), so awaitRenewal polls, backing off from 250ms to 5s.
//
// If the agent has not renewed the leaf by 90% of its life plus a minute
// (or, not current, 90s from now), awaitRenewal gives up with an error; the
// Rotator's retry then fetches without blocking, which makes the agent
// re-issue a leaf past 90% of its life or not from the active root.
func (c *issuer) awaitRenewal(ctx context.Context, cur *leafBody, svid *x509svid.SVID, index uint64, current bool) (*leafBody, error) {
	l := svid.Certificates[0]
	deadline := l.NotBefore.Add(l.NotAfter.Sub(l.NotBefore) * 9 / 10).Add(time.Minute)
	if !current {
		deadline = c.now().Add(90 * time.Second)
	}
	if deadline.After(l.NotAfter) {
		deadline = l.NotAfter
	}
	c.log.Debug("consulca: the agent still has the current leaf; waiting for its renewal",
		"service", c.service, "serial", cur.SerialNumber, "from_active_root", current, "until", deadline)
	pause := 250 * time.Millisecond
	for {
		left := deadline.Sub(c.now())
		if left <= 0 {
			return nil, fmt.Errorf("consulca: the agent has not renewed the leaf of %q (serial %s, expires %s) in time",
				c.service, cur.SerialNumber, l.NotAfter.Format(time.RFC3339))
		}
		var (
			next      *leafBody
			nextIndex uint64
			err       error
		)
		if current {
			next, nextIndex, err = c.fetchLeaf(ctx, index, max(min(c.wait, left), time.Second))
		} else {
			t := time.NewTimer(min(pause, left))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			pause = min(2*pause, 5*time.Second)
			next, nextIndex, err = c.fetchLeaf(ctx, 0, 0)
		}
		if err != nil {
			return nil, err
		}
		if next.SerialNumber != cur.SerialNumber {
			return next, nil
		}
		index = consulx.NextIndex(index, nextIndex)
	}
}

// fetchLeaf gets the service's leaf; a non-zero index makes it a blocking
// query that returns once the leaf's index passes index or wait is over.
func (c *issuer) fetchLeaf(ctx context.Context, index uint64, wait time.Duration) (*leafBody, uint64, error) {
	var leaf leafBody
	meta, err := c.query(ctx, "/v1/agent/connect/ca/leaf/"+url.PathEscape(c.service), &leaf, index, wait)
	if err != nil {
		return nil, 0, fmt.Errorf("consulca: leaf certificate of %q: %w", c.service, c.describe(err))
	}
	if leaf.SerialNumber == "" || leaf.CertPEM == "" || leaf.PrivateKeyPEM == "" {
		return nil, 0, c.malformedLeaf("missing SerialNumber, CertPEM or PrivateKeyPEM")
	}
	idx := meta.LastIndex
	if idx == 0 {
		idx = leaf.ModifyIndex
	}
	return &leaf, idx, nil
}

// parseLeaf checks a leaf response and returns the SVID: the chain is the
// leaf's CertPEM (the leaf, then the active root's intermediates), with any
// intermediate of the active root it lacks appended.
func (c *issuer) parseLeaf(leaf *leafBody, roots *caRoots) (*x509svid.SVID, error) {
	chain, err := certsx.PEMCertificates([]byte(leaf.CertPEM), false)
	if err != nil {
		return nil, c.malformedLeaf("CertPEM: %v", err)
	}
	key, err := certsx.PEMPrivateKey([]byte(leaf.PrivateKeyPEM), false)
	if err != nil {
		return nil, c.malformedLeaf("PrivateKeyPEM: %v", err)
	}
	for _, ic := range roots.intermediates {
		if !certsx.ContainsCert(chain, ic) {
			chain = append(chain, ic)
		}
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("consulca: refusing the leaf certificate the agent returned for %q (serial %s): %s",
			c.service, leaf.SerialNumber, fmt.Sprintf(format, args...))
	}
	id, err := certsx.CheckSVIDChain(chain, key)
	if err != nil {
		return nil, refuse("%v", err)
	}
	l := chain[0]
	switch {
	case id != c.id:
		return nil, refuse("its SPIFFE ID is %s, want %s", id, c.id)
	case len(l.DNSNames)+len(l.IPAddresses)+len(l.EmailAddresses) > 0:
		return nil, refuse("it has DNS, IP or email SANs besides the SPIFFE ID")
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

func (c *issuer) malformedLeaf(format string, args ...any) error {
	return fmt.Errorf("consulca: leaf certificate of %q: malformed response: %s", c.service, fmt.Sprintf(format, args...))
}
