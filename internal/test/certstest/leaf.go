package certstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// TD is the trust domain of the certs tests, ztn.test.
var TD = spiffeid.RequireTrustDomainFromString("ztn.test")

// Signer signs certificates exactly as given, as certs.DevCA's
// SignCertificate does.
type Signer interface {
	SignCertificate(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error)
}

// LeafSpec describes a test leaf certificate; the zero value is a valid
// SVID of spiffe://ztn.test/ns/default/dc/dc1/svc/web, valid for an hour.
type LeafSpec struct {
	URIs      []string // default: web's SPIFFE ID
	NotBefore time.Time
	NotAfter  time.Time
	CA        bool
	EKU       []x509.ExtKeyUsage // default: client and server auth
	DNS       []string
	RSA       bool // an RSA key instead of ECDSA P-256
}

// SignLeaf has ca sign a leaf for spec (unusual certificates too) and
// returns it with its key.
func SignLeaf(t testing.TB, ca Signer, spec LeafSpec) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	var key crypto.Signer
	var err error
	if spec.RSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	if spec.URIs == nil {
		spec.URIs = []string{"spiffe://ztn.test/ns/default/dc/dc1/svc/web"}
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = time.Now().Add(-time.Minute)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = time.Now().Add(time.Hour)
	}
	if spec.EKU == nil {
		spec.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           spec.EKU,
		BasicConstraintsValid: true,
		IsCA:                  spec.CA,
		DNSNames:              spec.DNS,
	}
	if spec.CA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, u := range spec.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	cert, err := ca.SignCertificate(tmpl, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// CertsPEM encodes certificates as PEM CERTIFICATE blocks.
func CertsPEM(certificates ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certificates {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// KeyPEM encodes key as PKCS#8, or in its traditional form (SEC 1, PKCS#1).
func KeyPEM(t testing.TB, key crypto.Signer, pkcs8 bool) []byte {
	t.Helper()
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	}
	t.Fatalf("key type %T", key)
	return nil
}

// WaitChanged waits for ch (a certs.Watcher's Changed) to close.
func WaitChanged(t testing.TB, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}
