package consul_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/discovery"
)

// The intentions that apply to "api" are kept in sync from Consul and
// evaluated in memory; with a maximum staleness the authorizer fails closed
// when Consul has been unreachable for too long.
func ExampleNewIntentions() {
	client, err := api.NewClient(api.DefaultConfig()) // CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN...
	if err != nil {
		log.Fatal(err)
	}
	az, err := consul.NewIntentions(consul.Config{Client: client}, "api",
		consul.WithDefaultAllow(), // as Consul with ACLs disabled
		consul.WithMaxStaleness(10*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer az.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := az.WaitSynced(ctx); err != nil {
		log.Fatal(err) // denies everything until synced
	}
	td := spiffeid.RequireTrustDomainFromString("example.org")
	d := az.Authorize(authz.Request{
		Source:      ztn.NewServiceID(td, "dc1", "web"),
		Destination: ztn.NewServiceID(td, "dc1", "api"),
	})
	fmt.Println(d) // e.g. "allow: intention web → api allows (precedence 9)"
}

// A Catalog answers from a cache that a blocking query per service keeps
// fresh; it also registers instances (with a TTL health check) and
// balances dials across them. ztnet uses it as its resolver (and, being a
// Registrar, to register its listeners).
func ExampleNewCatalog() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	catalog, err := consul.NewCatalog(consul.Config{Client: client})
	if err != nil {
		log.Fatal(err)
	}
	defer catalog.Close()

	ctx := context.Background()
	deregister, err := catalog.Register(ctx, discovery.Registration{
		Service: "fortune",
		Address: "10.0.0.7:8443",
		Healthy: func() error { return nil }, // polled every TTL/3
	})
	if err != nil {
		log.Fatal(err) // e.g. "... the ACL token lacks service:write on "fortune" ..."
	}
	defer deregister(ctx)

	instances, err := catalog.Resolve(ctx, "fortune") // waits for Consul's first answer
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range catalog.Pick("fortune", instances) {
		fmt.Println(in.ID, in.Address)
	}
}

// A Config is checked when a backend is made: it needs a client.
func ExampleConfig() {
	_, err := consul.NewCatalog(consul.Config{})
	fmt.Println(err)
	// Output: consul: catalog: nil Config.Client
}
