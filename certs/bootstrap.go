package certs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
)

// VaultBootstrap describes the Vault PKI setup that BootstrapVault makes.
// TrustDomain is required; everything else has a default.
type VaultBootstrap struct {
	// Mount is the PKI secrets engine's path (default "pki").
	Mount       string
	TrustDomain spiffeid.TrustDomain
	// Datacenter of the services' SPIFFE IDs (default "dc1").
	Datacenter string
	// Services get one role each, named after the service, that signs only
	// spiffe://<TrustDomain>/ns/default/dc/<Datacenter>/svc/<service>.
	Services []string

	// RootTTL (default 10 years) and IntermediateTTL (default 1 year) are the
	// lifetimes of the CA certificates made when the mount has no issuer yet.
	RootTTL         time.Duration
	IntermediateTTL time.Duration
	// LeafTTL (default 1h) and LeafMaxTTL (default 24h) are the roles' ttl
	// and max_ttl.
	LeafTTL    time.Duration
	LeafMaxTTL time.Duration
	// NotBefore is how far back leaves are dated, for clock skew (default
	// 30s, Vault's default). Keep it well under LeafTTL: the renewal moment
	// is measured from NotBefore.
	NotBefore time.Duration

	// PolicyPrefix names the policy written for each service, <prefix><service>
	// (default "ztn-"): it allows signing with the service's role and reading
	// the role, nothing else. The issuers are readable without a token.
	PolicyPrefix string
	// NoPolicies skips writing the policies.
	NoPolicies bool
}

// VaultPKI is what BootstrapVault set up.
type VaultPKI struct {
	Mount string
	// Created tells whether the CA was made now; false when the mount already
	// had issuers, which were kept.
	Created bool
	// RootIssuer and IntermediateIssuer are issuer IDs; the intermediate is
	// the mount's default issuer, which the roles sign with. When the CA
	// existed already, RootIssuer is empty and IntermediateIssuer is the
	// default issuer.
	RootIssuer         string
	IntermediateIssuer string
	// Roles maps each service to its role; Policies to its policy.
	Roles    map[string]string
	Policies map[string]string
}

// BootstrapVault sets up a PKI mount for ztn with client, whose token needs
// the rights to mount engines and write policies (a root or admin token).
// It is idempotent:
//
//   - it mounts a PKI engine at Mount unless one is there (and raises the
//     mount's max lease TTL to RootTTL);
//   - if the mount has no issuer, it generates a root (EC P-256, key kept in
//     Vault, URI SAN spiffe://<TrustDomain>, name-constrained to URIs of the
//     trust domain) and an intermediate signed by it, both in the mount, and
//     makes the intermediate the default issuer (leaf_not_after_behavior
//     truncate); otherwise it keeps the existing CA;
//   - it writes, for each service, a role that can sign only that service's
//     SPIFFE ID (exact allowed_uri_sans, no CN, DNS, IP or other name, EC keys,
//     client and server auth, no_store, no lease), and a policy allowing it.
func BootstrapVault(ctx context.Context, client *api.Client, b VaultBootstrap) (*VaultPKI, error) {
	b.setDefaults()
	if b.TrustDomain.IsZero() {
		return nil, errors.New("certs: vault bootstrap: no trust domain")
	}
	ids := make(map[string]spiffeid.ID, len(b.Services))
	for _, s := range b.Services {
		id, err := ztn.NewServiceID(b.TrustDomain, b.Datacenter, s).SPIFFEID()
		if err != nil {
			return nil, fmt.Errorf("certs: vault bootstrap: service %q: %w", s, err)
		}
		ids[s] = id
	}
	if err := mountPKI(ctx, client, b.Mount, b.RootTTL); err != nil {
		return nil, err
	}
	pki := &VaultPKI{Mount: b.Mount, Roles: map[string]string{}, Policies: map[string]string{}}
	issuers, def, err := listIssuers(ctx, client, b.Mount)
	if err != nil {
		return nil, err
	}
	if len(issuers) == 0 {
		root, err := generateRoot(ctx, client, b.Mount, "root/generate/internal", b.TrustDomain, b.RootTTL)
		if err != nil {
			return nil, err
		}
		inter, err := generateIntermediate(ctx, client, b.Mount, root, b.TrustDomain, b.IntermediateTTL)
		if err != nil {
			return nil, err
		}
		if err := setDefaultIssuer(ctx, client, b.Mount, inter); err != nil {
			return nil, err
		}
		pki.Created, pki.RootIssuer, pki.IntermediateIssuer = true, root, inter
	} else {
		pki.IntermediateIssuer = def
	}
	for _, s := range b.Services {
		if err := writeRole(ctx, client, b, s, ids[s]); err != nil {
			return nil, err
		}
		pki.Roles[s] = s
		if b.NoPolicies {
			continue
		}
		name := b.PolicyPrefix + s
		policy := fmt.Sprintf("# ztn: %s may sign its own SPIFFE ID only\n"+
			"path %q {\n  capabilities = [\"create\", \"update\"]\n}\n"+
			"path %q {\n  capabilities = [\"read\"]\n}\n",
			s, b.Mount+"/sign/"+s, b.Mount+"/roles/"+s)
		if err := client.Sys().PutPolicyWithContext(ctx, name, policy); err != nil {
			return nil, fmt.Errorf("certs: vault bootstrap: write policy %q: %w", name, describeVaultError(client.Address(), err))
		}
		pki.Policies[s] = name
	}
	return pki, nil
}

