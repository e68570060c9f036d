package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
)

// pollUntil polls cond every 20ms until it holds or timeout passes.
func pollUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileSet is a cert, key and bundle file in a temporary directory.
type fileSet struct {
	dir               string
	cert, key, bundle string
}

func newFileSet(t testing.TB) *fileSet {
	dir := t.TempDir()
	return &fileSet{dir: dir, cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), bundle: filepath.Join(dir, "ca.crt")}
}

func (fs *fileSet) config() FilesConfig {
	return FilesConfig{Cert: fs.cert, Key: fs.key, Bundle: fs.bundle, PollInterval: 20 * time.Millisecond}
}

// writeFile replaces path atomically (write a temporary file, rename), as
// Kubernetes' atomic writer and careful agents do.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// write writes a leaf of ca (and its key) and ca's bundle.
func (fs *fileSet) write(t testing.TB, ca *DevCA, spec certstest.LeafSpec) *x509.Certificate {
	t.Helper()
	leaf, key := certstest.SignLeaf(t, ca, spec)
	writeFile(t, fs.key, certstest.KeyPEM(t, key, true))
	writeFile(t, fs.cert, certstest.CertsPEM(leaf))
	writeFile(t, fs.bundle, certstest.CertsPEM(ca.Bundle().X509Authorities()...))
	return leaf
}

