package vault_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs/vault"
)

// A service whose identity comes from Vault's PKI engine, logging in with
// AppRole. The mount and the service's role are set up once by an operator
// with Bootstrap (or go run ./examples/vault-bootstrap).
func ExampleNew() {
	ctx := context.Background()
	src, err := vault.New(ctx, vault.Config{
		Service:     "web",
		TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		Address:     "https://vault.example.org:8200",
		Auth:        vault.AppRole(os.Getenv("ROLE_ID"), os.Getenv("SECRET_ID"), ""),
		TTL:         time.Hour,
	})
	if err != nil {
		log.Fatal(err) // e.g. vault: role "web" not found at pki/
	}
	defer src.Close()
	// src is a certs.Source: pass it to ztnet.New with ztnet.WithSource, or
	// to go-spiffe's tlsconfig helpers.
}

// The one-time setup of a PKI mount for two services, with an admin token.
func ExampleBootstrap() {
	ctx := context.Background()
	client, err := api.NewClient(api.DefaultConfig()) // VAULT_ADDR, VAULT_TOKEN
	if err != nil {
		log.Fatal(err)
	}
	pki, err := vault.Bootstrap(ctx, client, vault.BootstrapConfig{
		TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		Services:    []string{"web", "api"},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("roles %v, policies %v", pki.Roles, pki.Policies)
}
