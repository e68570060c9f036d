package storegrpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc/storepb"
)

// Client is a [store.Store] served by [Register] at the other end of a
// gRPC connection.
type Client struct {
	c storepb.StoreClient
}

var _ store.Store = (*Client)(nil)

// NewClient returns a store that calls the one served on cc.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{c: storepb.NewStoreClient(cc)}
}

// fromStatus turns a call's error back into a store error of its kind,
// naming the method.
func fromStatus(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("chat store: %s: %w", method, ctx.Err())
	}
	st, _ := status.FromError(err)
	var kind error
	switch st.Code() {
	case codes.NotFound:
		kind = store.ErrNotFound
	case codes.AlreadyExists:
		kind = store.ErrConflict
	case codes.InvalidArgument:
		kind = store.ErrInvalid
	case codes.Unavailable, codes.PermissionDenied, codes.Unauthenticated, codes.DeadlineExceeded, codes.Unimplemented:
		// The store is down, or the mesh refused this caller.
		return fmt.Errorf("chat store: %s: %w: %s: %s", method, store.ErrUnavailable, st.Code(), st.Message())
	case codes.Canceled:
		kind = context.Canceled
	default:
		return fmt.Errorf("chat store: %s: %s: %s", method, st.Code(), st.Message())
	}
	return fmt.Errorf("chat store: %s: %w (%s)", method, kind, st.Message())
}

// CreateUser implements [store.Store.CreateUser].
func (c *Client) CreateUser(ctx context.Context, u store.NewUser) (store.User, error) {
	r, err := c.c.CreateUser(ctx, &storepb.CreateUserRequest{Email: u.Email, PasswordHash: u.PasswordHash, Avatar: u.Avatar})
	if err != nil {
		return store.User{}, fromStatus(ctx, "create user", err)
	}
	return userFromPB(r), nil
}

// User implements [store.Store.User].
func (c *Client) User(ctx context.Context, id int64) (store.User, error) {
	r, err := c.c.GetUser(ctx, &storepb.GetUserRequest{Id: id})
	if err != nil {
		return store.User{}, fromStatus(ctx, "user", err)
	}
	return userFromPB(r), nil
}

// Credentials implements [store.Store.Credentials].
func (c *Client) Credentials(ctx context.Context, email string) (store.User, string, error) {
	r, err := c.c.Credentials(ctx, &storepb.CredentialsRequest{Email: email})
	if err != nil {
		return store.User{}, "", fromStatus(ctx, "credentials", err)
	}
	return userFromPB(r.GetUser()), r.GetPasswordHash(), nil
}

// FindUsers implements [store.Store.FindUsers].
func (c *Client) FindUsers(ctx context.Context, q store.Query) (store.Page[store.User], error) {
	// Checked here too: the wire's limit and skip are int32.
	if err := store.CheckUserQuery(q); err != nil {
		return store.Page[store.User]{}, fmt.Errorf("chat store: find users: %w", err)
	}
	r, err := c.c.FindUsers(ctx, queryToPB(q))
	if err != nil {
		return store.Page[store.User]{}, fromStatus(ctx, "find users", err)
	}
	p := store.Page[store.User]{Total: int(r.GetTotal()), Limit: int(r.GetLimit()), Skip: int(r.GetSkip()), Data: []store.User{}}
	for _, u := range r.GetData() {
		p.Data = append(p.Data, userFromPB(u))
	}
	return p, nil
}

// PatchUser implements [store.Store.PatchUser].
func (c *Client) PatchUser(ctx context.Context, id int64, p store.UserPatch) (store.User, error) {
	r, err := c.c.PatchUser(ctx, &storepb.PatchUserRequest{Id: id, Email: p.Email, PasswordHash: p.PasswordHash, Avatar: p.Avatar})
	if err != nil {
		return store.User{}, fromStatus(ctx, "patch user", err)
	}
	return userFromPB(r), nil
}

// RemoveUser implements [store.Store.RemoveUser].
func (c *Client) RemoveUser(ctx context.Context, id int64) (store.User, error) {
	r, err := c.c.RemoveUser(ctx, &storepb.RemoveUserRequest{Id: id})
	if err != nil {
		return store.User{}, fromStatus(ctx, "remove user", err)
	}
	return userFromPB(r), nil
}