func newTestFiles(t testing.TB, cfg FilesConfig, opts ...Option) *Files {
	t.Helper()
	f, err := NewFiles(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestFilesLoad(t *testing.T) {
	ca := newTestCA(t)
	fs := newFileSet(t)
	leaf := fs.write(t, ca, certstest.LeafSpec{})
	f := newTestFiles(t, fs.config(), WithLogger(testLogger(t)))
	svid, err := f.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID.String() != "spiffe://ztn.test/ns/default/dc/dc1/svc/web" || !svid.Certificates[0].Equal(leaf) {
		t.Fatalf("SVID %s %x, want the leaf written", svid.ID, svid.Certificates[0].SerialNumber)
	}
	b, err := f.GetX509BundleForTrustDomain(testTD)
	if err != nil || !b.HasX509Authority(ca.Bundle().X509Authorities()[0]) {
		t.Fatalf("bundle %v, %v", b, err)
	}
	if _, err := f.GetX509BundleForTrustDomain(spiffeidTD(t, "other.test")); err == nil || !strings.HasPrefix(err.Error(), "certs: files: ") {
		t.Fatalf("bundle of another trust domain: %v", err)
	}
	var _ Source = f
}

// TestFilesFormats loads the formats Vault Agent and cert-manager write: a
// combined cert+key file, SEC 1 and PKCS#1 keys, a chain with an
// intermediate, and a bundle of several roots.
func TestFilesFormats(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	t.Run("combined file, SEC 1 key", func(t *testing.T) {
		fs := newFileSet(t)
		leaf, key := certstest.SignLeaf(t, ca, certstest.LeafSpec{})
		combined := append(certstest.KeyPEM(t, key, false), certstest.CertsPEM(leaf)...)
		writeFile(t, fs.cert, combined)
		writeFile(t, fs.bundle, certstest.CertsPEM(other.Bundle().X509Authorities()[0], ca.Bundle().X509Authorities()[0]))
		cfg := fs.config()
		cfg.Key = cfg.Cert
		f := newTestFiles(t, cfg, WithLogger(testLogger(t)))
		b, _ := f.GetX509BundleForTrustDomain(testTD)
		if len(b.X509Authorities()) != 2 {
			t.Fatalf("%d roots, want 2", len(b.X509Authorities()))
		}
	})
	t.Run("PKCS#1 RSA key", func(t *testing.T) {
		fs := newFileSet(t)
		leaf, key := certstest.SignLeaf(t, ca, certstest.LeafSpec{RSA: true})
		writeFile(t, fs.cert, certstest.CertsPEM(leaf))
		writeFile(t, fs.key, certstest.KeyPEM(t, key, false))
		writeFile(t, fs.bundle, certstest.CertsPEM(ca.Bundle().X509Authorities()...))
		newTestFiles(t, fs.config(), WithLogger(testLogger(t)))
	})
	t.Run("intermediate in the chain", func(t *testing.T) {
		// After a DevCA root rotation, leaves come with the new root
		// cross-signed by the old one: trusting only the old root, the
		// chain verifies through the cross-signed intermediate.
		rca := newTestCA(t)
		oldRoot := rca.Bundle().X509Authorities()[0]
		// A leaf of the old root keeps it in the DevCA's bundle.
		if _, err := rca.Issuer("dc1", "api", time.Hour).Issue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := rca.RotateRoot(); err != nil {
			t.Fatal(err)
		}
		id, err := rca.Issuer("dc1", "web", time.Hour).Issue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(id.SVID.Certificates) != 2 {
			t.Fatalf("DevCA chain of %d, want leaf + cross-signed root", len(id.SVID.Certificates))
		}
		fs := newFileSet(t)
		writeFile(t, fs.cert, certstest.CertsPEM(id.SVID.Certificates...))
		writeFile(t, fs.key, certstest.KeyPEM(t, id.SVID.PrivateKey, true))
		writeFile(t, fs.bundle, certstest.CertsPEM(oldRoot))
		f := newTestFiles(t, fs.config(), WithLogger(testLogger(t)))
		if svid, _ := f.GetX509SVID(); len(svid.Certificates) != 2 {
			t.Fatal("the intermediate is not served")
		}
	})
}

// TestFilesBadInput: every bad file set is a clear error at construction,
// naming the file, never a panic and never an accepted identity.
func TestFilesBadInput(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	leaf, key := certstest.SignLeaf(t, ca, certstest.LeafSpec{})
	_, otherKey := certstest.SignLeaf(t, ca, certstest.LeafSpec{})
	bundle := certstest.CertsPEM(ca.Bundle().X509Authorities()...)
	good := func() (c, k, b []byte) { return certstest.CertsPEM(leaf), certstest.KeyPEM(t, key, true), bundle }
	with := func(spec certstest.LeafSpec) (c, k, b []byte) {
		l, k2 := certstest.SignLeaf(t, ca, spec)
		return certstest.CertsPEM(l), certstest.KeyPEM(t, k2, true), bundle
	}
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1, 2, 3}})
	truncated := certstest.CertsPEM(leaf)
	truncated = truncated[:len(truncated)/2]

	cases := []struct {
		name    string
		files   func() (c, k, b []byte)
		cfg     func(*FilesConfig)
		missing string // a file not to write
		want    string
	}{
		{name: "garbage cert", files: func() (c, k, b []byte) { _, k, b = good(); return []byte("hello\n"), k, b }, want: "certificate file"},
		{name: "empty cert", files: func() (c, k, b []byte) { _, k, b = good(); return nil, k, b }, want: "empty"},
		{name: "truncated cert", files: func() (c, k, b []byte) { _, k, b = good(); return truncated, k, b }, want: "not PEM"},
		{name: "corrupt DER", files: func() (c, k, b []byte) {
			_, k, b = good()
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}), k, b
		}, want: "certificate file"},
		{name: "garbage key", files: func() (c, k, b []byte) {
			c, _, b = good()
			return c, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), b
		}, want: "key file"},
		{name: "encrypted key", files: func() (c, k, b []byte) { c, _, b = good(); return c, encrypted, b }, want: "encrypted"},
		{name: "two keys", files: func() (c, k, b []byte) {
			c, k, b = good()
			return c, append(k, certstest.KeyPEM(t, otherKey, true)...), b
		}, want: "second private key"},
		{name: "key of another cert", files: func() (c, k, b []byte) { c, _, b = good(); return c, certstest.KeyPEM(t, otherKey, true), b }, want: "does not match"},
		{name: "garbage bundle", files: func() (c, k, b []byte) {
			c, k, _ = good()
			return c, k, []byte("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
		}, want: "bundle file"},
		{name: "leaf in the bundle", files: func() (c, k, b []byte) { c, k, _ = good(); return c, k, certstest.CertsPEM(leaf) }, want: "not a CA certificate"},
		{name: "bundle of another CA", files: func() (c, k, b []byte) {
			c, k, _ = good()
			return c, k, certstest.CertsPEM(other.Bundle().X509Authorities()...)
		}, want: "does not verify against bundle file"},
		{name: "no URI SAN", files: func() (c, k, b []byte) { return with(certstest.LeafSpec{URIs: []string{}, DNS: []string{"web"}}) }, want: "no URI SAN"},
		{name: "two URI SANs", files: func() (c, k, b []byte) {
			return with(certstest.LeafSpec{URIs: []string{"spiffe://ztn.test/ns/default/dc/dc1/svc/web", "spiffe://ztn.test/ns/default/dc/dc1/svc/api"}})
		}, want: "more than one URI SAN"},
		{name: "not a SPIFFE ID", files: func() (c, k, b []byte) { return with(certstest.LeafSpec{URIs: []string{"https://ztn.test/web"}}) }, want: "scheme"},
		{name: "CA leaf", files: func() (c, k, b []byte) { return with(certstest.LeafSpec{CA: true}) }, want: "is a CA"},
		{name: "server-only EKU", files: func() (c, k, b []byte) {
			return with(certstest.LeafSpec{EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		}, want: "client and server"},
		{name: "expired", files: func() (c, k, b []byte) {
			return with(certstest.LeafSpec{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		}, want: "expired at"},
		{name: "not yet valid", files: func() (c, k, b []byte) {
			return with(certstest.LeafSpec{NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)})
		}, want: "not valid before"},
		{name: "wrong trust domain", files: good, cfg: func(c *FilesConfig) { c.TrustDomain = spiffeidTD(t, "other.test") }, want: "not in trust domain other.test"},
		{name: "missing key file", files: good, missing: "key", want: "no such file"},
		{name: "no bundle configured", files: good, cfg: func(c *FilesConfig) { c.Bundle = "" }, want: "no Bundle file"},
		{name: "negative poll interval", files: good, cfg: func(c *FilesConfig) { c.PollInterval = -1 }, want: "negative PollInterval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFileSet(t)
			c, k, b := tc.files()
			for path, data := range map[string][]byte{fs.cert: c, fs.key: k, fs.bundle: b} {
				if (tc.missing == "key" && path == fs.key) || (tc.missing == "cert" && path == fs.cert) {
					continue
				}
				writeFile(t, path, data)
			}
			cfg := fs.config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			reader := sdkmetric.NewManualReader()
			f, err := NewFiles(context.Background(), cfg, WithLogger(testLogger(t)), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
			if err == nil {
				_ = f.Close()
				t.Fatal("NewFiles accepted it")
			}
			if !strings.HasPrefix(err.Error(), "certs: files: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want the prefix \"certs: files: \" and %q", err, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestFilesReload swaps the files under a running source: a new
// certificate is picked up; garbage, a mismatched key, a certificate of
// another identity, an expired certificate and a removed file are each
// refused with one log record and one failure metric while the last good
// SVID stays in use; a good certificate afterwards is picked up again. The
// certificate and key share one file (as Vault Agent can write them), so
// that each change is one atomic rename.
func TestFilesReload(t *testing.T) {
	ca := newTestCA(t)
	fs := newFileSet(t)
	put := func(spec certstest.LeafSpec) *x509.Certificate {
		leaf, key := certstest.SignLeaf(t, ca, spec)
		writeFile(t, fs.cert, append(certstest.CertsPEM(leaf), certstest.KeyPEM(t, key, true)...))
		return leaf
	}
	writeFile(t, fs.bundle, certstest.CertsPEM(ca.Bundle().X509Authorities()...))
	first := put(certstest.LeafSpec{})
	cfg := fs.config()
	cfg.Key = cfg.Cert
	logger, logs := logtest.Capture(t)
	reader := sdkmetric.NewManualReader()
	f := newTestFiles(t, cfg, WithLogger(logger), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))

	current := func() *x509.Certificate {
		svid, err := f.GetX509SVID()
		if err != nil {
			t.Fatal(err)
		}
		return svid.Certificates[0]
	}

	// A new certificate: picked up, Changed fires.
	changed := f.Changed()
	second := put(certstest.LeafSpec{})
	waitChanged(t, changed, 5*time.Second, "the reload of a new certificate")
	if !current().Equal(second) {
		t.Fatal("the new certificate is not served")
	}

	failures := 0
	refuse := func(what, wantLog string, write func()) {
		t.Helper()
		before := logtest.Count(logs(), "reload failed", wantLog)
		write()
		pollUntil(t, 5*time.Second, what+" to be refused", func() bool {
			return logtest.Count(logs(), "reload failed", wantLog) > before
		})
		failures++
		if !current().Equal(second) {
			t.Fatalf("%s: the last good certificate is not served", what)
		}
		if rot, _ := certstest.Metrics(t, reader); rot["failure"] != int64(failures) {
			t.Fatalf("%s: %d failed rotations counted, want %d", what, rot["failure"], failures)
		}
	}
	refuse("garbage", "certificate file", func() { writeFile(t, fs.cert, []byte("garbage")) })
	refuse("a mismatched key", "does not match", func() {
		_, key := certstest.SignLeaf(t, ca, certstest.LeafSpec{})
		writeFile(t, fs.cert, append(certstest.CertsPEM(second), certstest.KeyPEM(t, key, true)...))
	})
	refuse("another identity", "the identity of a source never changes", func() {
		put(certstest.LeafSpec{URIs: []string{"spiffe://ztn.test/ns/default/dc/dc1/svc/api"}})
	})
	refuse("an expired certificate", "expired at", func() {
		put(certstest.LeafSpec{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	})
	refuse("a removed file", "no such file", func() {
		if err := os.Remove(fs.cert); err != nil {
			t.Fatal(err)
		}
	})
	// The same failure is reported once, not at every poll.
	time.Sleep(200 * time.Millisecond)
	if n := logtest.Count(logs(), "reload failed", "no such file"); n != 1 {
		t.Fatalf("%d log records for the removed file, want 1", n)
	}

	changed = f.Changed()
	third := put(certstest.LeafSpec{})
	waitChanged(t, changed, 5*time.Second, "the reload of a good certificate")
	if !current().Equal(third) || first.Equal(third) {
		t.Fatal("the good certificate is not served")
	}
	if rot, _ := certstest.Metrics(t, reader); rot["success"] != 3 || rot["failure"] != int64(failures) {
		t.Fatalf("rotations %v, want 3 successes and %d failures", rot, failures)
	}
}

// TestFilesSettle: a new key and its certificate written one after the
// other (a moment where they do not match) make one good reload and no
// failure report.
func TestFilesSettle(t *testing.T) {
	ca := newTestCA(t)
	fs := newFileSet(t)
	fs.write(t, ca, certstest.LeafSpec{})
	cfg := fs.config()
	cfg.PollInterval = 300 * time.Millisecond
	logger, logs := logtest.Capture(t)
	reader := sdkmetric.NewManualReader()
	f := newTestFiles(t, cfg, WithLogger(logger), WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	for range 3 {
		changed := f.Changed()
		leaf, key := certstest.SignLeaf(t, ca, certstest.LeafSpec{})
		writeFile(t, fs.key, certstest.KeyPEM(t, key, true))
		time.Sleep(20 * time.Millisecond)
		writeFile(t, fs.cert, certstest.CertsPEM(leaf))
		waitChanged(t, changed, 5*time.Second, "the reload")
		if svid, _ := f.GetX509SVID(); !svid.Certificates[0].Equal(leaf) {
			t.Fatal("the new certificate is not served")
		}
	}
	if n := logtest.Count(logs(), "reload failed"); n != 0 {
		t.Fatalf("%d failures reported", n)
	}
	if rot, _ := certstest.Metrics(t, reader); rot["failure"] != 0 || rot["success"] != 4 {
		t.Fatalf("rotations %v, want 4 successes", rot)
	}
}

// TestFilesFailClosed: a leaf that expires without a replacement is no
// longer handed out; a good one written afterwards is.
func TestFilesFailClosed(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	fs := newFileSet(t)
	fs.write(t, ca, certstest.LeafSpec{NotBefore: time.Now().Add(-time.Second), NotAfter: time.Now().Add(1500 * time.Millisecond)})
	logger, logs := logtest.Capture(t)
	f := newTestFiles(t, fs.config(), WithLogger(logger))
	if _, err := f.GetX509SVID(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Second, "the SVID to be refused once expired", func() bool {
		_, err := f.GetX509SVID()
		return err != nil
	})
	_, err := f.GetX509SVID()
	if !strings.HasPrefix(err.Error(), "certs: files: SVID for spiffe://ztn.test/ns/default/dc/dc1/svc/web expired at") {
		t.Fatalf("error %q", err)
	}
	pollUntil(t, 5*time.Second, "the expiry to be logged", func() bool { return logtest.Count(logs(), "ERROR", "has expired") == 1 })
	if logtest.Count(logs(), "past 90%") != 1 {
		t.Fatal("no warning at 90% of the lifetime")
	}

	changed := f.Changed()
	fresh := fs.write(t, ca, certstest.LeafSpec{})
	waitChanged(t, changed, 5*time.Second, "the reload")
	svid, err := f.GetX509SVID()
	if err != nil || !svid.Certificates[0].Equal(fresh) {
		t.Fatalf("after a good reload: %v", err)
	}
}

// TestFilesBundleChange: a new bundle (a root added, then the old one
// removed) is reloaded as a whole.
func TestFilesBundleChange(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	fs := newFileSet(t)
	fs.write(t, ca, certstest.LeafSpec{})
	f := newTestFiles(t, fs.config(), WithLogger(testLogger(t)))
	root, newRoot := ca.Bundle().X509Authorities()[0], other.Bundle().X509Authorities()[0]

	changed := f.Changed()
	writeFile(t, fs.bundle, certstest.CertsPEM(root, newRoot))
	waitChanged(t, changed, 5*time.Second, "the bundle reload")
	b, _ := f.GetX509BundleForTrustDomain(testTD)
	if !b.HasX509Authority(newRoot) || !b.HasX509Authority(root) {
		t.Fatal("the added root is not trusted")
	}
	// A bundle without the leaf's root is refused: the chain would not
	// verify.
	writeFile(t, fs.bundle, certstest.CertsPEM(newRoot))
	time.Sleep(200 * time.Millisecond)
	b, _ = f.GetX509BundleForTrustDomain(testTD)
	if !b.HasX509Authority(root) {
		t.Fatal("a bundle the leaf does not verify against was taken")
	}
}

func TestFilesClose(t *testing.T) {
	ca := newTestCA(t)
	fs := newFileSet(t)
	fs.write(t, ca, certstest.LeafSpec{})
	f, err := NewFiles(context.Background(), fs.config(), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	changed := f.Changed()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitChanged(t, changed, time.Second, "Close")
	if _, err := f.GetX509SVID(); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetX509SVID after Close: %v", err)
	}
	if _, err := f.GetX509BundleForTrustDomain(testTD); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetX509BundleForTrustDomain after Close: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// FuzzFilesParse: whatever the files hold, parsing never panics and
// anything accepted is a verified SVID.
func FuzzFilesParse(f *testing.F) {
	ca, err := NewDevCA(testTD)
	if err != nil {
		f.Fatal(err)
	}
	id, err := ca.Issuer("dc1", "web", time.Hour).Issue(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(id.SVID.PrivateKey)
	certPEM := certstest.CertsPEM(id.SVID.Certificates...)
	kPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	bundle := certstest.CertsPEM(ca.Bundle().X509Authorities()...)
	f.Add(certPEM, kPEM, bundle)
	f.Add([]byte("garbage"), kPEM, bundle)
	f.Add(certPEM[:len(certPEM)/2], kPEM, bundle)
	f.Fuzz(func(t *testing.T, c, k, b []byte) {
		cfg := FilesConfig{Cert: "c", Key: "k", Bundle: "b"}
		svid, bundle, err := parseFiles(cfg, c, k, b, spiffeid.ID{}, time.Now())
		if err != nil {
			if !strings.HasPrefix(err.Error(), "certs: files: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
			t.Fatalf("accepted an SVID that does not verify: %v", err)
		}
	})
}
