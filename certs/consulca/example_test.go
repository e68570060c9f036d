package consulca_test

import (
	"context"
	"log"

	"github.com/hashicorp/consul/api"

	"github.com/ztnlabs/ztn/certs/consulca"
)

// A service whose identity comes from Consul's Connect CA through the local
// agent. The token (CONSUL_HTTP_TOKEN) needs service:write on "web".
func ExampleNew() {
	ctx := context.Background()
	client, err := api.NewClient(api.DefaultConfig()) // CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN
	if err != nil {
		log.Fatal(err)
	}
	src, err := consulca.New(ctx, consulca.Config{Client: client, Service: "web"})
	if err != nil {
		log.Fatal(err) // e.g. consulca: leaf certificate of "web": permission denied (the token needs service:write on "web"): ...
	}
	defer src.Close()
	// src is a certs.Source: pass it to ztnet.New with ztnet.WithSource, or
	// to go-spiffe's tlsconfig helpers.
}