// CreateMessage implements [store.Store.CreateMessage].
func (c *Client) CreateMessage(ctx context.Context, m store.NewMessage) (store.Message, error) {
	r, err := c.c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: m.Text, UserId: m.UserID, CreatedAt: m.CreatedAt,
		TraceParent: m.TraceParent})
	if err != nil {
		return store.Message{}, fromStatus(ctx, "create message", err)
	}
	return messageFromPB(r), nil
}

// Message implements [store.Store.Message].
func (c *Client) Message(ctx context.Context, id int64) (store.Message, error) {
	r, err := c.c.GetMessage(ctx, &storepb.GetMessageRequest{Id: id})
	if err != nil {
		return store.Message{}, fromStatus(ctx, "message", err)
	}
	return messageFromPB(r), nil
}

// FindMessages implements [store.Store.FindMessages].
func (c *Client) FindMessages(ctx context.Context, q store.Query) (store.Page[store.Message], error) {
	// Checked here too: the wire's limit and skip are int32.
	if err := store.CheckMessageQuery(q); err != nil {
		return store.Page[store.Message]{}, fmt.Errorf("chat store: find messages: %w", err)
	}
	r, err := c.c.FindMessages(ctx, queryToPB(q))
	if err != nil {
		return store.Page[store.Message]{}, fromStatus(ctx, "find messages", err)
	}
	p := store.Page[store.Message]{Total: int(r.GetTotal()), Limit: int(r.GetLimit()), Skip: int(r.GetSkip()), Data: []store.Message{}}
	for _, m := range r.GetData() {
		p.Data = append(p.Data, messageFromPB(m))
	}
	return p, nil
}

// CountMessages implements [store.Store.CountMessages].
func (c *Client) CountMessages(ctx context.Context) (int, error) {
	r, err := c.c.CountMessages(ctx, &storepb.CountMessagesRequest{})
	if err != nil {
		return 0, fromStatus(ctx, "count messages", err)
	}
	return int(r.GetCount()), nil
}

// PatchMessage implements [store.Store.PatchMessage].
func (c *Client) PatchMessage(ctx context.Context, id int64, text string) (store.Message, error) {
	r, err := c.c.PatchMessage(ctx, &storepb.PatchMessageRequest{Id: id, Text: text})
	if err != nil {
		return store.Message{}, fromStatus(ctx, "patch message", err)
	}
	return messageFromPB(r), nil
}

// RemoveMessage implements [store.Store.RemoveMessage].
func (c *Client) RemoveMessage(ctx context.Context, id int64) (store.Message, error) {
	r, err := c.c.RemoveMessage(ctx, &storepb.RemoveMessageRequest{Id: id})
	if err != nil {
		return store.Message{}, fromStatus(ctx, "remove message", err)
	}
	return messageFromPB(r), nil
}

// Position implements [store.Store.Position].
func (c *Client) Position(ctx context.Context) (store.Position, error) {
	r, err := c.c.GetPosition(ctx, &storepb.GetPositionRequest{})
	if err != nil {
		return store.Position{}, fromStatus(ctx, "position", err)
	}
	return store.Position{UserID: r.GetUserId(), MessageID: r.GetMessageId()}, nil
}

// Follow implements [store.Store.Follow] over the server stream; a broken
// stream ends it with an error wrapping [store.ErrUnavailable], and the
// caller resumes from its last position.
func (c *Client) Follow(ctx context.Context, pos store.Position, fn func(store.Event) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.c.Follow(ctx, &storepb.FollowRequest{After: &storepb.Position{UserId: pos.UserID, MessageId: pos.MessageID}})
	if err != nil {
		return fromStatus(ctx, "follow", err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("chat store: follow: %w: the stream ended", store.ErrUnavailable)
			}
			return fromStatus(ctx, "follow", err)
		}
		var e store.Event
		switch r := ev.GetRecord().(type) {
		case *storepb.Event_User:
			u := userFromPB(r.User)
			e.User = &u
		case *storepb.Event_Message:
			m := messageFromPB(r.Message)
			e.Message = &m
		default:
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
