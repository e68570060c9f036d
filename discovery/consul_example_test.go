package discovery_test

import (
	"context"
	"fmt"
	"log"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/discovery"
)

// A Consul resolver answers from a cache that a blocking query per service
// keeps fresh; it also registers instances (with a TTL health check) and
// balances dials across them. ztnet uses it as WithResolver (and, being a
// Registrar, to register its listeners).
func ExampleNewConsul() {
	client, err := api.NewClient(api.DefaultConfig()) // CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN...
	if err != nil {
		log.Fatal(err)
	}
	consul := discovery.NewConsul(client)
	defer consul.Close()

	ctx := context.Background()
	deregister, err := consul.Register(ctx, discovery.Registration{
		Service: "fortune",
		Address: "10.0.0.7:8443",
		Healthy: func() error { return nil }, // polled every TTL/3
	})
	if err != nil {
		log.Fatal(err) // e.g. "... the ACL token lacks service:write on "fortune" ..."
	}
	defer deregister(ctx)

	instances, err := consul.Resolve(ctx, "fortune") // waits for Consul's first answer
	if err != nil {
		log.Fatal(err)
	}
	for _, in := range consul.Pick("fortune", instances) {
		fmt.Println(in.ID, in.Address)
	}
}
