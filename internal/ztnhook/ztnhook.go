// Package ztnhook is how ztnet's adapters, grpcztn and httpztn, reach what
// they need of a *ztnet.Service beyond its public API, the way grpc-go's
// internal package serves grpc-go's own subpackages: ztnet sets Of when it
// is initialized, and the adapters call it. Being internal, it is no API:
// programs outside this module cannot import it.
//
// Keep it tiny: a method belongs here only when an adapter needs it and a
// user of ztnet does not.
package ztnhook

import (
	"context"
	"log/slog"
	"net"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
)

// Service is what the adapters use of a *ztnet.Service. On a Service that
// New did not make, the methods return a logger that discards, no-op
// providers, a nil Resolver, errors, and denials.
type Service interface {
	// Logger returns the Service's logger (ztnet.WithLogger), for the
	// adapters' access records.
	Logger() *slog.Logger
	// MeterProvider returns the Service's OpenTelemetry meter provider.
	MeterProvider() metric.MeterProvider
	// TracerProvider returns the Service's OpenTelemetry tracer provider.
	TracerProvider() trace.TracerProvider
	// Resolver returns how the Service finds instances (nil without
	// ztnet.WithResolver), for adapters that balance themselves.
	Resolver() discovery.Resolver
	// DialAddress connects to the instance of service at address with the
	// checks of Dial, offering the application protocols protos by ALPN.
	// The net.Conn is a *ztnet.Conn.
	DialAddress(ctx context.Context, service, address string, protos ...string) (net.Conn, error)
	// ListenL7 is Listen, offering protos, for a server that judges every
	// request with AuthorizeRequest: a source whose intention has only L7
	// permissions is admitted at connection level.
	ListenL7(ctx context.Context, network, addr string, protos ...string) (net.Listener, error)
	// AuthorizeRequest judges one request from peer to the Service against
	// the L7 intentions, and counts the decision in ztn.authz.decisions. It
	// never blocks on the network.
	AuthorizeRequest(ctx context.Context, peer ztn.ServiceID, req *authz.HTTPRequest) authz.Decision
}

// Of returns the adapters' view of svc, which must be a *ztnet.Service (it
// panics otherwise). ztnet sets it in its init function.
var Of func(svc any) Service
