package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// PEM and X509-SVID checks shared by the file, Consul CA and Workload API
// sources. The PEM parsers are strict: a block that is not valid PEM, a certificate that does not
// parse or a block of an unexpected type is an error, never skipped.

// pemCertificates parses the CERTIFICATE blocks of data, in order. Blocks
// whose type ends in "PRIVATE KEY" are skipped when skipKeys is set (a
// combined cert+key file); any other block type, or bytes that are not PEM,
// is an error. At least one certificate is required.
func pemCertificates(data []byte, skipKeys bool) ([]*x509.Certificate, error) {
	rest := bytes.TrimSpace(data)
	if len(rest) == 0 {
		return nil, errors.New("empty")
	}
	var out []*x509.Certificate
	for n := 1; len(rest) > 0; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("PEM block %d: not PEM", n)
		}
		rest = bytes.TrimSpace(rest)
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %w", n, err)
			}
			out = append(out, c)
		case skipKeys && strings.HasSuffix(b.Type, "PRIVATE KEY"):
		default:
			return nil, fmt.Errorf("PEM block %d is a %q, want CERTIFICATE", n, b.Type)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}

// pemPrivateKey parses the one private key of data: PKCS#8 ("PRIVATE
// KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
// CERTIFICATE blocks are skipped when skipCerts is set (a combined
// cert+key file); any other block, a second key, an encrypted key or bytes
// that are not PEM is an error.
func pemPrivateKey(data []byte, skipCerts bool) (crypto.Signer, error) {
	rest := bytes.TrimSpace(data)
	if len(rest) == 0 {
		return nil, errors.New("empty")
	}
	var key crypto.Signer
	for n := 1; len(rest) > 0; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("PEM block %d: not PEM", n)
		}
		rest = bytes.TrimSpace(rest)
		if skipCerts && b.Type == "CERTIFICATE" {
			continue
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("PEM block %d is a %q, want a private key", n, b.Type)
		}
		if key != nil {
			return nil, fmt.Errorf("PEM block %d: a second private key", n)
		}
		if _, encrypted := b.Headers["DEK-Info"]; encrypted || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %d: the private key is encrypted", n)
		}
		k, err := parsePrivateKeyDER(b.Type, b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, b.Type, err)
		}
		key = k
	}
	if key == nil {
		return nil, errors.New("no private key PEM block")
	}
	return key, nil
}

func parsePrivateKeyDER(typ string, der []byte) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch typ {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(der)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(der)
	default:
		return nil, fmt.Errorf("unsupported private key type %q (want PKCS#8, SEC 1 EC or PKCS#1 RSA)", typ)
	}
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key %T", k)
}

// keyMatchesCert reports whether key is the private key of cert.
func keyMatchesCert(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// checkSVIDChain applies the X509-SVID rules to chain (leaf first) and key
// and returns the leaf's SPIFFE ID: exactly one URI SAN, a valid SPIFFE ID
// with a path; the leaf is not a CA, may sign (digitalSignature) and may
// not sign certificates or CRLs; its extended key usages, if any, allow
// both client and server authentication (every ztn connection is mutual
// TLS); every further certificate is a CA; key is the leaf's private key.
// It does not verify signatures or validity periods.
func checkSVIDChain(chain []*x509.Certificate, key crypto.Signer) (spiffeid.ID, error) {
	if len(chain) == 0 {
		return spiffeid.ID{}, errors.New("no certificate")
	}
	leaf := chain[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("leaf certificate: %w", err)
	}
	switch {
	case id.Path() == "":
		return id, fmt.Errorf("leaf certificate: SPIFFE ID %s has no path", id)
	case leaf.IsCA:
		return id, errors.New("leaf certificate is a CA")
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return id, errors.New("leaf certificate lacks the digitalSignature key usage")
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return id, errors.New("leaf certificate has the keyCertSign or cRLSign key usage")
	case !mTLSUsage(leaf.ExtKeyUsage):
		return id, errors.New("leaf certificate's extended key usage does not allow both client and server authentication")
	case key == nil:
		return id, errors.New("no private key")
	case !keyMatchesCert(key, leaf):
		return id, errors.New("the private key does not match the leaf certificate")
	}
	for i, c := range chain[1:] {
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return id, fmt.Errorf("certificate %d of the chain (%s) is not a CA certificate that may sign certificates", i+2, certName(c))
		}
	}
	return id, nil
}

// mTLSUsage reports whether extended key usages eku (none means any) allow
// both client and server authentication.
func mTLSUsage(eku []x509.ExtKeyUsage) bool {
	if len(eku) == 0 || slices.Contains(eku, x509.ExtKeyUsageAny) {
		return true
	}
	return slices.Contains(eku, x509.ExtKeyUsageClientAuth) && slices.Contains(eku, x509.ExtKeyUsageServerAuth)
}

// sameCertSet reports whether a and b hold the same certificates, in any
// order.
func sameCertSet(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, c := range a {
		if !containsCert(b, c) {
			return false
		}
	}
	return true
}

// certName names c in messages: its subject, or its serial number when the
// subject is empty (as in SPIFFE leaves).
func certName(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "serial " + c.SerialNumber.Text(16)
}
