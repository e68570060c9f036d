package grpcztn

import (
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"github.com/ztnlabs/ztn/internal/telemetry"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// roundRobin is the default service config: spread RPCs over every healthy
// instance.
const roundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// NewClient returns a gRPC client connection from svc to service over ztn
// (target "ztn:///<service>"). Instances come from svc's resolver (through
// [NewResolverBuilder]) and RPCs are spread over them round robin; each
// connection is made by the Service as Dial would, so the server is
// authenticated as service and its verdict on svc arrives before any RPC.
// An OpenTelemetry stats handler using svc's providers is installed, unless
// both are OpenTelemetry's no-op providers (as in [ServerOptions]). opts
// come after these defaults and can override them
// (grpc.WithDefaultServiceConfig, say).
//
// Errors: when the server's policy refuses this client's connection, RPCs
// fail with codes.PermissionDenied and the server's reason, and the error
// holds the *ztnet.DeniedError (errors.As finds it); a refusal of one
// RPC by an L7 intention is codes.PermissionDenied too, with the reason in
// the message only. When this client rejects the server (it presented
// another identity than service's, or one the mesh does not trust), RPCs
// fail with codes.Unavailable, as another instance may do, and the error
// holds the *ztnet.RejectedError. An RPC whose context ended fails with
// codes.Canceled or codes.DeadlineExceeded and errors.Is finds the
// context's error. After a failed or refused connection, gRPC backs off
// before dialing that instance again (a second, growing 1.6 times per
// failure, up to two minutes; grpc.WithConnectParams changes it). These
// errors are set by the client's innermost interceptors, which run after
// every interceptor given in opts, so those see them too.
func NewClient(svc *ztnet.Service, service string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if svc == nil {
		return nil, errors.New("grpcztn: new client: nil Service")
	}
	if ztnhook.Of(svc).Resolver() == nil {
		return nil, fmt.Errorf("grpcztn: new client for %s: the Service has no resolver (ztnet.WithResolver)", service)
	}
	d := newDialer(svc, service)
	all := []grpc.DialOption{
		grpc.WithTransportCredentials(newCredentials()),
		grpc.WithContextDialer(d.dial),
		grpc.WithResolvers(NewResolverBuilder(ztnhook.Of(svc).Resolver(), 0)),
		grpc.WithDefaultServiceConfig(roundRobin),
	}
	if !telemetry.Off(ztnhook.Of(svc).TracerProvider(), ztnhook.Of(svc).MeterProvider()) {
		all = append(all, grpc.WithStatsHandler(clientStatsHandler(svc)))
	}
	all = append(all, opts...)
	// Last in the chains, so innermost: every interceptor of opts sees
	// the errors they set.
	all = append(all, grpc.WithChainUnaryInterceptor(d.unary), grpc.WithChainStreamInterceptor(d.stream))
	cc, err := grpc.NewClient(Scheme+":///"+service, all...)
	if err != nil {
		return nil, fmt.Errorf("grpcztn: new client for %s: %w", service, err)
	}
	return cc, nil
}
