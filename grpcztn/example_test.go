package grpcztn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// A gRPC health check from web to api through a development mesh, with an
// L7 intention that lets web call only the health service.
func Example() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer mesh.Close()
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
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}

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

// A server's interceptor (given to NewServer, it runs after ztn's
// authorization) reads who called with Peer.
func ExamplePeer() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer mesh.Close()
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"api",
	  "Sources":[{"Name":"web","Action":"allow"}]}]`))
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
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}

	callers := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if caller, ok := grpcztn.Peer(ctx); ok {
			fmt.Printf("%s called by %s (%s)\n", info.FullMethod, caller.Name, caller)
		}
		return h(ctx, req)
	}
	l, err := grpcztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpcztn.NewServer(api, grpc.ChainUnaryInterceptor(callers))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	cc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		log.Fatal(err)
	}
	// Output: /grpc.health.v1.Health/Check called by web (spiffe://ztn.dev/ns/default/dc/dc1/svc/web)
}

// A client that api's intentions do not admit gets codes.PermissionDenied
// with api's reason, and errors.As finds the *ztnet.DeniedError.
func ExampleNewClient_denied() {
	ctx := context.Background()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	defer mesh.Close()
	if err := mesh.Policy().Set(); err != nil { // no intention: every caller is denied
		log.Fatal(err)
	}
	api, err := mesh.Service(ctx, "api")
	if err != nil {
		log.Fatal(err)
	}
	web, err := mesh.Service(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	l, err := grpcztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpcztn.NewServer(api)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	cc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println(status.Code(err))
	var denied *ztnet.DeniedError
	if errors.As(err, &denied) {
		fmt.Println(denied.Reason)
	}
	// Output:
	// PermissionDenied
	// no intention matches (default deny)
}
