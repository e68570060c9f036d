package storegrpc

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc/storepb"
)

func userToPB(u store.User) *storepb.User {
	return &storepb.User{Id: u.ID, Email: u.Email, Avatar: u.Avatar}
}

func userFromPB(u *storepb.User) store.User {
	return store.User{ID: u.GetId(), Email: u.GetEmail(), Avatar: u.GetAvatar()}
}

func messageToPB(m store.Message) *storepb.Message {
	return &storepb.Message{Id: m.ID, Text: m.Text, UserId: m.UserID, CreatedAt: m.CreatedAt, User: userToPB(m.User),
		TraceParent: m.TraceParent}
}

func messageFromPB(m *storepb.Message) store.Message {
	return store.Message{ID: m.GetId(), Text: m.GetText(), UserID: m.GetUserId(), CreatedAt: m.GetCreatedAt(), User: userFromPB(m.GetUser()),
		TraceParent: m.GetTraceParent()}
}

func queryToPB(q store.Query) *storepb.Query {
	pq := &storepb.Query{Limit: int32(q.Limit), Skip: int32(q.Skip), UserId: q.UserID}
	for _, s := range q.Sort {
		pq.Sort = append(pq.Sort, &storepb.SortField{Field: s.Field, Desc: s.Desc})
	}
	return pq
}

func queryFromPB(pq *storepb.Query) store.Query {
	q := store.Query{Limit: int(pq.GetLimit()), Skip: int(pq.GetSkip()), UserID: pq.GetUserId()}
	for _, s := range pq.GetSort() {
		q.Sort = append(q.Sort, store.SortField{Field: s.GetField(), Desc: s.GetDesc()})
	}
	return q
}

// traceParent is the W3C traceparent of ctx's span, or "" when ctx is not
// traced.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent")
}
