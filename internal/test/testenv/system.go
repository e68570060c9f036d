package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/internal/pgredis"
)

// This file holds what the servers installed from Debian packages
// (internal/tools/debian-packages.txt: Postgres, Redis) share: finding their
// binaries, a state directory another user may own, and the TLS files.

// ServerTLS is what a server started with TLS presents and trusts, all PEM:
// its certificate (chain, leaf first) and key, and the CA certificates a
// client's certificate must chain to. The certificate should name 127.0.0.1
// (an IP SAN) so that clients can verify it.
type ServerTLS struct {
	Cert, Key, ClientCAs []byte
}

// write puts the files in dir as server.crt, server.key (0600) and
// clients-ca.crt, owned by owner (nil: the test's user), and returns their
// paths.
func (s ServerTLS) write(dir string, owner *osUser) (cert, key, ca string, err error) {
	return pgredis.TLSFiles(s).Write(dir, owner)
}

// osUser is a system account a server runs as.
type osUser = pgredis.User

// serverDir makes a directory for a server's state, owned by owner (nil: the
// test's user), outside t.TempDir (whose parents only the test's user may
// enter). It is removed when the test ends, unless the test failed: then it
// is kept, with the server's whole log, and the test log says where.
func serverDir(t testing.TB, name string, owner *osUser) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ztn-testenv-"+name+"-")
	if err != nil {
		t.Fatalf("testenv: %s: %v", name, err)
	}
	if err := owner.Chown(dir); err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("testenv: %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: %s: the test failed; its directory (log, data) is kept: %s", name, dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// systemBinary returns the first of the candidate paths that exists, the
// value of envVar when it is set, or skips the test (fails it under
// ZTN_REQUIRE_TOOLS) naming the Debian package that provides what.
func systemBinary(t testing.TB, what, pkg, envVar string, candidates ...string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testenv: %s=%s: %v", envVar, p, err)
		}
		return p
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if filepath.IsAbs(c) {
			if _, err := os.Stat(c); err == nil {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("testenv: needs %s, not installed (Debian package %s; scripts/deps.sh installs it, %s overrides)", what, pkg, envVar)
	if requireTools() {
		t.Fatal(msg + " (ZTN_REQUIRE_TOOLS is set)")
	}
	t.Skip(msg)
	return ""
}

// Program returns the path of a command-line program from a Debian package
// that a test drives as an outside peer (curl, openssl, psql, redis-cli),
// found on PATH. Without it the test is skipped, or fails under
// ZTN_REQUIRE_TOOLS, naming the package (which belongs in
// internal/tools/debian-packages.txt).
func Program(t testing.TB, name, debianPackage string) string {
	t.Helper()
	return systemBinary(t, name, debianPackage, "ZTN_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+"_BIN", name)
}
