package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestDevCARoot(t *testing.T) {
	ca := newTestCA(t)
	if ca.TrustDomain() != testTD {
		t.Fatalf("TrustDomain = %v", ca.TrustDomain())
	}
	roots := ca.Bundle().X509Authorities()
	if len(roots) != 1 {
		t.Fatalf("%d roots, want 1", len(roots))
	}
	root := roots[0]
	if !root.IsCA || !root.BasicConstraintsValid || root.MaxPathLen != 1 {
		t.Errorf("root: IsCA %v, MaxPathLen %d; want a CA with MaxPathLen 1", root.IsCA, root.MaxPathLen)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if k, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("root key %T, want ECDSA P-256", root.PublicKey)
	}
	if !slices.Equal(root.PermittedURIDomains, []string{"ztn.test"}) {
		t.Errorf("PermittedURIDomains = %v", root.PermittedURIDomains)
	}
	if len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://ztn.test" {
		t.Errorf("root URIs = %v", root.URIs)
	}

	if _, err := NewDevCA(spiffeid.TrustDomain{}); err == nil {
		t.Error("NewDevCA with an empty trust domain succeeded")
	}
}

func TestDevCAIssue(t *testing.T) {
	ca := newTestCA(t)
	for _, ttl := range []time.Duration{5 * time.Second, time.Hour} {
		start := time.Now().Truncate(time.Second) // certificate times have second precision
		id, err := ca.Issuer("dc1", "web", ttl).Issue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		svid := id.SVID
		if want := "spiffe://ztn.test/ns/default/dc/dc1/svc/web"; svid.ID.String() != want {
			t.Fatalf("ID = %s, want %s", svid.ID, want)
		}
		leaf := svid.Certificates[0]
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != svid.ID.String() || len(leaf.DNSNames) != 0 {
			t.Errorf("SANs: URIs %v DNS %v, want exactly the SPIFFE ID", leaf.URIs, leaf.DNSNames)
		}
		if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("IsCA %v KeyUsage %v, want a leaf with DigitalSignature only", leaf.IsCA, leaf.KeyUsage)
		}
		if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
			t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
		}
		if leaf.SerialNumber.BitLen() != 128 {
			t.Errorf("serial has %d bits, want 128", leaf.SerialNumber.BitLen())
		}
		backdate := min(30*time.Second, ttl/10)
		if lo, hi := start.Add(-backdate-time.Second), start.Add(-backdate+time.Second); leaf.NotBefore.Before(lo) || leaf.NotBefore.After(hi) {
			t.Errorf("NotBefore %v, want about now - %v", leaf.NotBefore, backdate)
		}
		if got := leaf.NotAfter.Sub(start); got < ttl-time.Second || got > ttl+time.Second {
			t.Errorf("NotAfter in %v, want about %v", got, ttl)
		}
		if k, ok := svid.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() || !k.PublicKey.Equal(leaf.PublicKey) {
			t.Errorf("private key %T does not match the leaf or is not P-256", svid.PrivateKey)
		}
		if _, _, err := x509svid.Verify(svid.Certificates, x509bundle.NewSet(id.Bundles...)); err != nil {
			t.Errorf("SVID does not verify against the bundle: %v", err)
		}
	}

	a, _ := ca.Issuer("dc1", "web", time.Hour).Issue(context.Background())
	b, _ := ca.Issuer("dc1", "web", time.Hour).Issue(context.Background())
	if a.SVID.Certificates[0].SerialNumber.Cmp(b.SVID.Certificates[0].SerialNumber) == 0 ||
		a.SVID.PrivateKey.Public().(*ecdsa.PublicKey).Equal(b.SVID.PrivateKey.Public()) {
		t.Error("two issuances share a serial or a key")
	}

	for _, bad := range []Issuer{ca.Issuer("dc/1", "web", time.Hour), ca.Issuer("dc1", "", time.Hour), ca.Issuer("dc1", "web", 0)} {
		if _, err := bad.Issue(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
			t.Errorf("Issue with a bad name or TTL: err = %v", err)
		}
	}
}

func TestDevCASignCertificate(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreign, _ := url.Parse("spiffe://other.test/ns/default/dc/dc1/svc/web")
	verify := func(ca *DevCA, c *x509.Certificate) error {
		roots := x509.NewCertPool()
		roots.AddCert(ca.Bundle().X509Authorities()[0])
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}

	ca := newTestCA(t)
	dnsOnly, err := ca.SignCertificate(&x509.Certificate{
		DNSNames:  []string{"web.example"},
		NotBefore: time.Now().Add(-time.Minute),
		NotAfter:  time.Now().Add(time.Hour),
	}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if dnsOnly.SerialNumber == nil || dnsOnly.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v, want a random positive one", dnsOnly.SerialNumber)
	}
	if err := verify(ca, dnsOnly); err != nil {
		t.Errorf("DNS-only leaf does not chain to the CA: %v", err)
	}
	foreignTmpl := &x509.Certificate{URIs: []*url.URL{foreign}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	c, err := ca.SignCertificate(foreignTmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(ca, c); err == nil {
		t.Error("leaf of another trust domain verifies despite the name constraints")
	}

	open := newTestCA(t, WithoutNameConstraints())
	if c, err = open.SignCertificate(foreignTmpl, key.Public()); err != nil {
		t.Fatal(err)
	}
	if err := verify(open, c); err != nil {
		t.Errorf("WithoutNameConstraints: leaf of another trust domain does not verify: %v", err)
	}
}

func TestDevCARotateRoot(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	oldRoot := ca.Bundle().X509Authorities()[0]
	// A short-lived leaf under the old root, and a watcher of the bundle.
	if _, err := ca.Issuer("dc1", "web", 2*time.Second).Issue(context.Background()); err != nil {
		t.Fatal(err)
	}
	changed := ca.changed.Changed()
	if err := ca.RotateRoot(); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, time.Second, "RotateRoot to notify")

	roots := ca.Bundle().X509Authorities()
	if len(roots) != 2 || !roots[0].Equal(oldRoot) {
		t.Fatalf("bundle after RotateRoot has %d roots, want the old one and the new one", len(roots))
	}
	newRoot := roots[1]

	id, err := ca.Issuer("dc1", "web", time.Hour).Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	chain := id.SVID.Certificates
	if err := chain[0].CheckSignatureFrom(newRoot); err != nil {
		t.Fatalf("leaf is not signed by the new root: %v", err)
	}
	// Peers that trust only one of the roots verify the new leaf.
	for name, root := range map[string]*x509.Certificate{"old": oldRoot, "new": newRoot} {
		if _, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(testTD, []*x509.Certificate{root})); err != nil {
			t.Errorf("leaf does not verify against the %s root alone: %v", name, err)
		}
	}

	// Once the old root's leaves have expired, it leaves the bundle and new
	// leaves stop carrying the cross-signed root.
	time.Sleep(time.Until(ca.roots[0].leafEnd) + 10*time.Millisecond)
	if roots := ca.Bundle().X509Authorities(); len(roots) != 1 || !roots[0].Equal(newRoot) {
		t.Fatalf("bundle after the old leaves expired has %d roots, want the new one only", len(roots))
	}
	id, err = ca.Issuer("dc1", "web", time.Hour).Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(id.SVID.Certificates); n != 1 {
		t.Errorf("chain has %d certificates, want the leaf only", n)
	}
}
