// Package vault is the certificate source of ztn backed by Vault's PKI
// secrets engine, and the operator's helpers to set up and rotate that
// engine's CA.
//
// [New] returns a [certs.Rotator]: for each issuance it generates an ECDSA
// P-256 key in the process and has Vault sign a CSR that carries only the
// service's SPIFFE ID; the key never leaves memory. The trust bundle is read
// from the mount's issuers and follows a CA rotation. [Config] says where
// Vault is and how to log in ([Token], [TokenFile], [AppRole],
// [Kubernetes], [JWT], or any vault/api auth method: see [Auth]); the
// token is renewed and replaced in the background.
//
// [Bootstrap] sets up a mount once, with an admin token: a root and an
// intermediate CA whose keys stay in Vault, and for each service a role that
// can sign only that service's SPIFFE ID and a policy allowing it.
// [RotateCA] later rotates that CA without breaking a connection, reporting
// each step (RotateCAConfig.Progress: the new root published, then the
// switch); [RotatedCA.Retire] deletes the previous issuers once no leaf they
// signed can be valid. certs.InspectCA and the metrics ztn.certs.roots and
// ztn.certs.leaf_issuer show each service's progress. The command
// examples/vault-bootstrap bootstraps and rotates from a shell.
//
// Importing this package links vault/api; package certs and the other
// backends do not.
//
// # Example
//
// An operator bootstraps the mount for two services, then each service
// gets its identity from Vault with a token that holds its policy:
//
//	admin, err := api.NewClient(api.DefaultConfig()) // VAULT_ADDR, VAULT_TOKEN
//	if err != nil {
//		log.Fatal(err)
//	}
//	td := spiffeid.RequireTrustDomainFromString("example.org")
//	pki, err := vault.Bootstrap(ctx, admin, vault.BootstrapConfig{
//		TrustDomain: td,
//		Services:    []string{"web", "api"},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Printf("policy of web: %s", pki.Policies["web"]) // ztn-web
//
//	// In the web service, with a token of policy ztn-web:
//	src, err := vault.New(ctx, vault.Config{
//		Service:     "web",
//		TrustDomain: td,
//		Address:     "https://vault.example.org:8200",
//		Auth:        vault.TokenFile("/run/secrets/vault-token"),
//	}, certs.WithLogger(logger))
//	if err != nil {
//		log.Fatal(err) // e.g. vault: role "web" not found at pki/
//	}
//	defer src.Close()
//	// src is a certs.Source: give it to ztnet.New with ztnet.WithSource, or
//	// to go-spiffe's tlsconfig helpers.
package vault
