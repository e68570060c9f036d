package ztn

import (
	"os/exec"
	"strings"
	"testing"
)

// The packages depend only downward (DESIGN.md): grpcztn and httpztn on
// ztnet; ztnet on certs, discovery and authz, which never import each other
// or anything above them; internal plumbing on none of them. Library code
// never imports the test-support packages.
func TestLayers(t *testing.T) {
	const mod = "github.com/ztnlabs/ztn/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	testSupport := []string{"internal/meshtest", "internal/logtest", "internal/testenv", "internal/benchpair", "internal/zerotest"}
	layer := map[string][]string{ // package → module packages it must not import
		"ztnet":     {"grpcztn", "httpztn"},
		"certs":     {"ztnet", "grpcztn", "httpztn", "discovery", "authz"},
		"discovery": {"ztnet", "grpcztn", "httpztn", "certs", "authz"},
		"authz":     {"ztnet", "grpcztn", "httpztn", "certs", "discovery"},
		"internal/": {"ztnet", "grpcztn", "httpztn", "certs", "discovery", "authz"},
	}
	checked := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], mod)
		if !ok {
			continue // the root package
		}
		isSupport := false
		for _, s := range testSupport {
			isSupport = isSupport || pkg == s
		}
		var forbidden []string
		for prefix, f := range layer {
			if pkg == prefix || (strings.HasSuffix(prefix, "/") && strings.HasPrefix(pkg, prefix)) {
				forbidden = append(forbidden, f...)
			}
		}
		if isSupport {
			forbidden = nil // test support may use the layers it supports
		} else {
			forbidden = append(forbidden, testSupport...)
		}
		checked++
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages; go list output:\n%s", checked, out)
	}
}
