package vault

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

// TestBootstrapNotBeforeRefused: a NotBefore of LeafTTL or more, or a
// negative one, is refused before Vault is asked anything (the client points
// nowhere).
func TestBootstrapNotBeforeRefused(t *testing.T) {
	t.Parallel()
	nowhere := vaultClient(t, "http://127.0.0.1:1", "no-token")
	for _, tc := range []struct {
		ttl, notBefore time.Duration
		want           string
	}{
		{30 * time.Second, 30 * time.Second, "NotBefore 30s is not under LeafTTL 30s"},
		{30 * time.Second, time.Minute, "NotBefore 1m0s is not under LeafTTL 30s"},
		{0, 2 * time.Hour, "NotBefore 2h0m0s is not under LeafTTL 1h0m0s"},                 // LeafTTL's default
		{time.Second, 0, "NotBefore 1s is not under LeafTTL 1s"},                           // the default, at least 1s
		{2 * time.Second, 1500 * time.Millisecond, "NotBefore 2s is not under LeafTTL 2s"}, // rounded up
		{time.Hour, -time.Second, "negative NotBefore -1s"},
	} {
		_, err := Bootstrap(context.Background(), nowhere, BootstrapConfig{TrustDomain: testTD, LeafTTL: tc.ttl, NotBefore: tc.notBefore})
		if err == nil || !strings.HasPrefix(err.Error(), "vault: bootstrap: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LeafTTL %v, NotBefore %v: %v, want %q", tc.ttl, tc.notBefore, err, tc.want)
		}
	}
}

// TestBootstrapNotBeforeDefault: without NotBefore, leaves are backdated by
// a tenth of their TTL, between 1s and 30s: a 30s leaf by 3s (it was 30s
// whatever the TTL, doubling a 30s leaf's life and renewing it at once),
// a 5s leaf by 1s (Vault reads 0 as 30s), a 1h leaf by 30s. Checked on
// leaves that real Vault signs.
func TestBootstrapNotBeforeDefault(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	for _, tc := range []struct {
		mount string
		ttl   time.Duration
		want  time.Duration
	}{
		{"pki30s", 30 * time.Second, 3 * time.Second},
		{"pki5s", 5 * time.Second, time.Second},
		{"pki1h", time.Hour, 30 * time.Second},
	} {
		_, err := Bootstrap(context.Background(), e.root, BootstrapConfig{
			Mount: tc.mount, TrustDomain: testTD, Services: []string{"web"}, LeafTTL: tc.ttl,
		})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now().Truncate(time.Second)
		s := e.write(t, tc.mount+"/sign/web", map[string]any{"csr": csrPEM(t, "", nil, serviceID("web").String()), "format": "pem"})
		after := time.Now()
		block, _ := pem.Decode([]byte(s.Data["certificate"].(string)))
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		// Vault dates in whole seconds: NotBefore is now - want, truncated.
		if nb := leaf.NotBefore; nb.Before(before.Add(-tc.want-time.Second)) || nb.After(after.Add(-tc.want)) {
			t.Errorf("%s: leaf of TTL %v dated %v before issuance, want about %v", tc.mount, tc.ttl, after.Sub(nb).Round(time.Second), tc.want)
		}
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life > tc.ttl+tc.want+time.Second {
			t.Errorf("%s: leaf lives %v, want TTL %v + NotBefore %v", tc.mount, life, tc.ttl, tc.want)
		}
	}
}
