package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
)

// BootstrapConfig describes the Vault PKI setup that [Bootstrap] makes.
// TrustDomain is required; everything else has a default.
type BootstrapConfig struct {
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
	// NotBefore is how far back leaves are dated, for clock skew. It counts
	// in the leaf's lifetime, from which the renewal moment is measured,
	// so it must stay well under LeafTTL, and Bootstrap refuses one of
	// LeafTTL or more. Vault counts it in whole seconds, at least 1 (it
	// reads 0 as its default, 30s): a fraction is rounded up. Default:
	// LeafTTL/10 between 1s and 30s (Vault's own default): 30s for leaves
	// of 5m or more, 3s for leaves of 30s, 1s under 20s.
	NotBefore time.Duration

	// PolicyPrefix names the policy written for each service, <prefix><service>
	// (default "ztn-"): it allows signing with the service's role and reading
	// the role, nothing else. The issuers are readable without a token.
	PolicyPrefix string
	// NoPolicies skips writing the policies.
	NoPolicies bool
	// CommonNames lets each role also sign its service's name as the
	// certificate's subject common name ([Config].CommonName), kept out of
	// the SANs, for servers that name a client by its CN (Postgres's "cert"
	// authentication). Service names must then be valid host names. No
	// other name is allowed either way.
	CommonNames bool
}

// PKI is what [Bootstrap] set up.
type PKI struct {
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

// Bootstrap sets up a PKI mount for ztn with client, whose token needs
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
//     SPIFFE ID (exact allowed_uri_sans, no CN — unless CommonNames allows
//     the service's name —, DNS, IP or other name, EC keys,
//     client and server auth, no_store, no lease), and a policy allowing it.
func Bootstrap(ctx context.Context, client *api.Client, b BootstrapConfig) (*PKI, error) {
	b.setDefaults()
	switch {
	case b.TrustDomain.IsZero():
		return nil, errors.New("vault: bootstrap: no trust domain")
	case b.NotBefore < 0:
		return nil, fmt.Errorf("vault: bootstrap: negative NotBefore %v", b.NotBefore)
	case b.NotBefore >= b.LeafTTL:
		return nil, fmt.Errorf("vault: bootstrap: NotBefore %v is not under LeafTTL %v: leaves would be renewed as soon as issued (keep it at a tenth of LeafTTL or less)", b.NotBefore, b.LeafTTL)
	}
	ids := make(map[string]spiffeid.ID, len(b.Services))
	for _, s := range b.Services {
		id, err := ztn.NewServiceID(b.TrustDomain, b.Datacenter, s).SPIFFEID()
		if err != nil {
			return nil, fmt.Errorf("vault: bootstrap: service %q: %w", s, err)
		}
		ids[s] = id
	}
	if err := mountPKI(ctx, client, b.Mount, b.RootTTL); err != nil {
		return nil, err
	}
	pki := &PKI{Mount: b.Mount, Roles: map[string]string{}, Policies: map[string]string{}}
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
			return nil, fmt.Errorf("vault: bootstrap: write policy %q: %w", name, describeError(client.Address(), err))
		}
		pki.Policies[s] = name
	}
	return pki, nil
}

func (b *BootstrapConfig) setDefaults() {
	b.Mount = strings.Trim(b.Mount, "/")
	if b.Mount == "" {
		b.Mount = DefaultMount
	}
	if b.Datacenter == "" {
		b.Datacenter = "dc1"
	}
	b.RootTTL = cmpOr(b.RootTTL, 10*365*24*time.Hour)
	b.IntermediateTTL = cmpOr(b.IntermediateTTL, 365*24*time.Hour)
	b.LeafTTL = cmpOr(b.LeafTTL, time.Hour)
	b.LeafMaxTTL = cmpOr(b.LeafMaxTTL, 24*time.Hour)
	b.LeafMaxTTL = max(b.LeafMaxTTL, b.LeafTTL)
	if b.NotBefore == 0 {
		b.NotBefore = defaultNotBefore(b.LeafTTL)
	} else if b.NotBefore > 0 && b.NotBefore%time.Second != 0 {
		b.NotBefore = b.NotBefore.Truncate(time.Second) + time.Second
	}
	if b.PolicyPrefix == "" {
		b.PolicyPrefix = "ztn-"
	}
}

// defaultNotBefore is the backdating of leaves of lifetime ttl that
// Bootstrap uses when BootstrapConfig.NotBefore is zero: ttl/10 in whole
// seconds, between 1s and 30s.
func defaultNotBefore(ttl time.Duration) time.Duration {
	return max(time.Second, min(ttl/10, 30*time.Second).Truncate(time.Second))
}

func writeRole(ctx context.Context, c *api.Client, b BootstrapConfig, service string, id spiffeid.ID) error {
	role := map[string]any{
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
	}
	if b.CommonNames {
		// The service's bare name only, as the CN (the sign request's
		// exclude_cn_from_sans keeps it out of the DNS SANs).
		role["allowed_domains"] = []string{service}
		role["allow_bare_domains"] = true
	}
	_, err := c.Logical().WriteWithContext(ctx, b.Mount+"/roles/"+service, role)
	if err != nil {
		return fmt.Errorf("vault: bootstrap: write role %q at %s/: %w", service, b.Mount, describeError(c.Address(), err))
	}
	return nil
}
