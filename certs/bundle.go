package certs

import (
	"crypto/x509"
	"time"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// rootKeeper holds the trusted roots of one trust domain. It trusts every root
// an issuer reports, at once, and keeps a root the issuer stops reporting for
// as long as a leaf it has seen issued under that root is unexpired, so that
// peers holding such leaves can still be verified: a root is dropped only once
// no unexpired leaf we know of can chain to it.
//
// The zero value is ready; it is not safe for concurrent use.
type rootKeeper struct {
	roots []*keptRoot // in the order they were first reported
}

type keptRoot struct {
	cert     *x509.Certificate
	reported bool      // in the issuer's latest report
	leafEnd  time.Time // latest NotAfter of a leaf seen chaining to cert
}

// observe records a report: reported are the roots the issuer reports now and
// chain, if not empty, is a chain (leaf first) it just issued. It then drops
// the unreported roots no unexpired known leaf chains to. changed tells
// whether the set of trusted roots changed, added whether the report has a
// root the previous one did not.
func (k *rootKeeper) observe(now time.Time, reported, chain []*x509.Certificate) (changed, added bool) {
	for _, r := range k.roots {
		was := r.reported
		r.reported = certsx.ContainsCert(reported, r.cert)
		added = added || (r.reported && !was)
	}
	for _, c := range reported {
		if k.find(c) == nil {
			k.roots = append(k.roots, &keptRoot{cert: c, reported: true})
			changed, added = true, true
		}
	}
	if len(chain) > 0 {
		leaf := chain[0]
		for _, r := range k.roots {
			if leaf.NotAfter.After(r.leafEnd) && certsx.ChainsTo(chain, r.cert) {
				r.leafEnd = leaf.NotAfter
			}
		}
	}
	if k.prune(now) {
		changed = true
	}
	return changed, added
}

// prune drops the unreported roots whose known leaves have all expired and
// tells whether it dropped any.
func (k *rootKeeper) prune(now time.Time) bool {
	kept := k.roots[:0]
	for _, r := range k.roots {
		if r.reported || r.leafEnd.After(now) {
			kept = append(kept, r)
		}
	}
	clear(k.roots[len(kept):])
	dropped := len(kept) != len(k.roots)
	k.roots = kept
	return dropped
}

// certs returns the trusted roots.
func (k *rootKeeper) certs() []*x509.Certificate {
	out := make([]*x509.Certificate, len(k.roots))
	for i, r := range k.roots {
		out[i] = r.cert
	}
	return out
}

// nextDrop returns when prune will next drop a root, or the zero time.
func (k *rootKeeper) nextDrop() time.Time {
	var next time.Time
	for _, r := range k.roots {
		if !r.reported && (next.IsZero() || r.leafEnd.Before(next)) {
			next = r.leafEnd
		}
	}
	return next
}

func (k *rootKeeper) find(c *x509.Certificate) *keptRoot {
	for _, r := range k.roots {
		if r.cert.Equal(c) {
			return r
		}
	}
	return nil
}