func (b *VaultBootstrap) setDefaults() {
	b.Mount = strings.Trim(b.Mount, "/")
	if b.Mount == "" {
		b.Mount = DefaultVaultMount
	}
	if b.Datacenter == "" {
		b.Datacenter = "dc1"
	}
	b.RootTTL = cmpOr(b.RootTTL, 10*365*24*time.Hour)
	b.IntermediateTTL = cmpOr(b.IntermediateTTL, 365*24*time.Hour)
	b.LeafTTL = cmpOr(b.LeafTTL, time.Hour)
	b.LeafMaxTTL = cmpOr(b.LeafMaxTTL, 24*time.Hour)
	b.LeafMaxTTL = max(b.LeafMaxTTL, b.LeafTTL)
	if b.NotBefore <= 0 {
		b.NotBefore = 30 * time.Second
	}
	if b.PolicyPrefix == "" {
		b.PolicyPrefix = "ztn-"
	}
}

// VaultCARotation describes a CA rotation made by RotateVaultCA.
type VaultCARotation struct {
	// Mount is the PKI mount (default "pki").
	Mount       string
	TrustDomain spiffeid.TrustDomain
	// RootTTL and IntermediateTTL as in VaultBootstrap.
	RootTTL         time.Duration
	IntermediateTTL time.Duration
	// Propagation is how long to wait between publishing the new root and
	// signing with it, so that every service has read it first (at least
	// the services' VaultConfig.BundleRefresh; default 2m).
	Propagation time.Duration
}

// VaultRotatedCA is the result of RotateVaultCA.
type VaultRotatedCA struct {
	// RootIssuer and IntermediateIssuer are the new issuers; the
	// intermediate is now the default.
	RootIssuer         string
	IntermediateIssuer string
	// Previous are the issuers that were there before. Delete them (DELETE
	// <mount>/issuer/<id>) once the roles' max_ttl has passed, when no leaf
	// they signed can still be valid; services keep trusting a deleted root
	// for VaultConfig.RootRetention.
	Previous []string
}

