package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
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
	if len(s.Cert) == 0 || len(s.Key) == 0 || len(s.ClientCAs) == 0 {
		return "", "", "", fmt.Errorf("ServerTLS needs Cert, Key and ClientCAs")
	}
	cert, key, ca = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "clients-ca.crt")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{cert, s.Cert, 0o644}, {key, s.Key, 0o600}, {ca, s.ClientCAs, 0o644}} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return "", "", "", err
		}
		if err := owner.chown(f.path); err != nil {
			return "", "", "", err
		}
	}
	return cert, key, ca, nil
}

// osUser is a system account a server runs as.
type osUser struct {
	name     string
	uid, gid uint32
}

// lookupUser finds the account name.
func lookupUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chown gives path to u; a nil u leaves it to the test's user.
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.uid), int(u.gid))
}

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
	if err := owner.chown(dir); err != nil {
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
