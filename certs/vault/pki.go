package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func mountPKI(ctx context.Context, c *api.Client, mount string, maxTTL time.Duration) error {
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("vault: bootstrap: list mounts: %w", describeError(c.Address(), err))
	}
	ttl := fmt.Sprintf("%ds", int64(maxTTL/time.Second))
	if m, ok := mounts[mount+"/"]; ok {
		if m.Type != "pki" {
			return fmt.Errorf("vault: bootstrap: %s/ is a %q engine, not pki", mount, m.Type)
		}
		if err := c.Sys().TuneMountWithContext(ctx, mount, api.MountConfigInput{MaxLeaseTTL: ttl}); err != nil {
			return fmt.Errorf("vault: bootstrap: tune %s/: %w", mount, describeError(c.Address(), err))
		}
		return nil
	}
	err = c.Sys().MountWithContext(ctx, mount, &api.MountInput{
		Type:        "pki",
		Description: "ztn workload identities",
		Config:      api.MountConfigInput{MaxLeaseTTL: ttl},
	})
	if err != nil {
		return fmt.Errorf("vault: bootstrap: mount pki at %s/: %w", mount, describeError(c.Address(), err))
	}
	return nil
}

// listIssuers returns the mount's issuer IDs and the default one.
func listIssuers(ctx context.Context, c *api.Client, mount string) (ids []string, def string, err error) {
	s, err := c.Logical().ListWithContext(ctx, mount+"/issuers")
	if err != nil {
		return nil, "", fmt.Errorf("vault: list issuers at %s/: %w", mount, describeError(c.Address(), err))
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
		return "", fmt.Errorf("vault: %s at %s/: %w", path, mount, describeError(c.Address(), err))
	}
	id, _ := secretString(s, "issuer_id")
	if id == "" {
		return "", fmt.Errorf("vault: %s at %s/: no issuer_id in the response", path, mount)
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
		return "", fmt.Errorf("vault: generate intermediate at %s/: %w", mount, describeError(c.Address(), err))
	}
	csr, _ := secretString(s, "csr")
	keyID, _ := secretString(s, "key_id")
	if csr == "" || keyID == "" {
		return "", fmt.Errorf("vault: generate intermediate at %s/: no csr or key_id in the response", mount)
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
		return "", fmt.Errorf("vault: sign the intermediate with issuer %s at %s/: %w", root, mount, describeError(c.Address(), err))
	}
	cert, _ := secretString(s, "certificate")
	issuing, _ := secretString(s, "issuing_ca")
	if cert == "" {
		return "", fmt.Errorf("vault: sign the intermediate at %s/: no certificate in the response", mount)
	}
	s, err = c.Logical().WriteWithContext(ctx, mount+"/intermediate/set-signed", map[string]any{
		"certificate": strings.TrimSpace(cert) + "\n" + strings.TrimSpace(issuing) + "\n",
	})
	if err != nil {
		return "", fmt.Errorf("vault: import the intermediate at %s/: %w", mount, describeError(c.Address(), err))
	}
	mapping, _ := s.Data["mapping"].(map[string]any)
	id := ""
	for issuer, key := range mapping {
		if key == keyID {
			id = issuer
		}
	}
	if id == "" {
		return "", fmt.Errorf("vault: import the intermediate at %s/: no issuer for key %s in the response", mount, keyID)
	}
	_, err = c.Logical().WriteWithContext(ctx, mount+"/issuer/"+id, map[string]any{
		"issuer_name":             name,
		"leaf_not_after_behavior": "truncate",
	})
	if err != nil {
		return "", fmt.Errorf("vault: configure issuer %s at %s/: %w", id, mount, describeError(c.Address(), err))
	}
	return id, nil
}

func setDefaultIssuer(ctx context.Context, c *api.Client, mount, id string) error {
	_, err := c.Logical().WriteWithContext(ctx, mount+"/config/issuers", map[string]any{"default": id})
	if err != nil {
		return fmt.Errorf("vault: make %s the default issuer at %s/: %w", id, mount, describeError(c.Address(), err))
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
