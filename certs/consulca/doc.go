// Package consulca is the certificate source of ztn backed by Consul's
// Connect CA, through the local Consul agent.
//
// [New] returns a [certs.Rotator] whose SVIDs are the agent's leaf
// certificates for a service (GET /v1/agent/connect/ca/leaf/<service>) and
// whose trust bundle is the CA's roots (GET /v1/agent/connect/ca/roots),
// followed with blocking queries so that a CA rotation breaks no
// connection. Unlike certs/vault, the agent generates the private key and
// returns it over its HTTP API: use an agent on the same host.
//
// Importing this package links Consul's api package; package certs and the
// other backends do not.
//
// # Example
//
// A service whose identity comes from Consul, with a token that has
// service:write on it:
//
//	client, err := api.NewClient(api.DefaultConfig()) // CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN
//	if err != nil {
//		log.Fatal(err)
//	}
//	src, err := consulca.New(ctx, consulca.Config{Client: client, Service: "web"},
//		certs.WithLogger(logger))
//	if err != nil {
//		log.Fatal(err) // e.g. consulca: leaf certificate of "web": permission denied (...)
//	}
//	defer src.Close()
//	// src is a certs.Source: give it to ztnet.New with ztnet.WithSource, or
//	// to go-spiffe's tlsconfig helpers.
package consulca
