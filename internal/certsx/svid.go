package certsx

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// SVIDTimeError says why svid cannot be handed out at now (expired, or not
// valid yet), or returns nil. lastErr is the last failure to replace it.
func SVIDTimeError(svid *x509svid.SVID, lastErr error, now time.Time) error {
	leaf := svid.Certificates[0]
	switch {
	case now.After(leaf.NotAfter) && lastErr != nil:
		return fmt.Errorf("SVID for %s expired at %s: last renewal error: %w",
			svid.ID, leaf.NotAfter.Format(time.RFC3339), lastErr)
	case now.After(leaf.NotAfter):
		return fmt.Errorf("SVID for %s expired at %s: no renewal yet",
			svid.ID, leaf.NotAfter.Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("SVID for %s not valid before %s",
			svid.ID, leaf.NotBefore.Format(time.RFC3339))
	}
	return nil
}

// keyMatchesCert reports whether key is the private key of cert.
func keyMatchesCert(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// CheckSVIDChain applies the X509-SVID rules to chain (leaf first) and key
// and returns the leaf's SPIFFE ID: exactly one URI SAN, a valid SPIFFE ID
// with a path; the leaf is not a CA, may sign (digitalSignature) and may
// not sign certificates or CRLs; its extended key usages, if any, allow
// both client and server authentication (every ztn connection is mutual
// TLS); every further certificate is a CA; key is the leaf's private key.
// It does not verify signatures or validity periods.
func CheckSVIDChain(chain []*x509.Certificate, key crypto.Signer) (spiffeid.ID, error) {
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
			return id, fmt.Errorf("certificate %d of the chain (%s) is not a CA certificate that may sign certificates", i+2, CertName(c))
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
