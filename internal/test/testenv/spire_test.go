package testenv

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestSPIRE starts SPIRE with a long test name (socket paths must stay
// short), checks the default workload entry is served, and that entries
// can be added and deleted.
func TestSPIRE(t *testing.T) {
	t.Run(strings.Repeat("a_long_subtest_name_", 5), func(t *testing.T) {
		s := SPIRE(t, SPIRETrustDomain("example.test"))
		if len(s.AgentSocket) > 100 || !strings.HasPrefix(s.WorkloadAPIAddr, "unix:///") {
			t.Fatalf("workload API address %q", s.WorkloadAPIAddr)
		}
		s.WaitForSVID("spiffe://example.test/ns/default/dc/dc1/svc/web")
		id := s.CreateEntry("spiffe://example.test/ns/default/dc/dc1/svc/api", time.Minute, GIDSelector())
		s.WaitForSVID("spiffe://example.test/ns/default/dc/dc1/svc/api")
		s.DeleteEntry(id)
		if _, err := os.Stat(s.ServerLogPath); err != nil {
			t.Fatal(err)
		}
		s.StopAgent()
	})
}
