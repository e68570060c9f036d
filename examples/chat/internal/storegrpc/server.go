// Package storegrpc puts a [store.Store] behind gRPC: [Register] serves
// one on a gRPC server, [Client] is a [store.Store] that calls it. The
// API is storepb's chat.store.v1.Store, one RPC per method of the
// interface, so an L7 intention can allow each caller just the methods it
// needs; Follow is a server stream.
//
// The server checks every request's fields itself (check.go): a bad one
// is InvalidArgument naming the field, whoever the caller.
//
// Errors keep their kind across the wire: [store.ErrNotFound] travels as
// NotFound, [store.ErrConflict] as AlreadyExists, [store.ErrInvalid] as
// InvalidArgument; a call the network or the mesh refuses (Unavailable,
// PermissionDenied, Unauthenticated) comes back as [store.ErrUnavailable]
// with the reason, which the web front end answers with a 503 that says
// what failed.
//
//	// chat-store:
//	s := grpc.NewServer(opts...)
//	storegrpc.Register(s, pg)
//	// chat-web and chat-bot:
//	st := storegrpc.NewClient(conn)
package storegrpc

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc/storepb"
)

// Register serves st on s as chat.store.v1.Store.
func Register(s grpc.ServiceRegistrar, st store.Store) {
	storepb.RegisterStoreServer(s, &server{st: st})
}

type server struct {
	storepb.UnimplementedStoreServer
	st store.Store
}

// toStatus turns a store error into a status of the same kind; an error
// that already is a status (a refusal by a wrapper of the store, say)
// keeps its own.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, store.ErrConflict):
		code = codes.AlreadyExists
	case errors.Is(err, store.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, store.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}

func (s *server) CreateUser(ctx context.Context, r *storepb.CreateUserRequest) (*storepb.User, error) {
	if err := checkUserFields(&r.Email, &r.PasswordHash, &r.Avatar); err != nil {
		return nil, err
	}
	u, err := s.st.CreateUser(ctx, store.NewUser{Email: r.GetEmail(), PasswordHash: r.GetPasswordHash(), Avatar: r.GetAvatar()})
	if err != nil {
		return nil, toStatus(err)
	}
	return userToPB(u), nil
}

