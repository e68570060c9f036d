package ztn

import (
	"os/exec"
	"strings"
	"testing"
)

// The packages depend only downward (see the README's architecture
// section). Each rule is a package path prefix and the module packages that
// packages under it must not import; a prefix "x" covers "x" and "x/...".
// Library code never imports test support (internal/test/...), and nothing
// but the root and internal plumbing sits below certs, authz and discovery.
var layerRules = []struct {
	prefix    string
	forbidden []string
}{
	{"internal", []string{"certs", "authz", "discovery", "consul", "ztnet", "grpcztn", "httpztn"}},
	{"certs", []string{"authz", "discovery", "consul", "ztnet", "grpcztn", "httpztn"}},
	{"authz", []string{"certs", "discovery", "consul", "ztnet", "grpcztn", "httpztn"}},
	{"discovery", []string{"certs", "authz", "consul", "ztnet", "grpcztn", "httpztn"}},
	{"consul", []string{"certs", "ztnet", "grpcztn", "httpztn"}},
	{"ztnet", []string{"grpcztn", "httpztn"}},
	// The core of ztnet links no backend: a program on the dev mesh links
	// neither Vault's nor Consul's client, nor the Workload API.
	{"ztnet", []string{"certs/vault", "certs/consulca", "certs/workloadapi", "consul"}},
}

// The exceptions to the rules above: packages that are allowed more.
var layerExceptions = map[string][]string{
	// ztnenv builds a Service from the environment, with the backends.
	"ztnet/ztnenv": {"certs/vault", "consul"},
	// ztnhook shows the adapters what they use of a ztnet.Service (its
	// Resolver, L7 authorization): it sits beside ztnet, above authz and
	// discovery.
	"internal/ztnhook": {"authz", "discovery"},
}

func TestLayers(t *testing.T) {
	const mod = "github.com/ztnlabs/ztn/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	under := func(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
	checked := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], mod)
		if !ok {
			continue // the root package
		}
		checked++
		support := under(pkg, "internal/test") || strings.HasPrefix(pkg, "examples/") || strings.HasPrefix(pkg, "bench/")
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if under(dep, "internal/test") && !support {
				t.Errorf("%s (library code) imports test support %s", pkg, dep)
			}
			if support || under(dep, pkg) {
				continue // test support and examples may use every layer
			}
			allowed := false
			for _, a := range layerExceptions[pkg] {
				allowed = allowed || under(dep, a)
			}
			for _, r := range layerRules {
				if !under(pkg, r.prefix) || allowed {
					continue
				}
				for _, f := range r.forbidden {
					if under(dep, f) {
						t.Errorf("%s imports %s (%s must not import %s)", pkg, dep, r.prefix, f)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages; go list output:\n%s", checked, out)
	}
}
