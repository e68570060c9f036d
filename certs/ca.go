package certs

import (
	"errors"
	"fmt"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// CAInfo says which certificate authority signed a Source's current leaf
// and which roots the Source trusts in the leaf's trust domain: what an
// operator follows during a CA rotation (the new root joins Roots: it is
// published; then LeafIssuer and LeafRoot move to it: the switch happened;
// later the old root leaves Roots). Key IDs are printed as openssl prints
// a Subject Key Identifier ("3A:1F:..."); a certificate without one gets
// the SHA-1 of its public key (RFC 5280, method 1).
//
// The same figures are metrics of every source of this package and its
// backends: ztn.certs.roots (by trust_domain) and ztn.certs.leaf_issuer
// (issuer_key_id, root_key_id).
type CAInfo struct {
	// LeafIssuer is the key ID of the CA that signed the leaf: an
	// intermediate (Vault) or a root.
	LeafIssuer string
	// LeafRoot is the key ID of the root of Roots that the leaf chains to
	// by the shortest path; "" if it does not verify now.
	LeafRoot string
	// Roots are the key IDs of the roots in the bundle of the leaf's trust
	// domain.
	Roots []string
}

// InspectCA returns the CAInfo of src's current SVID and bundle, or the
// error of src's getters (an expired leaf, a closed source...).
func InspectCA(src Source) (CAInfo, error) {
	if src == nil {
		return CAInfo{}, errors.New("certs: inspect CA: nil Source")
	}
	svid, err := src.GetX509SVID()
	if err != nil {
		return CAInfo{}, err
	}
	bundle, err := src.GetX509BundleForTrustDomain(svid.ID.TrustDomain())
	if err != nil {
		return CAInfo{}, fmt.Errorf("certs: inspect CA: %w", err)
	}
	issuer, root := certsx.LeafCA(svid, bundle)
	return CAInfo{LeafIssuer: issuer, LeafRoot: root, Roots: certsx.RootKeyIDs(bundle)}, nil
}
