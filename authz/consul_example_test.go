package authz_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/authz"
)

// The intentions that apply to "api" are kept in sync from Consul and
// evaluated in memory; with a maximum staleness the authorizer fails closed
// when Consul has been unreachable for too long.
func ExampleNewConsul() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	az, err := authz.NewConsul(client, "api",
		authz.WithConsulDefaultAllow(), // as Consul with ACLs disabled
		authz.WithConsulMaxStaleness(10*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer az.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := az.WaitSynced(ctx); err != nil {
		log.Fatal(err) // denies everything until synced
	}
	d := az.Authorize(authz.Request{
		Source:      svc("web"),
		Destination: svc("api"),
	})
	fmt.Println(d) // e.g. "allow: intention web → api allows (precedence 9)"
}
