package grpcztn

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/ztnet"
)

// statusError is an RPC error with its status and the Go error that caused
// it, for errors.As and errors.Is. status.FromError and status.Code read
// its status.
type statusError struct {
	st    *status.Status
	cause error
}

func (e *statusError) Error() string              { return e.st.Err().Error() }
func (e *statusError) GRPCStatus() *status.Status { return e.st }
func (e *statusError) Unwrap() error              { return e.cause }

// clientError gives an RPC's error the Go error behind it: a connection the
// server denied becomes codes.PermissionDenied with the server's reason
// (grpc-go reports every failed dial as codes.Unavailable, which retry
// logic takes for a passing fault) wrapping the *ztnet.DeniedError; a
// server this client rejected stays codes.Unavailable (another instance may
// do) wrapping the *ztnet.RejectedError; an RPC whose context ended wraps
// the context's error.
func (d *dialer) clientError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		cause := d.refusal(st.Message())
		if cause == nil {
			return err
		}
		var denied *ztnet.DeniedError
		if errors.As(cause, &denied) {
			st = status.New(codes.PermissionDenied, "grpcztn: "+cause.Error())
		}
		return &statusError{st: st, cause: cause}
	case codes.Canceled, codes.DeadlineExceeded:
		if cerr := ctx.Err(); cerr != nil {
			return &statusError{st: st, cause: cerr}
		}
		// grpc-go reports DeadlineExceeded as soon as the deadline has
		// passed, which can be before the context's timer has fired.
		if dl, ok := ctx.Deadline(); ok && st.Code() == codes.DeadlineExceeded && !time.Now().Before(dl) {
			return &statusError{st: st, cause: context.DeadlineExceeded}
		}
	}
	return err
}

// unary is the client's innermost unary interceptor: see clientError.
func (d *dialer) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return d.clientError(ctx, invoker(ctx, method, req, reply, cc, opts...))
}

// stream is the client's innermost stream interceptor: see clientError.
func (d *dialer) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, d.clientError(ctx, err)
	}
	return &clientStream{ClientStream: s, d: d, ctx: ctx}, nil
}

// clientStream gives the errors of a stream's RecvMsg and Header their
// cause, as clientError does.
type clientStream struct {
	grpc.ClientStream
	d   *dialer
	ctx context.Context
}

func (s *clientStream) RecvMsg(m any) error {
	return s.d.clientError(s.ctx, s.ClientStream.RecvMsg(m))
}

func (s *clientStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	return md, s.d.clientError(s.ctx, err)
}
