package grpcztn

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/ztnet"
)

// UnaryServerInterceptor authorizes every unary RPC against svc's L7
// intentions, as an HTTP request with method POST, path
// "/pkg.Service/Method" and the request metadata as headers. A refused RPC
// fails with codes.PermissionDenied and the reason; an RPC that did not come
// over a ztn connection fails with codes.Unauthenticated. Each RPC gets one
// access-log record on svc's logger.
func UnaryServerInterceptor(svc *ztnet.Service) grpc.UnaryServerInterceptor {
	a := authorizer{svc: svc}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		ai, d, err := a.check(ctx, info.FullMethod)
		if err != nil {
			a.log(ctx, ai, info.FullMethod, d, err, start)
			return nil, err
		}
		resp, err := handler(ctx, req)
		a.log(ctx, ai, info.FullMethod, d, err, start)
		return resp, err
	}
}

// StreamServerInterceptor authorizes every streaming RPC, when it starts,
// the way UnaryServerInterceptor does unary ones.
func StreamServerInterceptor(svc *ztnet.Service) grpc.StreamServerInterceptor {
	a := authorizer{svc: svc}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		ctx := ss.Context()
		ai, d, err := a.check(ctx, info.FullMethod)
		if err != nil {
			a.log(ctx, ai, info.FullMethod, d, err, start)
			return err
		}
		err = handler(srv, ss)
		a.log(ctx, ai, info.FullMethod, d, err, start)
		return err
	}
}

type authorizer struct{ svc *ztnet.Service }

// check returns the peer and the decision, and a status error when the RPC
// must not run.
func (a authorizer) check(ctx context.Context, method string) (AuthInfo, authz.Decision, error) {
	ai, ok := peerAuthInfo(ctx)
	if !ok {
		return ai, authz.Decision{}, status.Error(codes.Unauthenticated, "grpcztn: the RPC did not come over a ztn connection")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	// metadata keys are lower case; authz matches headers case-insensitively.
	d := a.svc.AuthorizeRequest(ctx, ai.Service, &authz.HTTPRequest{Path: method, Method: http.MethodPost, Header: http.Header(md)})
	if !d.Allowed {
		return ai, d, status.Error(codes.PermissionDenied, "grpcztn: "+ai.ID.String()+" denied: "+d.Reason())
	}
	return ai, d, nil
}

func (a authorizer) log(ctx context.Context, ai AuthInfo, method string, d authz.Decision, err error, start time.Time) {
	l := a.svc.Logger()
	if !l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	decision := "deny"
	if d.Allowed {
		decision = "allow"
	}
	l.LogAttrs(ctx, slog.LevelInfo, "ztn request",
		slog.String("protocol", "grpc"),
		slog.String("source", ai.ID.String()),
		slog.String("destination", a.svc.ID().String()),
		slog.String("method", method),
		slog.String("decision", decision),
		slog.String("reason", d.Reason()),
		slog.String("code", status.Code(err).String()),
		slog.Duration("duration", time.Since(start)))
}
