package certs_test

import (
	"context"
	"log"
	"time"

	"github.com/ztnlabs/ztn/certs"
)

// A service whose identity comes from a SPIRE agent's Workload API (at
// SPIFFE_ENDPOINT_SOCKET), picking the SVID of service "web" among those
// the agent offers this workload.
func ExampleNewWorkloadAPI() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := certs.NewWorkloadAPI(ctx, certs.WorkloadAPIConfig{Service: "web"})
	if err != nil {
		log.Fatal(err) // e.g. certs: workload API at unix:///run/spire/agent.sock: no SVID for service "web" (offered: [...])
	}
	defer src.Close()
}
