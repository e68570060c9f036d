package certsx

import (
	"bytes"
	"crypto/x509"
)

// ContainsCert reports whether certs holds c.
func ContainsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// ChainsTo reports whether some certificate of chain is signed by root, i.e.
// whether a verifier trusting root can build a path from the chain's leaf.
// The chain is assumed to be in order, as issuers return it.
func ChainsTo(chain []*x509.Certificate, root *x509.Certificate) bool {
	for _, c := range chain {
		if bytes.Equal(c.RawIssuer, root.RawSubject) && c.CheckSignatureFrom(root) == nil {
			return true
		}
	}
	return false
}

// SameCertSet reports whether a and b hold the same certificates, in any
// order.
func SameCertSet(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		if !ContainsCert(b, c) {
			return false
		}
	}
	return true
}

// CertName names c in messages: its subject, or its serial number when the
// subject is empty (as in SPIFFE leaves).
func CertName(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "serial " + c.SerialNumber.Text(16)
}
