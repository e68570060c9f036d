package grpcztn_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// TestGRPCurlRefused: grpcurl, an independent gRPC client, cannot reach a
// grpcztn server without a valid client certificate.
func TestGRPCurlRefused(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api := meshtest.Service(t, m, "api")
	addr := healthServer(t, api)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, grpcurl, "-insecure", "-max-time", "5",
		addr, "grpc.health.v1.Health/Check").CombinedOutput()
	if err == nil {
		t.Fatalf("grpcurl without a client certificate was served:\n%s", out)
	}
	if ctx.Err() != nil {
		t.Fatalf("grpcurl hung: %s", out)
	}
	if s := string(out); !strings.Contains(s, "bad certificate") {
		t.Fatalf("grpcurl failed for an unexpected reason:\n%s", s)
	}
	t.Logf("grpcurl refused as expected: %s", strings.TrimSpace(string(out)))
}
