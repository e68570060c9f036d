package grpcztn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/internal/test/benchpair"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// benchIntentions lets web call the health service under an L7 intention
// whose deciding permission has a header condition, so every RPC is judged
// on its path and metadata.
const benchIntentions = `[{"Kind":"service-intentions","Name":"api","Sources":[
  {"Name":"web","Permissions":[
     {"Action":"deny","HTTP":{"PathPrefix":"/admin"}},
     {"Action":"allow","HTTP":{"PathPrefix":"/grpc.health.v1.Health/","Header":[{"Name":"x-tenant","Present":true}]}}]}]}]`

// BenchmarkPairedUnary reports unary RPCs per second (health Check, on
// persistent connections) through grpcztn and through the same grpc-go
// stack over plain crypto/tls mutual TLS with the same certificates, and
// the ratio, for each stack (benchpair.Adapter) at concurrency 1 and 16.
// Both sides of a stack carry the same instrumentation and write the same
// per-RPC access record with the same logger, so the ratio charges ztn only
// for what it adds: the ztn connection and the per-RPC authorization.
func BenchmarkPairedUnary(b *testing.B) { benchpair.Adapter(b, "rpcs", benchPair) }

// benchPair returns one health Check through plain TLS and one through ztn,
// both servers and clients logging with logger and instrumented with
// otelgrpc when otel is set.
func benchPair(b *testing.B, logger *slog.Logger, otel bool) (raw, zt func() error) {
	m := meshtest.Dev(b, ztnet.WithLogger(logger))
	meshtest.Intentions(b, m, benchIntentions)
	// ztn: as grpcztn.NewServer and NewClient set it up; without otel, the
	// Services' providers are no-op, so the constructors install none.
	var opts []ztnet.Option
	if !otel {
		opts = meshtest.NoTelemetry()
	}
	api, web := meshtest.Service(b, m, "api", opts...), meshtest.Service(b, m, "web", opts...)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant", "blue")
	req := &healthpb.HealthCheckRequest{}
	healthServer(b, api)
	zc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = zc.Close() })
	zhc := healthpb.NewHealthClient(zc)

	// Plain TLS: the same grpc-go, certificates, otelgrpc and access record.
	roots := x509.NewCertPool()
	for _, r := range m.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}
	sopts := []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{svidCert(b, m.CA(), "api")},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots,
		})),
		grpc.ChainUnaryInterceptor(accessLogInterceptor(logger, api.ID().String())),
	}
	copts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{svidCert(b, m.CA(), "web")},
		RootCAs: roots, InsecureSkipVerify: true, // URI SAN only; the chain is what matters here
	}))}
	if otel {
		sopts = append(sopts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(ztnhook.Of(api).TracerProvider()), otelgrpc.WithMeterProvider(ztnhook.Of(api).MeterProvider()))))
		copts = append(copts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(ztnhook.Of(web).TracerProvider()), otelgrpc.WithMeterProvider(ztnhook.Of(web).MeterProvider()))))
	}
	rawSrv := grpc.NewServer(sopts...)
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serve(b, rawSrv, rl)
	rc, err := grpc.NewClient("passthrough:///"+rl.Addr().String(), copts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rc.Close() })
	rhc := healthpb.NewHealthClient(rc)

	call := func(c healthpb.HealthClient) func() error {
		return func() error { _, err := c.Check(ctx, req); return err }
	}
	return call(rhc), call(zhc)
}

// serve registers the health service on srv and serves l until cleanup.
func serve(b *testing.B, srv *grpc.Server, l net.Listener) {
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	b.Cleanup(func() { srv.Stop(); <-done })
}

// accessLogInterceptor writes the access record grpcztn writes, for the
// plain TLS server: the same attributes, at Debug, only when enabled.
func accessLogInterceptor(l *slog.Logger, dest string) grpc.UnaryServerInterceptor {
	destAttr := slog.String("destination", dest)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if !l.Enabled(ctx, slog.LevelDebug) {
			return h(ctx, req)
		}
		start := time.Now()
		resp, err := h(ctx, req)
		var src string
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 && len(ti.State.PeerCertificates[0].URIs) > 0 {
				src = ti.State.PeerCertificates[0].URIs[0].String()
			}
		}
		l.LogAttrs(ctx, slog.LevelDebug, "tls request",
			slog.String("protocol", "grpc"),
			slog.String("source", src),
			destAttr,
			slog.String("method", info.FullMethod),
			slog.String("decision", "allow"),
			slog.String("reason", "client certificate verified"),
			slog.String("code", status.Code(err).String()),
			slog.Duration("duration", time.Since(start)))
		return resp, err
	}
}

// BenchmarkUnaryInterceptor measures the per-RPC work of
// UnaryServerInterceptor (peer, L7 authorization with a header condition
// read from the metadata, access record at Error level) around a handler
// that does nothing.
func BenchmarkUnaryInterceptor(b *testing.B) {
	m := meshtest.Dev(b)
	meshtest.Intentions(b, m, benchIntentions)
	api, web := meshtest.Service(b, m, "api"), meshtest.Service(b, m, "web")
	ai := grpcztn.NewAuthInfo(web.ID())
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: ai})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(
		":authority", "api", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0", "x-tenant", "blue"))
	in := grpcztn.UnaryServerInterceptor(api)
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in(ctx, nil, info, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnary reports the cost of one health Check, one at a time,
// through plain TLS and through ztn in each stack: run it with -benchmem to
// compare allocations per RPC.
func BenchmarkUnary(b *testing.B) { benchpair.AdapterEach(b, benchPair) }
