package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/internal/notify"
)

// devRootTTL is the lifetime of a DevCA root.
const devRootTTL = 10 * 365 * 24 * time.Hour

// DevCA is an in-memory certificate authority for development and tests: an
// ECDSA P-256 root that lives in the process only (nothing touches disk),
// issuing SVIDs for services of one trust domain.
//
// Its root is name-constrained to the trust domain (URI SANs only) unless
// WithoutNameConstraints is given. RotateRoot replaces the signing root; the
// bundle keeps an old root for as long as a leaf it issued (through Issuer)
// is unexpired, and while an older root is in the bundle, leaves signed by
// the new root carry it cross-signed by the previous one, so that peers that
// do not trust the new root yet still verify them (as Consul's CA does). A
// DevCA is safe for concurrent use.
type DevCA struct {
	td              spiffeid.TrustDomain
	nameConstraints bool
	changed         notify.Broadcast // on RotateRoot

	mu    sync.Mutex
	roots []*devRoot // oldest first; the last one signs
}

type devRoot struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	cross   *x509.Certificate // cert signed by the previous root; nil for the first root
	leafEnd time.Time         // latest NotAfter of a leaf it signed through an Issuer
}

// NewDevCA creates a DevCA for td with a fresh root.
func NewDevCA(td spiffeid.TrustDomain, opts ...DevCAOption) (*DevCA, error) {
	if td.IsZero() {
		return nil, errors.New("certs: dev CA: empty trust domain")
	}
	cfg := devCAConfig{nameConstraints: true}
	for _, o := range opts {
		o(&cfg)
	}
	ca := &DevCA{td: td, nameConstraints: cfg.nameConstraints}
	root, err := ca.newRoot(nil)
	if err != nil {
		return nil, err
	}
	ca.roots = []*devRoot{root}
	return ca, nil
}

// TrustDomain returns the trust domain the CA issues for.
func (ca *DevCA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Bundle returns the current roots: the signing one and every older one that
// still has unexpired leaves issued through an Issuer.
func (ca *DevCA) Bundle() *x509bundle.Bundle {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.bundleLocked(time.Now())
}

// RotateRoot makes a new root that signs from now on. The old root stays in
// the bundle while leaves it issued are unexpired, and the Rotators of this
// CA's issuers learn of the change at once and re-issue within their root
// change window (see WithRootChangeWindow).
func (ca *DevCA) RotateRoot() error {
	ca.mu.Lock()
	root, err := ca.newRoot(ca.roots[len(ca.roots)-1])
	if err == nil {
		ca.roots = append(ca.roots, root)
	}
	ca.mu.Unlock()
	if err != nil {
		return err
	}
	ca.changed.Notify()
	return nil
}

// SignCertificate signs tmpl for pub with the current root, exactly as given
// (a nil SerialNumber gets a random one). It is meant for tests and tooling
// that need unusual certificates from a trusted CA: expired, without a URI
// SAN, with two, for another trust domain (see WithoutNameConstraints)... A
// certificate signed here does not keep its root in the bundle after a
// RotateRoot.
func (ca *DevCA) SignCertificate(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	cur := ca.roots[len(ca.roots)-1]
	return createCertificate(tmpl, cur.cert, pub, cur.key)
}

// Issuer returns an Issuer of SVIDs for
// spiffe://<td>/ns/default/dc/<datacenter>/svc/<service>, valid for ttl. Each
// issuance generates a new ECDSA P-256 key in the process. An invalid name or
// ttl makes Issue fail. The Issuer is a BundleWatcher: Rotators using it
// follow RotateRoot.
func (ca *DevCA) Issuer(datacenter, service string, ttl time.Duration) Issuer {
	return &devIssuer{ca: ca, service: ztn.NewServiceID(ca.td, datacenter, service), ttl: ttl}
}

// Source returns a Rotator for the Issuer of datacenter, service and ttl,
// which re-issues within 1s of a RotateRoot unless opts say otherwise.
func (ca *DevCA) Source(ctx context.Context, datacenter, service string, ttl time.Duration, opts ...Option) (*Rotator, error) {
	opts = append([]Option{WithRootChangeWindow(time.Second)}, opts...)
	return NewRotator(ctx, ca.Issuer(datacenter, service, ttl), opts...)
}

// issue signs a leaf with the current root and returns its chain and the
// bundle.
func (ca *DevCA) issue(tmpl *x509.Certificate, pub crypto.PublicKey) ([]*x509.Certificate, *x509bundle.Bundle, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	bundle := ca.bundleLocked(time.Now())
	cur := ca.roots[len(ca.roots)-1]
	leaf, err := createCertificate(tmpl, cur.cert, pub, cur.key)
	if err != nil {
		return nil, nil, err
	}
	if leaf.NotAfter.After(cur.leafEnd) {
		cur.leafEnd = leaf.NotAfter
	}
	chain := []*x509.Certificate{leaf}
	if len(ca.roots) > 1 { // an older root is still in use: help its trusters
		chain = append(chain, cur.cross)
	}
	return chain, bundle, nil
}

// bundleAndNextDrop returns the bundle and when an old root will next leave
// it (zero if there is no old root).
func (ca *DevCA) bundleAndNextDrop() (*x509bundle.Bundle, time.Time) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	b := ca.bundleLocked(time.Now())
	var next time.Time
	for _, r := range ca.roots[:len(ca.roots)-1] {
		if next.IsZero() || r.leafEnd.Before(next) {
			next = r.leafEnd
		}
	}
	return b, next
}

