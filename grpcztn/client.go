package grpcztn

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"

	"github.com/ztnlabs/ztn/internal/telemetry"
	"github.com/ztnlabs/ztn/ztnet"
)

// roundRobin is the default service config: spread RPCs over every healthy
// instance.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// NewClient returns a gRPC client connection from svc to service over ztn.
// Instances come from svc's resolver (re-read every second and whenever a
// connection fails) and RPCs are spread over them round robin; each
// connection is made by svc.DialAddress, so the server is authenticated as
// service and its verdict on svc arrives before any RPC. An OpenTelemetry
// stats handler using svc's providers is installed, unless both are
// OpenTelemetry's no-op providers (as in ServerOptions). opts come after these
// defaults and can override them (grpc.WithDefaultServiceConfig, say).
//
// A refusal by the server's policy surfaces as codes.Unavailable with the
// server's reason in the message; a refusal of one RPC by an L7 intention
// as codes.PermissionDenied.
func NewClient(svc *ztnet.Service, service string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if svc == nil {
		return nil, errors.New("grpcztn: new client: nil Service")
	}
	if svc.Resolver() == nil {
		return nil, fmt.Errorf("grpcztn: new client for %s: the Service has no resolver (ztnet.WithResolver)", service)
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(Credentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return svc.DialAddress(ctx, service, addr, ztnet.WithProtocols("h2"))
		}),
		grpc.WithResolvers(NewResolverBuilder(svc.Resolver(), 0)),
		grpc.WithDefaultServiceConfig(roundRobin),
	}
	if !telemetry.Off(svc.TracerProvider(), svc.MeterProvider()) {
		base = append(base, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(svc.TracerProvider()),
			otelgrpc.WithMeterProvider(svc.MeterProvider()))))
	}
	cc, err := grpc.NewClient(Scheme+":///"+service, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcztn: new client for %s: %w", service, err)
	}
	return cc, nil
}
