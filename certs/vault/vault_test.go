package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/certstest"
)

// TestVaultIssue: a real Vault signs our CSR; the SVID is leaf +
// intermediate, the key is P-256 and ours, the bundle is the mount's root.
func TestVaultIssue(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	r := newVault(t, e.config(t, "web"))

	svid, err := r.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != serviceID("web") {
		t.Errorf("ID = %s", svid.ID)
	}
	if len(svid.Certificates) != 2 {
		t.Fatalf("chain has %d certificates, want leaf + intermediate", len(svid.Certificates))
	}
	leaf, inter := svid.Certificates[0], svid.Certificates[1]
	if leaf.Subject.CommonName != "" || len(leaf.URIs) != 1 || len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 0 {
		t.Errorf("leaf names: CN %q, URIs %v, DNS %v, IP %v", leaf.Subject.CommonName, leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
	}
	if !inter.IsCA || isSelfSigned(inter) || !strings.Contains(inter.Subject.CommonName, "intermediate") {
		t.Errorf("second certificate is not the intermediate: %s", inter.Subject)
	}
	key, ok := svid.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Errorf("private key %T is not the leaf's P-256 key", svid.PrivateKey)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < time.Hour || life > time.Hour+2*time.Second {
		t.Errorf("leaf lifetime %v, want the role's 1h (+1s backdating)", life)
	}
	b, err := r.GetX509BundleForTrustDomain(testTD)
	if err != nil {
		t.Fatal(err)
	}
	roots := b.X509Authorities()
	if len(roots) != 1 || !isSelfSigned(roots[0]) || roots[0].URIs[0].String() != "spiffe://ztn.test" {
		t.Fatalf("bundle: %d roots, want the mount's one root", len(roots))
	}
	if _, _, err := x509svid.Verify(svid.Certificates, x509bundle.NewSet(b)); err != nil {
		t.Fatal(err)
	}
}

// TestVaultTTL: Config.TTL is asked for; Vault caps it at max_ttl.
func TestVaultTTL(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	cfg := e.config(t, "web")
	cfg.TTL = 10 * time.Minute
	svid, err := newVault(t, cfg).GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if life := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); life != 10*time.Minute+time.Second {
		t.Errorf("lifetime %v, want 10m1s", life)
	}
	cfg.TTL = 5 * time.Hour // max_ttl is 2h
	svid, err = newVault(t, cfg).GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if life := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); life != 2*time.Hour+time.Second {
		t.Errorf("lifetime %v, want max_ttl 2h (+1s)", life)
	}
}

// TestVaultRotation: with 3s leaves the core engine renews each leaf between
// 60% and 90% of its life, twice; GetX509SVID never fails meanwhile, every
// leaf has a new key, and the metrics count each issuance.
func TestVaultRotation(t *testing.T) {
	e := newVaultEnv(t, 3*time.Second, "web")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	r := newVault(t, e.config(t, "web"), certs.WithMeterProvider(mp))

	first, _ := r.GetX509SVID()
	prev := first
	rotations := 0
	deadline := time.Now().Add(10 * time.Second)
	for rotations < 2 && time.Now().Before(deadline) {
		svid, err := r.GetX509SVID()
		if err != nil {
			t.Fatalf("GetX509SVID failed during rotation: %v", err)
		}
		if svid != prev {
			now := time.Now()
			old := prev.Certificates[0]
			life := old.NotAfter.Sub(old.NotBefore)
			at := float64(now.Sub(old.NotBefore)) / float64(life)
			if at < 0.58 || at > 0.93 {
				t.Errorf("renewed at %.0f%% of the previous leaf's life, want 60-90%%", 100*at)
			}
			if svid.Certificates[0].SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Error("same serial after renewal")
			}
			if svid.PrivateKey.(*ecdsa.PrivateKey).Equal(prev.PrivateKey) {
				t.Error("same key after renewal")
			}
			rotations++
			prev = svid
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rotations < 2 {
		t.Fatalf("%d renewals of 3s leaves in 10s, want 2", rotations)
	}
	got, expiry := certstest.Metrics(t, reader)
	if got["success"] != int64(rotations+1) || got["failure"] != 0 {
		t.Errorf("rotations metric %v, want %d successes", got, rotations+1)
	}
	if v := expiry[serviceID("web").String()]; v <= 0 || v > 3 {
		t.Errorf("expiry gauge %v, want in (0, 3]", v)
	}
}
