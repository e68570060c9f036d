package storegrpc_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc/storepb"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// following is a store that counts the Follow calls running in it, to
// see that a stream its client cancelled ends on the server too.
type following struct {
	store.Store
	running atomic.Int32
}

func (f *following) Follow(ctx context.Context, pos store.Position, fn func(store.Event) error) error {
	f.running.Add(1)
	defer f.running.Add(-1)
	return f.Store.Follow(ctx, pos, fn)
}

// rawServer serves st on loopback and returns the generated client of it
// (no storegrpc.Client in between: the tests send what they like) and
// the connection.
func rawServer(t testing.TB, st store.Store) (storepb.StoreClient, *grpc.ClientConn) {
	t.Helper()
	_, cc := listen(t, st)
	return storepb.NewStoreClient(cc), cc
}

// TestHostileCalls: chat-store's gRPC surface, called with out-of-range,
// empty, huge and malformed fields, answers each with a status code of
// its kind (InvalidArgument naming the field, NotFound,
// ResourceExhausted past gRPC's 4 MB) and stores nothing; a stream
// cancelled mid-way ends on the server; and all along another client is
// served.
func TestHostileCalls(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // registered first: runs after the servers stop
	mem := &following{Store: store.NewMemory()}
	c, cc := rawServer(t, mem)
	ctx := t.Context()
	ann, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: "ann@example.com", PasswordHash: "$2a$04$hash"})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: "kept", UserId: ann.Id, CreatedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	// A follower, as chat-web is: it must get the good posts and nothing else.
	good, _ := rawServer(t, mem)
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	stream, err := good.Follow(followCtx, &storepb.FollowRequest{After: &storepb.Position{UserId: ann.Id, MessageId: kept.Id}})
	if err != nil {
		t.Fatal(err)
	}

	huge := strings.Repeat("x", 5<<20)
	big := strings.Repeat("é", 100_000)
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		says string
	}{
		{"empty user", func() error { _, err := c.CreateUser(ctx, &storepb.CreateUserRequest{}); return err }, codes.InvalidArgument, "not an email address"},
		{"NUL email", func() error {
			_, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: "eve\x00@example.com"})
			return err
		}, codes.InvalidArgument, "not an email address"},
		{"100 KB email", func() error { _, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: big + "@x"}); return err }, codes.InvalidArgument, "not an email address"},
		{"5 MB email", func() error { _, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: huge + "@x"}); return err }, codes.ResourceExhausted, "larger than max"},
		{"huge avatar", func() error {
			_, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: "big@example.com", Avatar: "https://" + big})
			return err
		}, codes.InvalidArgument, "avatar"},
		{"huge hash", func() error {
			_, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: "big@example.com", PasswordHash: big})
			return err
		}, codes.InvalidArgument, "password hash"},
		{"duplicate email", func() error {
			_, err := c.CreateUser(ctx, &storepb.CreateUserRequest{Email: "ann@example.com"})
			return err
		}, codes.AlreadyExists, "already taken"},
		{"empty credentials", func() error { _, err := c.Credentials(ctx, &storepb.CredentialsRequest{}); return err }, codes.InvalidArgument, "not an email address"},
		{"user 0", func() error { _, err := c.GetUser(ctx, &storepb.GetUserRequest{}); return err }, codes.InvalidArgument, "id 0"},
		{"user -1", func() error { _, err := c.RemoveUser(ctx, &storepb.RemoveUserRequest{Id: -1}); return err }, codes.InvalidArgument, "id -1"},
		{"no such user", func() error { _, err := c.GetUser(ctx, &storepb.GetUserRequest{Id: 1 << 62}); return err }, codes.NotFound, "not found"},
		{"patch, bad email", func() error {
			e := "no at sign"
			_, err := c.PatchUser(ctx, &storepb.PatchUserRequest{Id: ann.Id, Email: &e})
			return err
		}, codes.InvalidArgument, "not an email address"},
		{"empty message", func() error { _, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{}); return err }, codes.InvalidArgument, "user_id 0"},
		{"blank text", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: " \n", UserId: ann.Id})
			return err
		}, codes.InvalidArgument, "must have a text"},
		{"401 characters", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: strings.Repeat("é", 401), UserId: ann.Id})
			return err
		}, codes.InvalidArgument, "longer than 400"},
		{"1 MB text", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: huge[:1<<20], UserId: ann.Id})
			return err
		}, codes.InvalidArgument, "longer than 400"},
		{"NUL text", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: "a\x00b", UserId: ann.Id})
			return err
		}, codes.InvalidArgument, "NUL"},
		{"negative time", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: "x", UserId: ann.Id, CreatedAt: -1})
			return err
		}, codes.InvalidArgument, "created_at"},
		{"huge trace parent", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: "x", UserId: ann.Id, TraceParent: big})
			return err
		}, codes.InvalidArgument, "trace_parent"},
		{"no such author", func() error {
			_, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: "x", UserId: 1 << 62})
			return err
		}, codes.NotFound, "not found"},
		{"patch message 0", func() error { _, err := c.PatchMessage(ctx, &storepb.PatchMessageRequest{Text: "x"}); return err }, codes.InvalidArgument, "id 0"},
		{"patch to blank", func() error {
			_, err := c.PatchMessage(ctx, &storepb.PatchMessageRequest{Id: kept.Id})
			return err
		}, codes.InvalidArgument, "must have a text"},
		{"get message -5", func() error { _, err := c.GetMessage(ctx, &storepb.GetMessageRequest{Id: -5}); return err }, codes.InvalidArgument, "id -5"},
		{"negative limit", func() error { _, err := c.FindMessages(ctx, &storepb.Query{Limit: -1}); return err }, codes.InvalidArgument, "out of range"},
		{"negative skip", func() error { _, err := c.FindUsers(ctx, &storepb.Query{Skip: -1 << 31}); return err }, codes.InvalidArgument, "out of range"},
		{"negative user_id", func() error { _, err := c.FindMessages(ctx, &storepb.Query{UserId: -1}); return err }, codes.InvalidArgument, "user_id -1"},
		{"sort on hash", func() error {
			_, err := c.FindUsers(ctx, &storepb.Query{Sort: []*storepb.SortField{{Field: "password_hash"}}})
			return err
		}, codes.InvalidArgument, "cannot sort by"},
		{"SQL sort", func() error {
			_, err := c.FindMessages(ctx, &storepb.Query{Sort: []*storepb.SortField{{Field: "id; DROP TABLE messages"}}})
			return err
		}, codes.InvalidArgument, "cannot sort by"},
		{"empty sort field", func() error {
			_, err := c.FindMessages(ctx, &storepb.Query{Sort: []*storepb.SortField{{}}})
			return err
		}, codes.InvalidArgument, "cannot sort by"},
		{"5 sort fields", func() error {
			_, err := c.FindMessages(ctx, &storepb.Query{Sort: make([]*storepb.SortField, 5)})
			return err
		}, codes.InvalidArgument, "sort fields"},
		{"negative position", func() error {
			s, err := c.Follow(ctx, &storepb.FollowRequest{After: &storepb.Position{MessageId: -1}})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}, codes.InvalidArgument, "positions"},
		{"invalid UTF-8 on the wire", func() error { return sendRaw(ctx, cc, "CreateMessage", invalidUTF8Message(ann.Id)) }, codes.Internal, "invalid UTF-8"},
		{"garbage on the wire", func() error { return sendRaw(ctx, cc, "CreateUser", []byte{0xff, 0xff, 0xff}) }, codes.Internal, "unmarshal"},
	} {
		err := tc.call()
		if st, _ := status.FromError(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.says) {
			t.Errorf("%s: %v; want %s saying %q", tc.name, shorten(err), tc.code, tc.says)
		}
		// Another caller is served all along.
		if _, err := good.GetPosition(ctx, &storepb.GetPositionRequest{}); err != nil {
			t.Fatalf("after %s, another client: %v", tc.name, err)
		}
	}

	// The largest limit is served as a page of at most 1000; nothing
	// refused was stored.
	if p, err := c.FindMessages(ctx, &storepb.Query{Limit: 1<<31 - 1}); err != nil || p.Limit != 1000 || p.Total != 1 || p.Data[0].Text != "kept" {
		t.Fatalf("after the hostile calls: %v, %v", p, err)
	}
	if p, err := c.FindUsers(ctx, &storepb.Query{Limit: 10}); err != nil || p.Total != 1 {
		t.Fatalf("users after the hostile calls: %v, %v", p, err)
	}
	// The follower got nothing from them, and gets the next good post.
	if _, err := c.CreateMessage(ctx, &storepb.CreateMessageRequest{Text: "after", UserId: ann.Id, CreatedAt: 2}); err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetMessage().GetText() != "after" {
		t.Fatalf("the follower got %v, %v; want the message after", ev, err)
	}

	// A stream cancelled mid-way ends on the server too.
	poll.WaitFor(t, 5*time.Second, func() bool { return mem.running.Load() == 1 })
	stopFollow()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel: %v, want Canceled", err)
	}
	poll.WaitFor(t, 5*time.Second, func() bool { return mem.running.Load() == 0 })
}

// sendRaw calls a Store method with body as the request's bytes, as a
// client that does not follow the schema would.
func sendRaw(ctx context.Context, cc *grpc.ClientConn, method string, body []byte) error {
	var out []byte
	return cc.Invoke(ctx, "/chat.store.v1.Store/"+method, body, &out, grpc.ForceCodec(rawCodec{}))
}

// invalidUTF8Message is a CreateMessageRequest whose text is not UTF-8,
// which no protobuf library would encode.
func invalidUTF8Message(userID int64) []byte {
	b, _ := proto.Marshal(&storepb.CreateMessageRequest{Text: "AAAA", UserId: userID, CreatedAt: 1})
	i := strings.Index(string(b), "AAAA")
	b[i], b[i+1] = 0xff, 0xfe
	return b
}

func shorten(err error) string {
	s := ""
	if err != nil {
		s = err.Error()
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// rawCodec sends and receives bytes as they are, under proto's name.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, errors.New("rawCodec: not bytes")
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