// RotateVaultCA rotates the CA of a mount set up by BootstrapVault, with
// Vault's multi-issuer operations and without breaking a connection: it
// makes a new root (root/rotate/internal), which services add to their trust
// bundle at their next refresh, and a new intermediate signed by it; after
// Propagation it makes the new intermediate the default issuer, and services
// move their leaves to it within their root change window. The old issuers
// stay until deleted.
func RotateVaultCA(ctx context.Context, client *api.Client, r VaultCARotation) (*VaultRotatedCA, error) {
	mount := strings.Trim(r.Mount, "/")
	if mount == "" {
		mount = DefaultVaultMount
	}
	if r.TrustDomain.IsZero() {
		return nil, errors.New("certs: vault rotate: no trust domain")
	}
	prev, _, err := listIssuers(ctx, client, mount)
	if err != nil {
		return nil, err
	}
	root, err := generateRoot(ctx, client, mount, "root/rotate/internal", r.TrustDomain, cmpOr(r.RootTTL, 10*365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	inter, err := generateIntermediate(ctx, client, mount, root, r.TrustDomain, cmpOr(r.IntermediateTTL, 365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(cmpOr(r.Propagation, 2*time.Minute))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("certs: vault rotate: new issuers %s (root) and %s were made, not made default: %w", root, inter, ctx.Err())
	case <-t.C:
	}
	if err := setDefaultIssuer(ctx, client, mount, inter); err != nil {
		return nil, err
	}
	return &VaultRotatedCA{RootIssuer: root, IntermediateIssuer: inter, Previous: prev}, nil
}

func mountPKI(ctx context.Context, c *api.Client, mount string, maxTTL time.Duration) error {
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("certs: vault bootstrap: list mounts: %w", describeVaultError(c.Address(), err))
	}
	ttl := fmt.Sprintf("%ds", int64(maxTTL/time.Second))
	if m, ok := mounts[mount+"/"]; ok {
		if m.Type != "pki" {
			return fmt.Errorf("certs: vault bootstrap: %s/ is a %q engine, not pki", mount, m.Type)
		}
		if err := c.Sys().TuneMountWithContext(ctx, mount, api.MountConfigInput{MaxLeaseTTL: ttl}); err != nil {
			return fmt.Errorf("certs: vault bootstrap: tune %s/: %w", mount, describeVaultError(c.Address(), err))
		}
		return nil
	}
	err = c.Sys().MountWithContext(ctx, mount, &api.MountInput{
		Type:        "pki",
		Description: "ztn workload identities",
		Config:      api.MountConfigInput{MaxLeaseTTL: ttl},
	})
	if err != nil {
		return fmt.Errorf("certs: vault bootstrap: mount pki at %s/: %w", mount, describeVaultError(c.Address(), err))
	}
	return nil
}

// listIssuers returns the mount's issuer IDs and the default one.
func listIssuers(ctx context.Context, c *api.Client, mount string) (ids []string, def string, err error) {
	s, err := c.Logical().ListWithContext(ctx, mount+"/issuers")
	if err != nil {
		return nil, "", fmt.Errorf("certs: vault: list issuers at %s/: %w", mount, describeVaultError(c.Address(), err))
	}
	if s == nil {
		return nil, "", nil
	}
	keys, _ := s.Data["keys"].([]any)
	info, _ := s.Data["key_info"].(map[string]any)
	for _, k := range keys {
		id, _ := k.(string)
		ids = append(ids, id)
		if m, _ := info[id].(map[string]any); m != nil && m["is_default"] == true {
			def = id
		}
	}
	return ids, def, nil
}

// generateRoot makes a root issuer at path (root/generate/internal or
// root/rotate/internal) and returns its ID.
func generateRoot(ctx context.Context, c *api.Client, mount, path string, td spiffeid.TrustDomain, ttl time.Duration) (string, error) {
	name := "ztn-root-" + shortID()
	s, err := c.Logical().WriteWithContext(ctx, mount+"/"+path, map[string]any{
		"common_name":           "ztn root " + td.Name() + " " + name[len("ztn-root-"):],
		"uri_sans":              td.ID().String(),
		"key_type":              "ec",
		"key_bits":              256,
		"ttl":                   fmt.Sprintf("%ds", int64(ttl/time.Second)),
		"issuer_name":           name,
		"key_name":              name,
		"permitted_uri_domains": td.Name(),
		"max_path_length":       1,
	})
	if err != nil {
		return "", fmt.Errorf("certs: vault: %s at %s/: %w", path, mount, describeVaultError(c.Address(), err))
	}
	id, _ := secretString(s, "issuer_id")
	if id == "" {
		return "", fmt.Errorf("certs: vault: %s at %s/: no issuer_id in the response", path, mount)
	}
	return id, nil
}

// generateIntermediate makes an intermediate issuer in the mount, signed by
// the root issuer, and returns its ID. Its key stays in Vault.
func generateIntermediate(ctx context.Context, c *api.Client, mount, root string, td spiffeid.TrustDomain, ttl time.Duration) (string, error) {
	name := "ztn-int-" + shortID()
	cn := "ztn intermediate " + td.Name() + " " + name[len("ztn-int-"):]
	s, err := c.Logical().WriteWithContext(ctx, mount+"/intermediate/generate/internal", map[string]any{
		"common_name": cn,
		"key_type":    "ec",
		"key_bits":    256,
		"key_name":    name,
	})
	if err != nil {
		return "", fmt.Errorf("certs: vault: generate intermediate at %s/: %w", mount, describeVaultError(c.Address(), err))
	}
	csr, _ := secretString(s, "csr")
	keyID, _ := secretString(s, "key_id")
	if csr == "" || keyID == "" {
		return "", fmt.Errorf("certs: vault: generate intermediate at %s/: no csr or key_id in the response", mount)
	}
	s, err = c.Logical().WriteWithContext(ctx, mount+"/issuer/"+root+"/sign-intermediate", map[string]any{
		"csr":                   csr,
		"common_name":           cn,
		"ttl":                   fmt.Sprintf("%ds", int64(ttl/time.Second)),
		"format":                "pem",
		"max_path_length":       0,
		"permitted_uri_domains": td.Name(),
	})
	if err != nil {
		return "", fmt.Errorf("certs: vault: sign the intermediate with issuer %s at %s/: %w", root, mount, describeVaultError(c.Address(), err))
	}
	cert, _ := secretString(s, "certificate")
	issuing, _ := secretString(s, "issuing_ca")
	if cert == "" {
		return "", fmt.Errorf("certs: vault: sign the intermediate at %s/: no certificate in the response", mount)
	}
	s, err = c.Logical().WriteWithContext(ctx, mount+"/intermediate/set-signed", map[string]any{
		"certificate": strings.TrimSpace(cert) + "\n" + strings.TrimSpace(issuing) + "\n",
	})
	if err != nil {
		return "", fmt.Errorf("certs: vault: import the intermediate at %s/: %w", mount, describeVaultError(c.Address(), err))
	}
	mapping, _ := s.Data["mapping"].(map[string]any)
	id := ""
	for issuer, key := range mapping {
		if key == keyID {
			id = issuer
		}
	}
	if id == "" {
		return "", fmt.Errorf("certs: vault: import the intermediate at %s/: no issuer for key %s in the response", mount, keyID)
	}
	_, err = c.Logical().WriteWithContext(ctx, mount+"/issuer/"+id, map[string]any{
		"issuer_name":             name,
		"leaf_not_after_behavior": "truncate",
	})
	if err != nil {
		return "", fmt.Errorf("certs: vault: configure issuer %s at %s/: %w", id, mount, describeVaultError(c.Address(), err))
	}
	return id, nil
}

func setDefaultIssuer(ctx context.Context, c *api.Client, mount, id string) error {
	_, err := c.Logical().WriteWithContext(ctx, mount+"/config/issuers", map[string]any{"default": id})
	if err != nil {
		return fmt.Errorf("certs: vault: make %s the default issuer at %s/: %w", id, mount, describeVaultError(c.Address(), err))
	}
	return nil
}

func writeRole(ctx context.Context, c *api.Client, b VaultBootstrap, service string, id spiffeid.ID) error {
	_, err := c.Logical().WriteWithContext(ctx, b.Mount+"/roles/"+service, map[string]any{
		"allowed_uri_sans":            id.String(), // exact: go-glob's * would also match '/'
		"allowed_uri_sans_template":   false,
		"allowed_domains":             []string{},
		"allow_any_name":              false,
		"allow_bare_domains":          false,
		"allow_subdomains":            false,
		"allow_glob_domains":          false,
		"allow_wildcard_certificates": false,
		"allow_localhost":             false,
		"allow_ip_sans":               false,
		"allowed_other_sans":          []string{},
		"allowed_user_ids":            []string{},
		"enforce_hostnames":           true,
		"require_cn":                  false,
		"use_csr_common_name":         true,
		"use_csr_sans":                true,
		"key_type":                    "ec",
		"key_bits":                    256,
		"key_usage":                   []string{"DigitalSignature"},
		"ext_key_usage":               []string{},
		"server_flag":                 true,
		"client_flag":                 true,
		"code_signing_flag":           false,
		"email_protection_flag":       false,
		"no_store":                    true,
		"generate_lease":              false,
		"issuer_ref":                  "default",
		"ttl":                         fmt.Sprintf("%ds", int64(b.LeafTTL/time.Second)),
		"max_ttl":                     fmt.Sprintf("%ds", int64(b.LeafMaxTTL/time.Second)),
		"not_before_duration":         fmt.Sprintf("%ds", int64(b.NotBefore/time.Second)),
	})
	if err != nil {
		return fmt.Errorf("certs: vault bootstrap: write role %q at %s/: %w", service, b.Mount, describeVaultError(c.Address(), err))
	}
	return nil
}

func secretString(s *api.Secret, key string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.Data[key].(string)
	return v, ok
}

func shortID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102150405") + "-" + hex.EncodeToString(b)
}
