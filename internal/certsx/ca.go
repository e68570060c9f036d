package certsx

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// KeyID returns c's key identifier as openssl prints it (upper-case hex
// bytes joined by colons): its Subject Key Identifier, or, when it has
// none, the SHA-1 of its public key (RFC 5280, 4.2.1.2, method 1).
func KeyID(c *x509.Certificate) string {
	id := c.SubjectKeyId
	if len(id) == 0 {
		var spki struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err == nil {
			sum := sha1.Sum(spki.PublicKey.Bytes)
			id = sum[:]
		}
	}
	return formatKeyID(id)
}

func formatKeyID(id []byte) string {
	parts := make([]string, len(id))
	for i, b := range id {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// LeafCA returns the key IDs of the CA that signed svid's leaf (an
// intermediate or a root) and of the root of bundle it chains to, by the
// shortest verified path. A leaf that does not verify now (expired, say)
// has the issuer its Authority Key Identifier names and no root.
func LeafCA(svid *x509svid.SVID, bundle *x509bundle.Bundle) (issuer, root string) {
	leaf := svid.Certificates[0]
	_, chains, err := x509svid.Verify(svid.Certificates, bundle)
	if err != nil || len(chains) == 0 {
		return formatKeyID(leaf.AuthorityKeyId), ""
	}
	best := chains[0]
	for _, c := range chains[1:] {
		if len(c) < len(best) {
			best = c
		}
	}
	if len(best) < 2 { // a self-signed leaf in the bundle: not an SVID chain
		return formatKeyID(leaf.AuthorityKeyId), KeyID(best[0])
	}
	return KeyID(best[1]), KeyID(best[len(best)-1])
}

// RootKeyIDs returns the key IDs of bundle's roots, in its order.
func RootKeyIDs(bundle *x509bundle.Bundle) []string {
	auths := bundle.X509Authorities()
	ids := make([]string, len(auths))
	for i, a := range auths {
		ids[i] = KeyID(a)
	}
	return ids
}
