package testenv

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tool describes how scripts/build-tools.sh builds a binary. Keep in step with
// the TOOLS table there.
type tool struct {
	dir    string // module dir, relative to the repo root
	module string // module whose pinned version names the cache entry
	envVar string // overrides the cache path
}

var tools = map[string]tool{
	"consul": {dir: "internal/tools", module: "github.com/hashicorp/consul", envVar: "ZTN_CONSUL_BIN"},
	"vault":  {dir: "internal/tools/vault", module: "github.com/hashicorp/vault", envVar: "ZTN_VAULT_BIN"},
	// Both SPIRE binaries come from one tool module, so they share a cache key.
	"spire-server": {dir: "internal/tools/spire", module: "github.com/spiffe/spire", envVar: "ZTN_SPIRE_SERVER_BIN"},
	"spire-agent":  {dir: "internal/tools/spire", module: "github.com/spiffe/spire", envVar: "ZTN_SPIRE_AGENT_BIN"},
	"grpcurl":      {dir: "internal/tools/grpcurl", module: "github.com/fullstorydev/grpcurl", envVar: "ZTN_GRPCURL_BIN"},
	"jaeger":       {dir: "internal/tools/jaeger", module: "github.com/jaegertracing/jaeger", envVar: "ZTN_JAEGER_BIN"},
}

// ToolPath returns where scripts/build-tools.sh puts the binary of the named
// tool ("consul", "vault", "spire-server", "spire-agent"), whether or not it
// has been built. It ignores the ZTN_*_BIN overrides.
func ToolPath(name string) (string, error) {
	tl, ok := tools[name]
	if !ok {
		return "", fmt.Errorf("testenv: unknown tool %q", name)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, filepath.FromSlash(tl.dir))
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	version, err := pinnedVersion(gomod, tl.module)
	if err != nil {
		return "", fmt.Errorf("testenv: %s/go.mod: %w", tl.dir, err)
	}
	key, err := cacheKey(dir)
	if err != nil {
		return "", err
	}
	cache, err := cacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, name+"-"+version+"-"+key, name), nil
}

// cacheRoot is ${ZTN_TOOLS_CACHE:-$HOME/.cache/ztn/tools}.
func cacheRoot() (string, error) {
	if c := os.Getenv("ZTN_TOOLS_CACHE"); c != "" {
		return c, nil
	}
	home := os.Getenv("HOME")
	if home == "" {
		return "", errors.New("testenv: neither ZTN_TOOLS_CACHE nor HOME is set")
	}
	return filepath.Join(home, ".cache", "ztn", "tools"), nil
}

// cacheKey is the first 12 hex digits of sha256(go.mod + go.sum [+ patches.sh]),
// as build-tools.sh computes it.
func cacheKey(dir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "patches.sh"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, os.ErrNotExist) && f == "patches.sh" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("testenv: %w", err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// pinnedVersion finds the version of module required by a go.mod, the way
// build-tools.sh's awk does: "require M V" or a "M V" line in a block.
func pinnedVersion(gomod []byte, module string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == "require" && f[1] == module && strings.HasPrefix(f[2], "v"):
			return f[2], nil
		case len(f) >= 2 && f[0] == module && strings.HasPrefix(f[1], "v"):
			return f[1], nil
		}
	}
	return "", fmt.Errorf("%s is not required", module)
}

// startWD is the working directory when the test binary started: go test runs
// it in the package's directory. Taken early, before a test can t.Chdir.
var startWD, startWDErr = os.Getwd()

// repoRoot walks up from the test's starting directory (a package dir under go
// test) to the directory holding internal/tools/go.mod.
func repoRoot() (string, error) {
	if startWDErr != nil {
		return "", fmt.Errorf("testenv: %w", startWDErr)
	}
	wd := startWD
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "internal", "tools", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: no internal/tools/go.mod in %s or above", wd)
		}
		dir = parent
	}
}

// requireTools reports whether ZTN_REQUIRE_TOOLS asks for missing tools to fail
// tests instead of skipping them.
func requireTools() bool {
	switch strings.ToLower(os.Getenv("ZTN_REQUIRE_TOOLS")) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// toolBinary returns the binary for the named tool, or skips (fails under
// ZTN_REQUIRE_TOOLS) the test when it is not there.
func toolBinary(t testing.TB, name string) string {
	t.Helper()
	tl := tools[name]
	if p := os.Getenv(tl.envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testenv: %s=%s: %v", tl.envVar, p, err)
		}
		return p
	}
	p, err := ToolPath(name)
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
		err = nil // not built: say where it goes, not the stat error
	}
	where := p
	if err != nil {
		where = err.Error()
	}
	msg := fmt.Sprintf("testenv: needs %s, not built (%s); `make test` builds it (or scripts/build-tools.sh %s; %s overrides)", name, where, name, tl.envVar)
	if requireTools() {
		t.Fatal(msg + " (ZTN_REQUIRE_TOOLS is set)")
	}
	t.Skip(msg)
	return ""
}

// Tool returns the path of the named tool's binary ("grpcurl", ...), or
// skips the test (fails it under ZTN_REQUIRE_TOOLS) when it is not built.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if _, ok := tools[name]; !ok {
		t.Fatalf("testenv: unknown tool %q", name)
	}
	return toolBinary(t, name)
}
