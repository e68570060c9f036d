package ztnet

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
)

// verifier checks a peer's certificate chain: exactly one URI SAN, a service
// SPIFFE ID in an accepted trust domain, a chain to a root of the current
// bundle, and the right extended key usage. It runs in VerifyConnection, so
// it also runs for resumed sessions, where crypto/tls skips its own checks.
//
// Successful verifications are cached by the leaf's hash until the chain's
// earliest NotAfter or until the trust bundle changes, so a peer that
// reconnects (often, with resumption) costs a hash, not a chain verification.
type verifier struct {
	local     spiffeid.TrustDomain
	federated map[spiffeid.TrustDomain]bool
	bundles   x509bundle.Source
	usage     x509.ExtKeyUsage // what the peer's leaf must allow
	now       func() time.Time

	mu    sync.Mutex
	pools map[spiffeid.TrustDomain]*rootPool
	cache map[[sha256.Size]byte]cachedChain
}

type rootPool struct {
	authorities []*x509.Certificate
	pool        *x509.CertPool
	gen         uint64
}

type cachedChain struct {
	id       ztn.ServiceID
	gen      uint64
	notAfter time.Time
}

const maxCachedChains = 4096

func newVerifier(local spiffeid.TrustDomain, federated []spiffeid.TrustDomain, bundles x509bundle.Source, usage x509.ExtKeyUsage) *verifier {
	v := &verifier{
		local:     local,
		federated: make(map[spiffeid.TrustDomain]bool, len(federated)),
		bundles:   bundles,
		usage:     usage,
		now:       time.Now,
		pools:     make(map[spiffeid.TrustDomain]*rootPool),
		cache:     make(map[[sha256.Size]byte]cachedChain),
	}
	for _, td := range federated {
		v.federated[td] = true
	}
	return v
}

// errNoCertificate is returned when the peer sent no certificate at all.
var errNoCertificate = errors.New("peer presented no certificate")

// verify returns the peer's service identity, or why it is not acceptable.
func (v *verifier) verify(chain []*x509.Certificate) (ztn.ServiceID, error) {
	if len(chain) == 0 {
		return ztn.ServiceID{}, errNoCertificate
	}
	leaf := chain[0]
	switch n := len(leaf.URIs); n {
	case 0:
		return ztn.ServiceID{}, errors.New("peer certificate has no URI SAN (no SPIFFE ID)")
	case 1:
	default:
		return ztn.ServiceID{}, fmt.Errorf("peer certificate has %d URI SANs, want exactly one SPIFFE ID", n)
	}
	id, err := spiffeid.FromURI(leaf.URIs[0])
	if err != nil {
		return ztn.ServiceID{}, fmt.Errorf("peer certificate URI SAN is not a SPIFFE ID: %v", err)
	}
	td := id.TrustDomain()
	if td != v.local && !v.federated[td] {
		return ztn.ServiceID{}, fmt.Errorf("peer %s is in trust domain %q, not the local %q nor a federated one", id, td.Name(), v.local.Name())
	}
	sid, err := ztn.ServiceIDFromSPIFFEID(id)
	if err != nil {
		return ztn.ServiceID{}, fmt.Errorf("peer %s is not a service identity", id)
	}
	if leaf.IsCA {
		return ztn.ServiceID{}, fmt.Errorf("peer %s: leaf certificate is a CA", id)
	}

	key := sha256.Sum256(leaf.Raw)
	now := v.now()
	pool, err := v.pool(td)
	if err != nil {
		return ztn.ServiceID{}, fmt.Errorf("peer %s: %v", id, err)
	}
	v.mu.Lock()
	c, ok := v.cache[key]
	v.mu.Unlock()
	if ok && c.gen == pool.gen && now.Before(c.notAfter) {
		return c.id, nil
	}

	opts := x509.VerifyOptions{
		Roots:       pool.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{v.usage},
	}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return ztn.ServiceID{}, fmt.Errorf("peer %s: certificate not trusted: %w", id, err)
	}
	notAfter := leaf.NotAfter
	for _, c := range chains[0] {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	v.mu.Lock()
	if len(v.cache) >= maxCachedChains {
		clear(v.cache)
	}
	v.cache[key] = cachedChain{id: sid, gen: pool.gen, notAfter: notAfter}
	v.mu.Unlock()
	return sid, nil
}

// pool returns the root pool for td, rebuilt when the bundle's authorities
// change.
func (v *verifier) pool(td spiffeid.TrustDomain) (*rootPool, error) {
	b, err := v.bundles.GetX509BundleForTrustDomain(td)
	if err != nil {
		return nil, fmt.Errorf("no trust bundle for %q: %v", td.Name(), err)
	}
	auths := b.X509Authorities()
	if len(auths) == 0 {
		return nil, fmt.Errorf("trust bundle for %q is empty", td.Name())
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	p := v.pools[td]
	if p != nil && sameCerts(p.authorities, auths) {
		return p, nil
	}
	np := &rootPool{authorities: auths, pool: x509.NewCertPool(), gen: 1}
	if p != nil {
		np.gen = p.gen + 1
	}
	for _, a := range auths {
		np.pool.AddCert(a)
	}
	v.pools[td] = np
	return np, nil
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
