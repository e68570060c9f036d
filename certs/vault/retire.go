package vault

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// retireMargin is added to the roles' longest max_ttl before the previous
// issuers may be deleted: for a signing request in flight at the switch and
// for Vault's clock running ahead of ours.
const retireMargin = 5 * time.Second

// Retire is the last step of a CA rotation: it deletes the previous issuers
// (DELETE <mount>/issuer/<id>) with client, whose token needs the rights to.
// It refuses, deleting nothing, with an error saying why:
//
//   - before RetireAt, while a leaf they signed may still be valid;
//   - when a previous issuer is the mount's default issuer again (another
//     rotation or an operator changed it);
//   - when the mount stores a certificate (roles without no_store,
//     sign-verbatim) signed by a previous issuer that is not a CA, has not
//     expired and is not revoked.
//
// Issuers already gone are skipped, so Retire can be run again after a
// failure. Services keep trusting a deleted root for
// [Config.RootRetention].
func (r *RotatedCA) Retire(ctx context.Context, client *api.Client) error {
	if r == nil || r.Mount == "" || r.Switched.IsZero() {
		return errors.New("vault: retire CA: not the result of a completed RotateCA")
	}
	if now := time.Now(); now.Before(r.RetireAt) {
		return fmt.Errorf("vault: retire CA: leaves signed by the previous issuers may be valid until %s (%s from now): not deleting them yet",
			r.RetireAt.Format(time.RFC3339), r.RetireAt.Sub(now).Round(time.Second))
	}
	ids, def, err := listIssuers(ctx, client, r.Mount)
	if err != nil {
		return fmt.Errorf("vault: retire CA: %w", err)
	}
	var gone []string
	keyIDs := map[string]string{} // subject key ID -> issuer, of the previous issuers still there
	for _, id := range r.Previous {
		if !slices.Contains(ids, id) {
			gone = append(gone, id)
			continue
		}
		if id == def {
			return fmt.Errorf("vault: retire CA: previous issuer %s is the default issuer of %s/ again: not deleting it", id, r.Mount)
		}
		cert, err := issuerCertificate(ctx, client, r.Mount, id)
		if err != nil {
			return fmt.Errorf("vault: retire CA: %w", err)
		}
		keyIDs[string(cert.SubjectKeyId)] = id
	}
	if err := checkStoredLeaves(ctx, client, r.Mount, keyIDs); err != nil {
		return err
	}
	for _, id := range r.Previous {
		if slices.Contains(gone, id) {
			continue
		}
		if _, err := client.Logical().DeleteWithContext(ctx, r.Mount+"/issuer/"+id); err != nil {
			return fmt.Errorf("vault: retire CA: delete issuer %s at %s/: %w", id, r.Mount, describeError(client.Address(), err))
		}
	}
	return nil
}

// checkStoredLeaves fails if the mount stores an unexpired, unrevoked leaf
// signed by one of the issuers whose subject key IDs are in keyIDs.
func checkStoredLeaves(ctx context.Context, c *api.Client, mount string, keyIDs map[string]string) error {
	if len(keyIDs) == 0 {
		return nil
	}
	s, err := c.Logical().ListWithContext(ctx, mount+"/certs")
	if err != nil {
		return fmt.Errorf("vault: retire CA: list the certificates of %s/: %w", mount, describeError(c.Address(), err))
	}
	if s == nil {
		return nil
	}
	keys, _ := s.Data["keys"].([]any)
	now := time.Now()
	for _, k := range keys {
		serial, _ := k.(string)
		cs, err := c.Logical().ReadWithContext(ctx, mount+"/cert/"+serial)
		if err != nil {
			return fmt.Errorf("vault: retire CA: read certificate %s of %s/: %w", serial, mount, describeError(c.Address(), err))
		}
		if revoked, _ := cs.Data["revocation_time"].(json.Number); revoked != "" && revoked != "0" {
			continue
		}
		cert, err := parseOneCert(cs)
		if err != nil {
			return fmt.Errorf("vault: retire CA: certificate %s of %s/: %w", serial, mount, err)
		}
		if cert.IsCA || !now.Before(cert.NotAfter) {
			continue
		}
		if id, ok := keyIDs[string(cert.AuthorityKeyId)]; ok {
			return fmt.Errorf("vault: retire CA: previous issuer %s signed certificate %s, valid until %s and not revoked: not deleting the previous issuers (revoke it or wait)",
				id, serial, cert.NotAfter.Format(time.RFC3339))
		}
	}
	return nil
}

// issuerCertificate reads an issuer's certificate.
func issuerCertificate(ctx context.Context, c *api.Client, mount, id string) (*x509.Certificate, error) {
	s, err := c.Logical().ReadWithContext(ctx, mount+"/issuer/"+id+"/json")
	if err != nil {
		return nil, fmt.Errorf("read issuer %s at %s/: %w", id, mount, describeError(c.Address(), err))
	}
	cert, err := parseOneCert(s)
	if err != nil {
		return nil, fmt.Errorf("issuer %s at %s/: %w", id, mount, err)
	}
	return cert, nil
}

// parseOneCert parses the PEM certificate of a Vault response.
func parseOneCert(s *api.Secret) (*x509.Certificate, error) {
	p, _ := secretString(s, "certificate")
	block, _ := pem.Decode([]byte(strings.TrimSpace(p)))
	if block == nil {
		return nil, errors.New("no PEM certificate in the response")
	}
	return x509.ParseCertificate(block.Bytes)
}

// longestMaxTTL returns the longest max_ttl of the mount's roles (0 with
// none); a role without one is bounded by the mount's max lease TTL.
func longestMaxTTL(ctx context.Context, c *api.Client, mount string) (time.Duration, error) {
	s, err := c.Logical().ListWithContext(ctx, mount+"/roles")
	if err != nil {
		return 0, fmt.Errorf("list the roles of %s/: %w", mount, describeError(c.Address(), err))
	}
	if s == nil {
		return 0, nil
	}
	keys, _ := s.Data["keys"].([]any)
	var longest time.Duration
	for _, k := range keys {
		name, _ := k.(string)
		rs, err := c.Logical().ReadWithContext(ctx, mount+"/roles/"+name)
		if err != nil {
			return 0, fmt.Errorf("read role %q of %s/: %w", name, mount, describeError(c.Address(), err))
		}
		if rs == nil {
			continue
		}
		n, _ := rs.Data["max_ttl"].(json.Number)
		secs, err := n.Int64()
		if err != nil {
			return 0, fmt.Errorf("role %q of %s/: max_ttl %q: %w", name, mount, n, err)
		}
		if secs == 0 {
			mc, err := c.Sys().MountConfigWithContext(ctx, mount)
			if err != nil {
				return 0, fmt.Errorf("read the configuration of %s/ (role %q has no max_ttl): %w", mount, name, describeError(c.Address(), err))
			}
			secs = int64(mc.MaxLeaseTTL)
		}
		longest = max(longest, time.Duration(secs)*time.Second)
	}
	return longest, nil
}