// bundleLocked forgets the old roots whose leaves have all expired and
// returns the others.
func (ca *DevCA) bundleLocked(now time.Time) *x509bundle.Bundle {
	cur := ca.roots[len(ca.roots)-1]
	kept := ca.roots[:0]
	for _, r := range ca.roots {
		if r == cur || r.leafEnd.After(now) {
			kept = append(kept, r)
		}
	}
	clear(ca.roots[len(kept):])
	ca.roots = kept
	b := x509bundle.New(ca.td)
	for _, r := range ca.roots {
		b.AddX509Authority(r.cert)
	}
	return b
}

// newRoot makes a self-signed root and, when prev is not nil, the same root
// cross-signed by prev.
func (ca *DevCA) newRoot(prev *devRoot) (*devRoot, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: dev CA: %w", err)
	}
	serial := randomSerial()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"ztn dev CA"},
			CommonName:   fmt.Sprintf("ztn dev CA %s %x", ca.td.Name(), serial.Bytes()[:4]),
		},
		URIs:                  []*url.URL{ca.td.ID().URL()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(devRootTTL),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1, // room for the cross-signed root
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	if ca.nameConstraints {
		tmpl.PermittedURIDomains = []string{ca.td.Name()}
		tmpl.PermittedDNSDomainsCritical = true
	}
	root := &devRoot{key: key}
	if root.cert, err = createCertificate(tmpl, tmpl, key.Public(), key); err != nil {
		return nil, err
	}
	if prev != nil {
		cross := *tmpl
		cross.SerialNumber = randomSerial()
		cross.MaxPathLen, cross.MaxPathLenZero = 0, true
		if root.cross, err = createCertificate(&cross, prev.cert, key.Public(), prev.key); err != nil {
			return nil, err
		}
	}
	return root, nil
}

// devIssuer is the Issuer of one service of a DevCA.
type devIssuer struct {
	ca      *DevCA
	service ztn.ServiceID
	ttl     time.Duration
}

// Issue implements Issuer.
func (i *devIssuer) Issue(ctx context.Context) (*Identity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, err := i.service.SPIFFEID()
	if err != nil {
		return nil, fmt.Errorf("certs: dev CA: %w", err)
	}
	if i.ttl <= 0 {
		return nil, fmt.Errorf("certs: dev CA: TTL %v is not positive", i.ttl)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: dev CA: %w", err)
	}
	now := time.Now()
	chain, bundle, err := i.ca.issue(&x509.Certificate{
		SerialNumber:          randomSerial(),
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             now.Add(-min(30*time.Second, i.ttl/10)),
		NotAfter:              now.Add(i.ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}, key.Public())
	if err != nil {
		return nil, err
	}
	return &Identity{
		SVID:    &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key},
		Bundles: []*x509bundle.Bundle{bundle},
	}, nil
}

// WatchBundles implements BundleWatcher: it reports the CA's bundle now,
// after each RotateRoot and when an old root leaves the bundle.
func (i *devIssuer) WatchBundles(ctx context.Context, update func([]*x509bundle.Bundle)) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		changed := i.ca.changed.Changed()
		bundle, drop := i.ca.bundleAndNextDrop()
		update([]*x509bundle.Bundle{bundle})
		var dropped <-chan time.Time
		if !drop.IsZero() {
			timer.Reset(time.Until(drop))
			dropped = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-dropped:
		}
	}
}

func createCertificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("certs: dev CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: dev CA: %w", err)
	}
	return cert, nil
}

// randomSerial returns a random 128-bit serial number (top bit set).
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program instead
	b[0] |= 0x80
	return new(big.Int).SetBytes(b)
}
