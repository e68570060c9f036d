// Package grpcztn carries gRPC over ztn: servers on ztn listeners with every
// RPC authorized against L7 intentions, and clients that find instances
// through discovery and connect with ztnet.
//
// Server:
//
//	l, err := grpcztn.Listen(ctx, svc, "tcp", ":8443") // ALPN h2, L7 enforced
//	srv := grpcztn.NewServer(svc)                     // creds, authz interceptors, otelgrpc
//	pb.RegisterGreeterServer(srv, greeter{})
//	go srv.Serve(l)
//
// Each RPC is judged as an HTTP request with method POST, path
// "/pkg.Service/Method" and the request metadata as headers, as Consul's
// Envoy does: permissions in order, the first match decides, and when an L7
// intention matches but none of its permissions does, the default decides.
// A refused RPC fails with codes.PermissionDenied and the reason. A header
// condition on "host" reads ":authority" (gRPC moves Host there). An RPC
// whose path is not clean as httpztn's paths must be (a dot segment, a
// repeated slash, a percent-encoding) fails with codes.InvalidArgument
// before any intention is read. Handlers read the caller with PeerID(ctx).
//
// Order on the server: ztn's authorization runs first, then the
// interceptors given with grpc.ChainUnaryInterceptor and
// grpc.ChainStreamInterceptor (in the order given, whether before or after
// ServerOptions), then the handler; a refused RPC reaches neither. ztn's
// authorization holds grpc-go's single-interceptor slots, which grpc-go
// runs ahead of every chained interceptor, so NewServer refuses (panics on)
// grpc.UnaryInterceptor and grpc.StreamInterceptor. Stats handlers
// (grpc.StatsHandler) and tap handles (grpc.InTapHandle) see every RPC,
// refused ones included, as grpc-go calls them before any interceptor.
//
// Client:
//
//	cc, err := grpcztn.NewClient(svc, "greeter") // target ztn:///greeter, round robin
//	defer cc.Close()
//	reply, err := pb.NewGreeterClient(cc).SayHello(ctx, req)
//
// A client the server's intentions refuse at the connection gets
// codes.PermissionDenied with the server's reason, and DeniedError finds
// the *ztnet.DeniedError in the error; a server that presents the wrong
// identity fails the RPC with codes.Unavailable holding a
// *ztnet.RejectedError; an RPC whose context ended holds the context's
// error (errors.Is). gRPC backs off between connection attempts to an
// instance that refused or failed (see NewClient).
//
// OpenTelemetry: NewServer and NewClient install otelgrpc with the Service's
// tracer and meter providers, unless both are OpenTelemetry's no-op ones
// (ztnet.WithTracerProvider(noop.NewTracerProvider()) and the metric
// counterpart): then nothing is installed and telemetry costs nothing.
//
// Security: the transport credentials (Credentials) do no TLS themselves:
// ztnet has already run mutual TLS 1.3, verified the peer's SPIFFE ID and
// authorized the connection by the time gRPC sees it. They accept only
// *ztnet.Conn (anything else fails the handshake, so a misconfigured server
// serves nobody) and report PrivacyAndIntegrity with the peer's identity in
// AuthInfo, so grpc-go's checks that depend on the security level stay
// meaningful. Plain gRPC clients with their own TLS can call a grpcztn
// server too (ALPN "h2"): they are authorized in the TLS handshake by their
// client certificate, which must chain to the mesh's trust bundle.
package grpcztn
