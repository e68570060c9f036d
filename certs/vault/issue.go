package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
)

// signResponse is the data of <mount>/sign/<role> with format=pem.
type signResponse struct {
	Certificate string   `json:"certificate"`
	IssuingCA   string   `json:"issuing_ca"`
	CAChain     []string `json:"ca_chain"`
}

// Issue implements certs.Issuer.
func (v *issuer) Issue(ctx context.Context) (*certs.Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("vault: generate key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: v.cn}, URIs: []*url.URL{v.id.URL()}}, key)
	if err != nil {
		return nil, fmt.Errorf("vault: CSR: %w", err)
	}
	body := map[string]any{
		"csr":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		"format": "pem",
		// A common name (Config.CommonName) is not a DNS name here.
		"exclude_cn_from_sans": true,
	}
	if v.ttl > 0 {
		body["ttl"] = fmt.Sprintf("%ds", int64((v.ttl+time.Second-1)/time.Second))
	}
	start := time.Now()
	var resp signResponse
	warnings, err := v.doWarn(ctx, http.MethodPost, v.mount+"/sign/"+v.role, body, &resp)
	latency := time.Since(start)
	if err != nil {
		return nil, v.signError(err)
	}
	chain, issuingCA, responseRoots, err := v.parseSigned(&resp, key)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	v.log.Debug("vault: certificate signed",
		"spiffe_id", v.id.String(), "role", v.role, "mount", v.mount,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter,
		"latency", latency, "warnings", warnings)

	v.mu.Lock()
	v.leafIssuer = issuingCA
	v.mu.Unlock()
	roots, err := v.refreshRoots(ctx)
	if err != nil {
		// The certificate is good; the bundle read failed. Keep what we
		// know, plus the roots Vault just returned with the certificate.
		v.log.Warn("vault: reading the trust bundle after issuance failed; using the last one", "error", err)
		roots = v.addRoots(time.Now(), responseRoots)
	}
	return &certs.Identity{
		SVID:    &x509svid.SVID{ID: v.id, Certificates: chain, PrivateKey: key},
		Bundles: []*x509bundle.Bundle{x509bundle.FromX509Authorities(v.td, roots)},
	}, nil
}

// parseSigned checks a signing response: the leaf must name exactly our
// SPIFFE ID, carry our key and be usable for mTLS. It returns the chain to
// serve (leaf, then intermediates, no self-signed root), the raw issuing CA
// and the self-signed roots of ca_chain.
func (v *issuer) parseSigned(resp *signResponse, key *ecdsa.PrivateKey) (chain []*x509.Certificate, issuingCA []byte, roots []*x509.Certificate, err error) {
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("vault: sign with role %q at %s/: malformed response: %s", v.role, v.mount, fmt.Sprintf(format, args...))
	}
	leaves, err := certsx.PEMCertificates([]byte(resp.Certificate), false)
	if err != nil {
		return nil, nil, nil, malformed("certificate: %v", err)
	}
	if len(leaves) != 1 {
		return nil, nil, nil, malformed("certificate: %d certificates, want 1", len(leaves))
	}
	leaf := leaves[0]
	if err := checkLeaf(leaf, key, v.id, v.cn); err != nil {
		return nil, nil, nil, fmt.Errorf("vault: sign with role %q at %s/: refusing the certificate Vault returned: %w", v.role, v.mount, err)
	}
	cas := resp.CAChain
	if len(cas) == 0 && resp.IssuingCA != "" {
		cas = []string{resp.IssuingCA}
	}
	if len(cas) == 0 {
		return nil, nil, nil, malformed("no issuing_ca or ca_chain")
	}
	chain = []*x509.Certificate{leaf}
	for i, p := range cas {
		cs, err := certsx.PEMCertificates([]byte(p), false)
		if err != nil {
			return nil, nil, nil, malformed("ca_chain[%d]: %v", i, err)
		}
		for _, c := range cs {
			switch {
			case isSelfSigned(c):
				if !certsx.ContainsCert(roots, c) {
					roots = append(roots, c)
				}
			case !certsx.ContainsCert(chain, c):
				chain = append(chain, c)
			}
		}
	}
	if len(chain) > 1 {
		issuingCA = chain[1].Raw
	} else if len(roots) > 0 {
		issuingCA = roots[0].Raw
	}
	return chain, issuingCA, roots, nil
}

// checkLeaf verifies that leaf is the certificate we asked for, with the
// common name cn ("": none).
func checkLeaf(leaf *x509.Certificate, key *ecdsa.PrivateKey, id spiffeid.ID, cn string) error {
	if leaf.Subject.CommonName != cn {
		return fmt.Errorf("its common name is %q, want %q", leaf.Subject.CommonName, cn)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		got := make([]string, len(leaf.URIs))
		for i, u := range leaf.URIs {
			got[i] = u.String()
		}
		return fmt.Errorf("its URI SANs are %q, want exactly [%s]", got, id)
	}
	if n := len(leaf.DNSNames) + len(leaf.IPAddresses) + len(leaf.EmailAddresses); n > 0 {
		return fmt.Errorf("it has %d DNS, IP or email SANs besides the SPIFFE ID (check the role: allow_any_name, allowed_domains, allow_ip_sans)", n)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("its public key is not the one of our CSR")
	}
	if leaf.IsCA {
		return errors.New("it is a CA certificate")
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return errors.New("it lacks the client or server auth extended key usage (set client_flag and server_flag on the role)")
	}
	return nil
}

// signError turns a failed <mount>/sign/<role> into an error that says what
// is wrong.
func (v *issuer) signError(err error) error {
	what := fmt.Sprintf("sign with role %q at %s/", v.role, v.mount)
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("vault: %s: %w", what, describeError(v.client.Address(), err))
	}
	msg := errorMessages(re)
	switch {
	case re.StatusCode == http.StatusForbidden && strings.Contains(msg, "invalid token"):
		v.keeper.kick()
		return fmt.Errorf("vault: %s: Vault rejects the token (expired or revoked; logging in again): %s", what, msg)
	case re.StatusCode == http.StatusForbidden:
		v.keeper.kick()
		return fmt.Errorf("vault: %s: permission denied (check the token's policy): %s", what, msg)
	case strings.Contains(msg, "unknown role"):
		return fmt.Errorf("vault: role %q not found at %s/", v.role, v.mount)
	case strings.Contains(msg, "no handler for route"):
		return fmt.Errorf("vault: mount %q not found (or it is not a PKI engine): %s", v.mount, msg)
	case strings.Contains(msg, "not valid for this role"), strings.Contains(msg, "role requires"):
		return fmt.Errorf("vault: role %q at %s/ refuses the CSR for %s: %s", v.role, v.mount, v.id, msg)
	}
	return fmt.Errorf("vault: %s: %w", what, describeError(v.client.Address(), err))
}
