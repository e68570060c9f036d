package certs

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoBackendDeps: importing certs links no backend's client library (a
// program on the dev CA or on files links neither Vault's nor Consul's API
// client, nor gRPC), and importing one backend links none of the others'.
func TestNoBackendDeps(t *testing.T) {
	const (
		vaultAPI    = "github.com/hashicorp/vault/api"
		consulAPI   = "github.com/hashicorp/consul/api"
		workloadAPI = "github.com/spiffe/go-spiffe/v2/workloadapi"
		grpc        = "google.golang.org/grpc"
	)
	for _, tc := range []struct {
		pkg       string
		links     string // the client library it exists for
		forbidden []string
	}{
		{".", "", []string{vaultAPI, consulAPI, workloadAPI, grpc, "github.com/ztnlabs/ztn/certs/"}},
		{"./vault", vaultAPI, []string{consulAPI, workloadAPI, grpc}},
		{"./consulca", consulAPI, []string{vaultAPI, workloadAPI, grpc}},
		{"./workloadapi", workloadAPI, []string{vaultAPI, consulAPI}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s: %q", tc.pkg, out)
		}
		if tc.links != "" && !slices.Contains(deps, tc.links) {
			t.Errorf("%s does not link %s: is the test looking at the right package?", tc.pkg, tc.links)
		}
		for _, dep := range deps {
			for _, f := range tc.forbidden {
				if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
					t.Errorf("%s links %s", tc.pkg, dep)
				}
			}
		}
	}
}
