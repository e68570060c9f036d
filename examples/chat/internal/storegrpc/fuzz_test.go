package storegrpc_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc/storepb"
)

// FuzzCreateMessage: whatever a caller puts in a CreateMessageRequest,
// chat-store answers OK with a text store.CheckText accepts, stored as
// sent, or InvalidArgument / NotFound; never another code, and it keeps
// serving.
func FuzzCreateMessage(f *testing.F) {
	f.Add("hello", int64(1), int64(1), "")
	f.Add("", int64(0), int64(0), "")
	f.Add(" \n", int64(1), int64(-1), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add("a\x00b", int64(1<<62), int64(1<<62), strings.Repeat("x", 56))
	f.Add(strings.Repeat("é", 401), int64(-1), int64(1), "\n")
	f.Add("'); DROP TABLE messages; --", int64(1), int64(1), "")
	c, _ := rawServer(f, store.NewMemory())
	ann, err := c.CreateUser(f.Context(), &storepb.CreateUserRequest{Email: "ann@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string, userID, createdAt int64, traceParent string) {
		if !utf8Valid(text, traceParent) {
			t.Skip("protobuf does not encode strings that are not UTF-8 (TestHostileCalls sends one raw)")
		}
		m, err := c.CreateMessage(t.Context(), &storepb.CreateMessageRequest{Text: text, UserId: userID, CreatedAt: createdAt, TraceParent: traceParent})
		switch code := status.Code(err); {
		case code == codes.OK:
			if store.CheckText(m.GetText()) != nil || m.GetText() != text || m.GetUserId() != ann.Id {
				t.Fatalf("stored %q by %d", m.GetText(), m.GetUserId())
			}
		case code == codes.InvalidArgument, code == codes.NotFound && userID != ann.Id:
		default:
			t.Fatalf("CreateMessage(%q, %d, %d, %q): %v", text, userID, createdAt, traceParent, err)
		}
		if _, err := c.GetPosition(t.Context(), &storepb.GetPositionRequest{}); err != nil {
			t.Fatalf("the store stopped serving: %v", err)
		}
	})
}

// FuzzFindMessages: any query is a page within its limit (at most 1000)
// or InvalidArgument.
func FuzzFindMessages(f *testing.F) {
	f.Add(int32(10), int32(0), int64(0), "createdAt", true)
	f.Add(int32(-1), int32(-1), int64(-1), "", false)
	f.Add(int32(1<<31-1), int32(1<<31-1), int64(1<<62), "password_hash", false)
	f.Add(int32(50), int32(1), int64(1), "id; DROP TABLE messages", true)
	c, _ := rawServer(f, store.NewMemory())
	ann, err := c.CreateUser(f.Context(), &storepb.CreateUserRequest{Email: "ann@example.com"})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.CreateMessage(f.Context(), &storepb.CreateMessageRequest{Text: "m" + string(rune('0'+i)), UserId: ann.Id}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, limit, skip int32, userID int64, field string, desc bool) {
		if !utf8Valid(field) {
			t.Skip("protobuf does not encode strings that are not UTF-8")
		}
		p, err := c.FindMessages(t.Context(), &storepb.Query{Limit: limit, Skip: skip, UserId: userID,
			Sort: []*storepb.SortField{{Field: field, Desc: desc}}})
		switch status.Code(err) {
		case codes.OK:
			if p.GetLimit() > 1000 || int32(len(p.GetData())) > p.GetLimit() || p.GetTotal() > 3 {
				t.Fatalf("page %v", p)
			}
		case codes.InvalidArgument:
		default:
			t.Fatalf("FindMessages(%d, %d, %d, %q): %v", limit, skip, userID, field, err)
		}
	})
}

func utf8Valid(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
