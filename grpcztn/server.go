package grpcztn

import (
	"context"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"

	"github.com/ztnlabs/ztn/internal/telemetry"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// Listen opens a ztn listener of svc for a gRPC server ([NewServer]): it
// negotiates the "h2" application protocol (with ztn clients as "ztn/1+h2",
// with plain TLS gRPC clients as "h2") and admits sources that have only L7
// intentions, since the server authorizes every RPC
// . The listener is registered with svc's registrar
// (if any) until it is closed; ctx bounds only opening and registering it.
func Listen(ctx context.Context, svc *ztnet.Service, network, addr string) (net.Listener, error) {
	l, err := ztnhook.Of(svc).ListenL7(ctx, network, addr, "h2")
	if err != nil {
		return nil, fmt.Errorf("grpcztn: %w", err)
	}
	return l, nil
}

// ServerOptions returns the options that make a grpc.Server serve ztn
// connections of svc, for a server that [NewServer] does not make (one a
// framework creates, say): the transport credentials, the unary and stream
// interceptors that authorize every RPC and write its access record, and an
// OpenTelemetry stats handler using svc's tracer and meter providers. When both providers are
// OpenTelemetry's no-op ones (trace/noop, metric/noop, given to ztnet.New),
// no stats handler is installed, so telemetry that is off costs nothing.
//
// The authorization interceptors take grpc-go's single-interceptor slots
// (grpc.UnaryInterceptor, grpc.StreamInterceptor), which grpc-go runs before
// every chained interceptor: interceptors added with
// grpc.ChainUnaryInterceptor and grpc.ChainStreamInterceptor run after the
// authorization check, whether their options come before or after these.
// grpc.NewServer panics if the options also hold grpc.UnaryInterceptor or
// grpc.StreamInterceptor.
func ServerOptions(svc *ztnet.Service) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.Creds(newCredentials()),
		grpc.UnaryInterceptor(unaryServerInterceptor(svc)),
		grpc.StreamInterceptor(streamServerInterceptor(svc)),
	}
	if !telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		opts = append(opts, grpc.StatsHandler(serverStatsHandler(svc)))
	}
	return opts
}

// NewServer returns a grpc.Server for svc with [ServerOptions](svc) followed
// by opts. Serve it on a listener from [Listen]:
//
//	srv := grpcztn.NewServer(svc)
//	healthpb.RegisterHealthServer(srv, health.NewServer())
//	l, err := grpcztn.Listen(ctx, svc, "tcp", ":8443")
//	go srv.Serve(l)
//
// Interceptors given in opts with grpc.ChainUnaryInterceptor and
// grpc.ChainStreamInterceptor run after the authorization check, in the
// order given, with the caller's identity in the context ([Peer]); a refused
// RPC never reaches them. grpc.UnaryInterceptor and grpc.StreamInterceptor
// would run before it (grpc-go runs them ahead of every chained
// interceptor, and grpc.ServerOption cannot be inspected to move them), so
// ztn's authorization holds those slots and NewServer panics, as grpc-go
// does for a slot set twice, if opts hold either.
func NewServer(svc *ztnet.Service, opts ...grpc.ServerOption) *grpc.Server {
	defer func() {
		if r := recover(); r != nil {
			if msg, ok := r.(string); ok && strings.Contains(msg, "interceptor was already set") {
				panic("grpcztn: new server: grpc.UnaryInterceptor and grpc.StreamInterceptor would run before ztn's authorization, " +
					"whose interceptors hold those slots; use grpc.ChainUnaryInterceptor and grpc.ChainStreamInterceptor, " +
					"which run after it (grpc: " + msg + ")")
			}
			panic(r)
		}
	}()
	return grpc.NewServer(append(ServerOptions(svc), opts...)...)
}
