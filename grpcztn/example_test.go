package grpcztn_test

import (
	"context"
	"fmt"
	"log"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// A gRPC health check from web to api through a development mesh, with an
// L7 intention that lets web call only the health service.
func Example() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(discard))
	if err != nil {
		log.Fatal(err)
	}
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"api",
	  "Sources":[{"Name":"web","Permissions":[
	    {"Action":"allow","HTTP":{"PathPrefix":"/grpc.health.v1.Health/"}}]}]}]`))
	if err != nil {
		log.Fatal(err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		log.Fatal(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		log.Fatal(err)
	}
	defer api.Close()
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	defer web.Close()

	// The server.
	l, err := grpcztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpcztn.NewServer(api)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	// The client.
	cc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	// Output: SERVING
}
