package grpcztn

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/internal/httppath"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// unaryServerInterceptor authorizes every unary RPC against svc's L7
// intentions, as an HTTP request with method POST, path
// "/pkg.Service/Method" and the request metadata as headers. A refused RPC
// fails with codes.PermissionDenied and the reason; an RPC that did not come
// over a ztn connection fails with codes.Unauthenticated. Each RPC gets one
// access-log record on svc's logger: at Debug when it was allowed, at Warn
// when it was refused.
func unaryServerInterceptor(svc *ztnet.Service) grpc.UnaryServerInterceptor {
	a := newAuthorizer(svc)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := a.start(ctx)
		ai, d, err := a.check(ctx, info.FullMethod)
		if err != nil {
			a.record(ctx, ai, info.FullMethod, d, err, start)
			return nil, err
		}
		resp, err := handler(ctx, req)
		a.record(ctx, ai, info.FullMethod, d, err, start)
		return resp, err
	}
}

// streamServerInterceptor authorizes every streaming RPC, when it starts,
// the way unaryServerInterceptor does unary ones.
func streamServerInterceptor(svc *ztnet.Service) grpc.StreamServerInterceptor {
	a := newAuthorizer(svc)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		start := a.start(ctx)
		ai, d, err := a.check(ctx, info.FullMethod)
		if err != nil {
			a.record(ctx, ai, info.FullMethod, d, err, start)
			return err
		}
		err = handler(srv, ss)
		a.record(ctx, ai, info.FullMethod, d, err, start)
		return err
	}
}

type authorizer struct {
	svc  *ztnet.Service
	log  *slog.Logger
	dest slog.Attr // the access records' destination, formatted once
	// asDestination is svc's SPIFFE ID as the span attribute
	// ztnet.AttrDestinationID (telemetry.go).
	asDestination attribute.KeyValue
}

func newAuthorizer(svc *ztnet.Service) *authorizer {
	id := svc.ID().String()
	return &authorizer{svc: svc, log: ztnhook.Of(svc).Logger(), dest: slog.String("destination", id),
		asDestination: attribute.String(ztnet.AttrDestinationID, id)}
}

// start returns the time an RPC starts, or zero when no access record will
// be written (the logger is off at Warn), to spare the clock.
func (a *authorizer) start(ctx context.Context) time.Time {
	if a.log.Enabled(ctx, slog.LevelWarn) {
		return time.Now()
	}
	return time.Time{}
}

// rpcRequest is what authz judges of an RPC. Its headers are the RPC's
// incoming metadata, read in place when a permission has a header
// condition, instead of being copied by metadata.FromIncomingContext.
type rpcRequest struct {
	authz.HTTPRequest
	ctx context.Context
}

// Values returns the incoming metadata under name (lower case); "host"
// reads ":authority", where gRPC puts a Host header, as Envoy does.
func (r *rpcRequest) Values(name string) []string {
	if name == "host" {
		name = ":authority"
	}
	return metadata.ValueFromIncomingContext(r.ctx, name)
}

// check returns the peer and the decision, and a status error when the RPC
// must not run.
func (a *authorizer) check(ctx context.Context, method string) (authInfo, authz.Decision, error) {
	ai, ok := peerAuthInfo(ctx)
	if !ok {
		return ai, authz.Decision{}, status.Error(codes.Unauthenticated, "grpcztn: the RPC did not come over a ztn connection")
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String(ztnet.AttrSourceID, ai.peer.String()), a.asDestination)
	}
	if err := httppath.CheckClean(method); err != nil { // the path httpztn and the gateway would judge
		return ai, authz.Decision{}, status.Error(codes.InvalidArgument, "grpcztn: "+err.Error())
	}
	r := &rpcRequest{ctx: ctx}
	r.HTTPRequest = authz.HTTPRequest{Path: method, Method: http.MethodPost, HeaderSource: r}
	d := ztnhook.Of(a.svc).AuthorizeRequest(ctx, ai.peer, &r.HTTPRequest)
	if !d.Allowed {
		return ai, d, status.Error(codes.PermissionDenied, "grpcztn: "+ai.peer.String()+" denied: "+d.Reason())
	}
	return ai, d, nil
}

// record writes the access record of an RPC: at Debug when it was allowed,
// at Warn when it was refused.
func (a *authorizer) record(ctx context.Context, ai authInfo, method string, d authz.Decision, err error, start time.Time) {
	level, decision := slog.LevelWarn, "deny"
	if d.Allowed {
		level, decision = slog.LevelDebug, "allow"
	}
	if start.IsZero() || !a.log.Enabled(ctx, level) {
		return
	}
	a.log.LogAttrs(ctx, level, "ztn request",
		slog.String("protocol", "grpc"),
		slog.String("source", ai.peer.String()),
		a.dest,
		slog.String("method", method),
		slog.String("decision", decision),
		slog.String("reason", d.Reason()),
		slog.String("code", status.Code(err).String()),
		slog.Duration("duration", time.Since(start)))
}
