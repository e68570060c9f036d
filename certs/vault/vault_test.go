package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"regexp"
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

// TestVaultRotation: with 6s leaves the core engine schedules each renewal
// between 60% and 90% of the leaf's life (as its "SVID issued" record says)
// and the new leaf replaces the old one after 60% and before it expires,
// twice; GetX509SVID never fails meanwhile, every leaf has a new key, and
// the metrics count each issuance. (When the new leaf arrives also depends
// on how long Vault takes to sign, which a loaded machine stretches: the
// window is checked on the schedule. The schedule itself starts earlier
// than 60% only when issuance takes over a tenth of the leaf's life.)
func TestVaultRotation(t *testing.T) {
	const ttl = 6 * time.Second
	e := newVaultEnv(t, ttl, "web")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	logger, logs := newLogTap(t)
	r := newVault(t, e.config(t, "web"), certs.WithMeterProvider(mp), certs.WithLogger(logger))

	first, _ := r.GetX509SVID()
	prev := first
	leaves := map[string]*x509.Certificate{first.Certificates[0].SerialNumber.Text(16): first.Certificates[0]}
	rotations := 0
	deadline := time.Now().Add(5 * ttl)
	for rotations < 2 && time.Now().Before(deadline) {
		svid, err := r.GetX509SVID()
		if err != nil {
			t.Fatalf("GetX509SVID failed during rotation: %v", err)
		}
		if svid != prev {
			now := time.Now()
			old := prev.Certificates[0]
			if at := lifeFraction(old, now); at < 0.58 || !now.Before(old.NotAfter) {
				t.Errorf("replaced at %.0f%% of the previous leaf's life, want after 60%% and before it expires", 100*at)
			}
			if svid.Certificates[0].SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Error("same serial after renewal")
			}
			if svid.PrivateKey.(*ecdsa.PrivateKey).Equal(prev.PrivateKey) {
				t.Error("same key after renewal")
			}
			leaves[svid.Certificates[0].SerialNumber.Text(16)] = svid.Certificates[0]
			rotations++
			prev = svid
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rotations < 2 {
		t.Fatalf("%d renewals of %v leaves in %v, want 2", rotations, ttl, 5*ttl)
	}
	scheduled := 0
	for _, rec := range logs() {
		m := issuedRecord.FindStringSubmatch(rec)
		if m == nil || leaves[m[1]] == nil {
			continue
		}
		at, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", m[2]) // time.Time.String
		if err != nil {
			t.Fatalf("next_renewal in %q: %v", rec, err)
		}
		if f := lifeFraction(leaves[m[1]], at); f < 0.595 || f > 0.905 {
			t.Errorf("leaf %s: renewal scheduled at %.1f%% of its life, want 60-90%%", m[1], 100*f)
		}
		scheduled++
	}
	if scheduled < 3 {
		t.Errorf("%d \"SVID issued\" records with a schedule for the %d leaves seen", scheduled, len(leaves))
	}
	got, expiry := certstest.Metrics(t, reader)
	if got["success"] != int64(rotations+1) || got["failure"] != 0 {
		t.Errorf("rotations metric %v, want %d successes", got, rotations+1)
	}
	if v := expiry[serviceID("web").String()]; v <= 0 || v > ttl.Seconds() {
		t.Errorf("expiry gauge %v, want in (0, %v]", v, ttl.Seconds())
	}
}

// issuedRecord matches the Rotator's "SVID issued" record: the serial and
// the next renewal.
var issuedRecord = regexp.MustCompile(`certs: SVID issued .*serial=([0-9a-f]+) .*next_renewal=(.+)$`)

// lifeFraction is how far into leaf's life t is (0 at NotBefore, 1 at
// NotAfter).
func lifeFraction(leaf *x509.Certificate, t time.Time) float64 {
	return float64(t.Sub(leaf.NotBefore)) / float64(leaf.NotAfter.Sub(leaf.NotBefore))
}
