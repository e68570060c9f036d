// Package workloadapi is the certificate source of ztn backed by the SPIFFE
// Workload API (a SPIRE agent, for example), through go-spiffe's
// workloadapi package.
//
// [New] connects to the Workload API and returns a [Source], a
// [certs.Source] that receives each new SVID and bundle as the agent
// rotates them, checks them before use and keeps the last good ones when
// an update is bad. The agent, not ztn, renews the SVID.
//
// Importing this package links gRPC and go-spiffe's Workload API client;
// package certs and the other backends do not.
//
// # Example
//
// A service that takes the SVID of service "web" among those the agent at
// SPIFFE_ENDPOINT_SOCKET offers the process:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
//	defer cancel()
//	src, err := workloadapi.New(ctx, workloadapi.Config{Service: "web"},
//		certs.WithLogger(logger))
//	if err != nil {
//		log.Fatal(err) // e.g. workloadapi: unix:///run/spire/agent.sock: no SVID for service "web" (offered: [...])
//	}
//	defer src.Close()
//	// src is a certs.Source: give it to ztnet.New with ztnet.WithSource, or
//	// to go-spiffe's tlsconfig helpers.
package workloadapi
