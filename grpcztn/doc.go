// Package grpcztn carries gRPC over ztn: servers on ztn listeners with every
// RPC authorized against L7 intentions, and clients that find instances
// through discovery and connect with ztnet.
//
// A complete program, on ztnet's embedded development mesh (with a real
// mesh, the Services come from [ztnet.New] instead), where web checks api's
// health:
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"log"
//
//		"google.golang.org/grpc/health"
//		healthpb "google.golang.org/grpc/health/grpc_health_v1"
//
//		"github.com/ztnlabs/ztn/authz"
//		"github.com/ztnlabs/ztn/grpcztn"
//		"github.com/ztnlabs/ztn/ztnet"
//	)
//
//	func main() {
//		ctx := context.Background()
//		mesh, err := ztnet.NewDev()
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer mesh.Close()
//		entries, err := authz.ParseConfigEntries([]byte(`[{"Kind": "service-intentions", "Name": "api",
//			"Sources": [{"Name": "web", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/grpc.health.v1.Health/"}}]}]}]`))
//		if err != nil {
//			log.Fatal(err)
//		}
//		if err := mesh.Policy().Set(entries...); err != nil {
//			log.Fatal(err)
//		}
//		api, err := mesh.Service(ctx, "api")
//		if err != nil {
//			log.Fatal(err)
//		}
//		web, err := mesh.Service(ctx, "web")
//		if err != nil {
//			log.Fatal(err)
//		}
//
//		// The server.
//		l, err := grpcztn.Listen(ctx, api, "tcp", "127.0.0.1:0")
//		if err != nil {
//			log.Fatal(err)
//		}
//		srv := grpcztn.NewServer(api)
//		healthpb.RegisterHealthServer(srv, health.NewServer())
//		go srv.Serve(l)
//		defer srv.Stop()
//
//		// The client: the target is the service's name.
//		cc, err := grpcztn.NewClient(web, "api")
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer cc.Close()
//		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
//		if err != nil {
//			log.Fatal(err)
//		}
//		fmt.Println(resp.Status) // SERVING
//	}
//
// # Server
//
// [Listen] opens a ztn listener that negotiates HTTP/2 ("h2") and admits
// sources that have only L7 intentions, since the server judges every RPC;
// [NewServer] returns a *grpc.Server with ztn's transport credentials, the
// interceptors that authorize every RPC, and otelgrpc. [ServerOptions] are
// the same options, for a grpc.Server that something else creates.
// Handlers read the caller with [Peer].
//
// # Authorization
//
// Each RPC is judged as an HTTP request with method POST, path
// "/pkg.Service/Method" and the request metadata as headers, as Consul's
// Envoy does: permissions in order, the first match decides, and when an L7
// intention matches but none of its permissions does, the default decides.
// A refused RPC fails with codes.PermissionDenied and the reason. A header
// condition on "host" reads ":authority" (gRPC moves Host there). An RPC
// whose path is not clean as httpztn's paths must be (a dot segment, a
// repeated slash, a percent-encoding) fails with codes.InvalidArgument
// before any intention is read.
//
// Order on the server: ztn's authorization runs first, then the
// interceptors given with grpc.ChainUnaryInterceptor and
// grpc.ChainStreamInterceptor (in the order given, whether before or after
// [ServerOptions]), then the handler; a refused RPC reaches neither. ztn's
// authorization holds grpc-go's single-interceptor slots, which grpc-go
// runs ahead of every chained interceptor, so [NewServer] refuses (panics
// on) grpc.UnaryInterceptor and grpc.StreamInterceptor. Stats handlers
// (grpc.StatsHandler) and tap handles (grpc.InTapHandle) see every RPC,
// refused ones included, as grpc-go calls them before any interceptor.
//
// # Client
//
// [NewClient] returns a *grpc.ClientConn to a service by name (target
// "ztn:///<service>"), spreading RPCs round robin over its instances.
//
// # Errors
//
// A client the server's intentions refuse at the connection gets
// codes.PermissionDenied with the server's reason, and errors.As finds the
// *ztnet.DeniedError in the error; a server that presents the wrong
// identity fails the RPC with codes.Unavailable holding a
// *ztnet.RejectedError; an RPC whose context ended holds the context's
// error (errors.Is). gRPC backs off between connection attempts to an
// instance that refused or failed (see [NewClient]).
//
// # Logs
//
// The server writes one access record per RPC ("ztn request": source,
// destination, method, decision, reason, code, duration) on the Service's
// logger: allowed RPCs at Debug, refused ones at Warn. A library stays
// quiet by default, so the default logger (Info) shows refusals only; for
// the full access log give the Service a logger at Debug:
//
//	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
//	svc, err := ztnet.New(ctx, "api", ztnet.WithLogger(logger), ...)
//
// # OpenTelemetry
//
// [NewServer] and [NewClient] install otelgrpc with the Service's tracer and
// meter providers, unless both are OpenTelemetry's no-op ones
// (ztnet.WithTracerProvider(noop.NewTracerProvider()) and the metric
// counterpart): then nothing is installed and telemetry costs nothing. The
// trace context crosses services in the W3C traceparent metadata, whatever
// OpenTelemetry's global propagator is (baggage does not cross), so an RPC
// through several services is one trace; the client and server spans of an
// RPC carry both ends' SPIFFE IDs (ztnet.AttrSourceID,
// ztnet.AttrDestinationID).
//
// # Security
//
// The transport credentials do no TLS themselves: ztnet has already run
// mutual TLS 1.3, verified the peer's SPIFFE ID and authorized the
// connection by the time gRPC sees it. They accept only *ztnet.Conn
// (anything else fails the handshake, so a misconfigured server serves
// nobody) and report PrivacyAndIntegrity, so grpc-go's checks that depend
// on the security level stay meaningful. Plain gRPC clients with their own
// TLS can call a grpcztn server too (ALPN "h2"): they are authorized in the
// TLS handshake by their client certificate, which must chain to the mesh's
// trust bundle.
package grpcztn