func (s *server) GetUser(ctx context.Context, r *storepb.GetUserRequest) (*storepb.User, error) {
	if err := checkID("id", r.GetId()); err != nil {
		return nil, err
	}
	u, err := s.st.User(ctx, r.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return userToPB(u), nil
}

func (s *server) Credentials(ctx context.Context, r *storepb.CredentialsRequest) (*storepb.CredentialsResponse, error) {
	if err := checkStatus(store.CheckEmail(r.GetEmail())); err != nil {
		return nil, err
	}
	u, hash, err := s.st.Credentials(ctx, r.GetEmail())
	if err != nil {
		return nil, toStatus(err)
	}
	return &storepb.CredentialsResponse{User: userToPB(u), PasswordHash: hash}, nil
}

func (s *server) FindUsers(ctx context.Context, pq *storepb.Query) (*storepb.UserPage, error) {
	q, err := pageQuery(pq)
	if err != nil {
		return nil, err
	}
	p, err := s.st.FindUsers(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &storepb.UserPage{Total: int32(p.Total), Limit: int32(p.Limit), Skip: int32(p.Skip)}
	for _, u := range p.Data {
		out.Data = append(out.Data, userToPB(u))
	}
	return out, nil
}

func (s *server) PatchUser(ctx context.Context, r *storepb.PatchUserRequest) (*storepb.User, error) {
	if err := checkID("id", r.GetId()); err != nil {
		return nil, err
	}
	if err := checkUserFields(r.Email, r.PasswordHash, r.Avatar); err != nil {
		return nil, err
	}
	u, err := s.st.PatchUser(ctx, r.GetId(), store.UserPatch{Email: r.Email, PasswordHash: r.PasswordHash, Avatar: r.Avatar})
	if err != nil {
		return nil, toStatus(err)
	}
	return userToPB(u), nil
}

func (s *server) RemoveUser(ctx context.Context, r *storepb.RemoveUserRequest) (*storepb.User, error) {
	if err := checkID("id", r.GetId()); err != nil {
		return nil, err
	}
	u, err := s.st.RemoveUser(ctx, r.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return userToPB(u), nil
}

func (s *server) CreateMessage(ctx context.Context, r *storepb.CreateMessageRequest) (*storepb.Message, error) {
	if err := checkCreateMessage(r); err != nil {
		return nil, err
	}
	// The message keeps the trace of this RPC (its caller's, through
	// otelgrpc), for whoever follows it; or the one the request names.
	tp := traceParent(ctx)
	if tp == "" {
		tp = r.GetTraceParent()
	}
	m, err := s.st.CreateMessage(ctx, store.NewMessage{Text: r.GetText(), UserID: r.GetUserId(), CreatedAt: r.GetCreatedAt(),
		TraceParent: tp})
	if err != nil {
		return nil, toStatus(err)
	}
	return messageToPB(m), nil
}

func (s *server) GetMessage(ctx context.Context, r *storepb.GetMessageRequest) (*storepb.Message, error) {
	if err := checkID("id", r.GetId()); err != nil {
		return nil, err
	}
	m, err := s.st.Message(ctx, r.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return messageToPB(m), nil
}

func (s *server) FindMessages(ctx context.Context, pq *storepb.Query) (*storepb.MessagePage, error) {
	q, err := pageQuery(pq)
	if err != nil {
		return nil, err
	}
	p, err := s.st.FindMessages(ctx, q)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &storepb.MessagePage{Total: int32(p.Total), Limit: int32(p.Limit), Skip: int32(p.Skip)}
	for _, m := range p.Data {
		out.Data = append(out.Data, messageToPB(m))
	}
	return out, nil
}

func (s *server) CountMessages(ctx context.Context, _ *storepb.CountMessagesRequest) (*storepb.CountMessagesResponse, error) {
	n, err := s.st.CountMessages(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &storepb.CountMessagesResponse{Count: int64(n)}, nil
}

func (s *server) PatchMessage(ctx context.Context, r *storepb.PatchMessageRequest) (*storepb.Message, error) {
	if err := checkID("id", r.GetId()); err != nil {
		return nil, err
	}
	if err := checkStatus(store.CheckText(r.GetText())); err != nil {
		return nil, err
	}
	m, err := s.st.PatchMessage(ctx, r.GetId(), r.GetText())
	if err != nil {
		return nil, toStatus(err)
	}
	return messageToPB(m), nil
}

func (s *server) RemoveMessage(ctx context.Context, r *storepb.RemoveMessageRequest) (*storepb.Message, error) {
	if err := checkID("id", r.GetId()); err != nil {
		return nil, err
	}
	m, err := s.st.RemoveMessage(ctx, r.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return messageToPB(m), nil
}

func (s *server) GetPosition(ctx context.Context, _ *storepb.GetPositionRequest) (*storepb.Position, error) {
	p, err := s.st.Position(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &storepb.Position{UserId: p.UserID, MessageId: p.MessageID}, nil
}

func (s *server) Follow(r *storepb.FollowRequest, stream grpc.ServerStreamingServer[storepb.Event]) error {
	pos := store.Position{UserID: r.GetAfter().GetUserId(), MessageID: r.GetAfter().GetMessageId()}
	if pos.UserID < 0 || pos.MessageID < 0 {
		return invalid("after %d/%d: positions are IDs, not negative", pos.UserID, pos.MessageID)
	}
	err := s.st.Follow(stream.Context(), pos, func(ev store.Event) error {
		switch {
		case ev.User != nil:
			return stream.Send(&storepb.Event{Record: &storepb.Event_User{User: userToPB(*ev.User)}})
		case ev.Message != nil:
			return stream.Send(&storepb.Event{Record: &storepb.Event_Message{Message: messageToPB(*ev.Message)}})
		}
		return nil
	})
	if _, ok := status.FromError(err); ok {
		return err // a Send error already is a status
	}
	return toStatus(err)
}
