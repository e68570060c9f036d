package workloadapi_test

import (
	"context"
	"log"
	"time"

	"github.com/ztnlabs/ztn/certs/workloadapi"
)

// A service whose identity comes from a SPIRE agent's Workload API (at
// SPIFFE_ENDPOINT_SOCKET), picking the SVID of service "web" among those
// the agent offers this workload.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := workloadapi.New(ctx, workloadapi.Config{Service: "web"})
	if err != nil {
		log.Fatal(err) // e.g. workloadapi: unix:///run/spire/agent.sock: no SVID for service "web" (offered: [...])
	}
	defer src.Close()
	// src is a certs.Source: pass it to ztnet.New with ztnet.WithSource, or
	// to go-spiffe's tlsconfig helpers.
}
