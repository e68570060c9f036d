package certs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
)

// k8sSecretDir lays out dir as the kubelet mounts a secret volume: the
// files in a timestamped directory, a "..data" symlink to it, and one symlink
// per file through "..data". It returns the FilesConfig of those symlinks
// and the real key file.
func k8sSecretDir(t *testing.T, ca *DevCA, keyMode os.FileMode) (FilesConfig, string) {
	t.Helper()
	dir := t.TempDir()
	real := filepath.Join(dir, "..2026_12_03_01_00_00.000000001")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	set := &fileSet{cert: filepath.Join(real, "tls.crt"), key: filepath.Join(real, "tls.key"), bundle: filepath.Join(real, "ca.crt")}
	set.write(t, ca, certstest.LeafSpec{})
	if err := os.Chmod(set.key, keyMode); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(real), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := FilesConfig{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), Bundle: filepath.Join(dir, "ca.crt")}
	return cfg, set.key
}

// TestFilesKeyMode: a private key file that its group or others can read is
// refused with an error naming the file and its mode, also behind
// Kubernetes' symlinks; 0600 and 0400 keys behind them load; AllowReadableKey
// loads a readable one with a warning.
func TestFilesKeyMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	ca := newTestCA(t)
	for _, mode := range []os.FileMode{0o600, 0o400} {
		cfg, _ := k8sSecretDir(t, ca, mode)
		newTestFiles(t, cfg, WithLogger(testLogger(t)))
	}
	for _, mode := range []os.FileMode{0o666, 0o644, 0o640, 0o604} {
		cfg, _ := k8sSecretDir(t, ca, mode)
		f, err := NewFiles(context.Background(), cfg, WithLogger(testLogger(t)))
		if err == nil {
			_ = f.Close()
			t.Fatalf("key of mode %#o loaded", mode)
		}
		for _, want := range []string{"certs: files: ", cfg.Key, fmt.Sprintf("mode %#o", mode), "readable by its group or others"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %#o: error %q does not say %q", mode, err, want)
			}
		}
	}

	cfg, _ := k8sSecretDir(t, ca, 0o644)
	cfg.AllowReadableKey = true
	logger, lines := logtest.Capture(t)
	newTestFiles(t, cfg, WithLogger(logger))
	if logtest.Count(lines(), "WARN", "group or others can read", cfg.Key, "mode=0644") != 1 {
		t.Errorf("AllowReadableKey: no warning naming the key file and its mode in %q", lines())
	}
}

// TestFilesKeyModeReload: a key made readable after the first load is
// refused at the next poll, the last good SVID staying in use, and taken
// again once made private.
func TestFilesKeyModeReload(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	ca := newTestCA(t)
	set := newFileSet(t)
	set.write(t, ca, certstest.LeafSpec{})
	logger, lines := logtest.Capture(t)
	cfg := set.config()
	f := newTestFiles(t, cfg, WithLogger(logger))
	if err := os.Chmod(set.key, 0o644); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Second, "the readable key reported", func() bool {
		return logtest.Count(lines(), "WARN", "reload failed", set.key, "mode 0644") > 0
	})
	if _, err := f.GetX509SVID(); err != nil {
		t.Fatalf("the last good SVID is gone: %v", err)
	}
	if err := os.Chmod(set.key, 0o600); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 5*time.Second, "the private key taken again", func() bool {
		return logtest.Count(lines(), "INFO", "readable again and unchanged") > 0
	})
}
