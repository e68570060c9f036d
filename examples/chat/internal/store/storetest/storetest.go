// Package storetest is the behaviour every [store.Store] implementation
// must show; an implementation's tests call [Run] with a constructor.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// Run runs the suite; newStore must return an empty store, closed by the
// test's cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"Users", testUsers},
		{"FindUsers", testFindUsers},
		{"PatchRemoveUser", testPatchRemoveUser},
		{"Messages", testMessages},
		{"FindMessages", testFindMessages},
		{"PatchRemoveMessage", testPatchRemoveMessage},
		{"Follow", testFollow},
		{"FollowConcurrent", testFollowConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustUser(t *testing.T, st store.Store, email string) store.User {
	t.Helper()
	u, err := st.CreateUser(ctxT(t), store.NewUser{Email: email, PasswordHash: "hash-" + email, Avatar: "a-" + email})
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func mustMessage(t *testing.T, st store.Store, u store.User, text string, at int64) store.Message {
	t.Helper()
	m, err := st.CreateMessage(ctxT(t), store.NewMessage{Text: text, UserID: u.ID, CreatedAt: at})
	if err != nil {
		t.Fatalf("CreateMessage(%q): %v", text, err)
	}
	return m
}

func testUsers(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	a := mustUser(t, st, "a@example.com")
	if a.ID == 0 || a.Email != "a@example.com" || a.Avatar != "a-a@example.com" {
		t.Fatalf("created %+v", a)
	}
	if _, err := st.CreateUser(ctx, store.NewUser{Email: "a@example.com", PasswordHash: "x"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: err = %v, want ErrConflict", err)
	}
	b := mustUser(t, st, "b@example.com")
	if b.ID <= a.ID {
		t.Fatalf("IDs do not grow: %d then %d", a.ID, b.ID)
	}
	got, err := st.User(ctx, a.ID)
	if err != nil || got != a {
		t.Fatalf("User(%d) = %+v, %v; want %+v", a.ID, got, err, a)
	}
	if _, err := st.User(ctx, b.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("User(unknown): err = %v, want ErrNotFound", err)
	}
	u, hash, err := st.Credentials(ctx, "b@example.com")
	if err != nil || u != b || hash != "hash-b@example.com" {
		t.Fatalf("Credentials = %+v, %q, %v", u, hash, err)
	}
	if _, _, err := st.Credentials(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Credentials(unknown): err = %v, want ErrNotFound", err)
	}
}

func testFindUsers(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	c := mustUser(t, st, "c@example.com")
	a := mustUser(t, st, "a@example.com")
	b := mustUser(t, st, "b@example.com")
	p, err := st.FindUsers(ctx, store.Query{Sort: []store.SortField{{Field: "email"}}, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 3 || p.Limit != 2 || p.Skip != 0 || len(p.Data) != 2 || p.Data[0] != a || p.Data[1] != b {
		t.Fatalf("page = %+v", p)
	}
	p, err = st.FindUsers(ctx, store.Query{Sort: []store.SortField{{Field: "email"}}, Limit: 2, Skip: 2})
	if err != nil || p.Total != 3 || len(p.Data) != 1 || p.Data[0] != c {
		t.Fatalf("second page = %+v, %v", p, err)
	}
	p, err = st.FindUsers(ctx, store.Query{Limit: 10, UserID: b.ID})
	if err != nil || p.Total != 1 || len(p.Data) != 1 || p.Data[0] != b {
		t.Fatalf("by id = %+v, %v", p, err)
	}
	p, err = st.FindUsers(ctx, store.Query{Limit: 0})
	if err != nil || p.Total != 3 || p.Data == nil || len(p.Data) != 0 {
		t.Fatalf("limit 0 = %+v, %v", p, err)
	}
	if _, err := st.FindUsers(ctx, store.Query{Sort: []store.SortField{{Field: "password"}}, Limit: 1}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("sort by password: err = %v, want ErrInvalid", err)
	}
}

func testPatchRemoveUser(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	a := mustUser(t, st, "a@example.com")
	b := mustUser(t, st, "b@example.com")
	mustMessage(t, st, a, "from a", 1)
	kept := mustMessage(t, st, b, "from b", 2)
	avatar, hash := "new-avatar", "new-hash"
	u, err := st.PatchUser(ctx, a.ID, store.UserPatch{Avatar: &avatar, PasswordHash: &hash})
	if err != nil || u.Avatar != avatar || u.Email != a.Email {
		t.Fatalf("PatchUser = %+v, %v", u, err)
	}
	if _, h, _ := st.Credentials(ctx, a.Email); h != hash {
		t.Fatalf("hash after patch = %q", h)
	}
	taken := b.Email
	if _, err := st.PatchUser(ctx, a.ID, store.UserPatch{Email: &taken}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("patch to a taken email: err = %v, want ErrConflict", err)
	}
	if _, err := st.PatchUser(ctx, b.ID+100, store.UserPatch{Avatar: &avatar}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("patch unknown: err = %v", err)
	}
	if u, err := st.RemoveUser(ctx, a.ID); err != nil || u.ID != a.ID {
		t.Fatalf("RemoveUser = %+v, %v", u, err)
	}
	if _, err := st.User(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed user still there: %v", err)
	}
	p, err := st.FindMessages(ctx, store.Query{Limit: 10})
	if err != nil || p.Total != 1 || p.Data[0].ID != kept.ID {
		t.Fatalf("messages after removing a = %+v, %v", p, err)
	}
	if _, err := st.RemoveUser(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second remove: err = %v", err)
	}
}

func testMessages(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	a := mustUser(t, st, "a@example.com")
	m := mustMessage(t, st, a, "hello ✓", 1700000000123)
	want := store.Message{ID: m.ID, Text: "hello ✓", UserID: a.ID, CreatedAt: 1700000000123, User: a}
	if m.ID == 0 || m != want {
		t.Fatalf("created %+v, want %+v", m, want)
	}
	got, err := st.Message(ctx, m.ID)
	if err != nil || got != want {
		t.Fatalf("Message = %+v, %v", got, err)
	}
	if _, err := st.Message(ctx, m.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Message(unknown): err = %v", err)
	}
	if _, err := st.CreateMessage(ctx, store.NewMessage{Text: "x", UserID: a.ID + 100, CreatedAt: 1}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("message by unknown user: err = %v, want ErrNotFound", err)
	}
	if n, err := st.CountMessages(ctx); err != nil || n != 1 {
		t.Fatalf("CountMessages = %d, %v", n, err)
	}

	// A message keeps the trace it was posted in, for its followers.
	pos, err := st.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	traced, err := st.CreateMessage(ctx, store.NewMessage{Text: "traced", UserID: a.ID, CreatedAt: 2, TraceParent: tp})
	if err != nil || traced.TraceParent != tp {
		t.Fatalf("CreateMessage with a trace parent = %+v, %v", traced, err)
	}
	if got, err := st.Message(ctx, traced.ID); err != nil || got.TraceParent != tp {
		t.Fatalf("Message keeps trace parent %q, %v; want %q", got.TraceParent, err, tp)
	}
	page, err := st.FindMessages(ctx, store.Query{Limit: 10})
	if err != nil || len(page.Data) != 2 || page.Data[1].TraceParent != tp || page.Data[0].TraceParent != "" {
		t.Fatalf("FindMessages = %+v, %v", page, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var followed store.Message
	err = st.Follow(fctx, pos, func(ev store.Event) error {
		if ev.Message != nil {
			followed = *ev.Message
			cancel()
		}
		return nil
	})
	if followed.TraceParent != tp {
		t.Fatalf("Follow gave %+v (%v), want trace parent %q", followed, err, tp)
	}
}

func testFindMessages(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	a := mustUser(t, st, "a@example.com")
	b := mustUser(t, st, "b@example.com")
	var all []store.Message
	for i := range 30 {
		u := a
		if i%3 == 0 {
			u = b
		}
		all = append(all, mustMessage(t, st, u, fmt.Sprintf("m%02d", i), int64(1000+i)))
	}
	p, err := st.FindMessages(ctx, store.Query{Sort: []store.SortField{{Field: "createdAt", Desc: true}}, Limit: 25})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 30 || p.Limit != 25 || len(p.Data) != 25 || p.Data[0] != all[29] || p.Data[24] != all[5] {
		t.Fatalf("newest 25: total %d limit %d len %d first %+v", p.Total, p.Limit, len(p.Data), p.Data[0])
	}
	p, err = st.FindMessages(ctx, store.Query{Sort: []store.SortField{{Field: "createdAt", Desc: true}}, Limit: 25, Skip: 25})
	if err != nil || len(p.Data) != 5 || p.Skip != 25 || p.Data[4] != all[0] {
		t.Fatalf("second page: %+v, %v", p, err)
	}
	p, err = st.FindMessages(ctx, store.Query{Sort: []store.SortField{{Field: "userId", Desc: true}, {Field: "id"}}, Limit: 3})
	if err != nil || p.Data[0] != all[0] || p.Data[1] != all[3] || p.Data[2] != all[6] {
		t.Fatalf("sort by userId desc, id: %+v, %v", p.Data, err)
	}
	// Ties in the first sort field go by id in its direction.
	same := []store.Message{mustMessage(t, st, b, "same1", 5000), mustMessage(t, st, b, "same2", 5000), mustMessage(t, st, b, "same3", 5000)}
	p, err = st.FindMessages(ctx, store.Query{Sort: []store.SortField{{Field: "createdAt", Desc: true}}, Limit: 3})
	if err != nil || p.Data[0] != same[2] || p.Data[1] != same[1] || p.Data[2] != same[0] {
		t.Fatalf("newest first within one millisecond: %+v, %v", p.Data, err)
	}
	p, err = st.FindMessages(ctx, store.Query{Sort: []store.SortField{{Field: "createdAt"}}, Skip: 30, Limit: 3})
	if err != nil || p.Data[0] != same[0] || p.Data[2] != same[2] {
		t.Fatalf("oldest first within one millisecond: %+v, %v", p.Data, err)
	}
	for _, m := range same {
		if _, err := st.RemoveMessage(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	p, err = st.FindMessages(ctx, store.Query{Limit: 50, UserID: b.ID})
	if err != nil || p.Total != 10 || len(p.Data) != 10 {
		t.Fatalf("b's messages: total %d, %v", p.Total, err)
	}
	p, err = st.FindMessages(ctx, store.Query{Skip: 100, Limit: 10})
	if err != nil || p.Total != 30 || p.Data == nil || len(p.Data) != 0 {
		t.Fatalf("past the end: %+v, %v", p, err)
	}
	if _, err := st.FindMessages(ctx, store.Query{Limit: -1}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("negative limit: err = %v", err)
	}
	if _, err := st.FindMessages(ctx, store.Query{Limit: 1, Sort: []store.SortField{{Field: "createdAt; DROP TABLE messages"}}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad sort field: err = %v", err)
	}
}

func testPatchRemoveMessage(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	a := mustUser(t, st, "a@example.com")
	m := mustMessage(t, st, a, "before", 5)
	got, err := st.PatchMessage(ctx, m.ID, "after")
	if err != nil || got.Text != "after" || got.CreatedAt != 5 || got.User != a {
		t.Fatalf("PatchMessage = %+v, %v", got, err)
	}
	got, err = st.RemoveMessage(ctx, m.ID)
	if err != nil || got.ID != m.ID || got.Text != "after" {
		t.Fatalf("RemoveMessage = %+v, %v", got, err)
	}
	if _, err := st.Message(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed message: err = %v", err)
	}
	if _, err := st.PatchMessage(ctx, m.ID, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("patch removed: err = %v", err)
	}
	if _, err := st.RemoveMessage(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("remove removed: err = %v", err)
	}
}

func testFollow(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	a := mustUser(t, st, "old@example.com")
	mustMessage(t, st, a, "old", 1)
	pos, err := st.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan store.Event, 16)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- st.Follow(fctx, pos, func(ev store.Event) error { events <- ev; return nil })
	}()
	b := mustUser(t, st, "new@example.com")
	m := mustMessage(t, st, b, "new", 2)
	next := func() store.Event {
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return store.Event{}
		}
	}
	if ev := next(); ev.User == nil || *ev.User != b {
		t.Fatalf("first event %+v, want user %+v", ev, b)
	}
	if ev := next(); ev.Message == nil || *ev.Message != m {
		t.Fatalf("second event %+v, want message %+v", ev, m)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel = %v, want context.Canceled", err)
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}

	// Resuming from the start replays everything; fn's error ends Follow.
	stop := errors.New("stop")
	var seen []store.Event
	err = st.Follow(ctx, store.Position{}, func(ev store.Event) error {
		seen = append(seen, ev)
		if len(seen) == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(seen) != 4 {
		t.Fatalf("replay: err = %v, %d events", err, len(seen))
	}
	var users, msgs int
	for _, ev := range seen {
		if ev.User != nil {
			users++
		}
		if ev.Message != nil {
			msgs++
		}
	}
	if users != 2 || msgs != 2 {
		t.Fatalf("replay: %d users, %d messages; want 2, 2", users, msgs)
	}
}

// testFollowConcurrent: messages posted concurrently by many writers
// reach a follower each exactly once, in ID order.
func testFollowConcurrent(t *testing.T, st store.Store) {
	ctx := ctxT(t)
	u := mustUser(t, st, "w@example.com")
	pos, err := st.Position(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	got := make(chan []int64, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var ids []int64
		_ = st.Follow(fctx, pos, func(ev store.Event) error {
			if ev.Message != nil {
				ids = append(ids, ev.Message.ID)
				if len(ids) == writers*each {
					got <- ids
				}
			}
			return nil
		})
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := st.CreateMessage(ctx, store.NewMessage{Text: fmt.Sprint(w, i), UserID: u.ID, CreatedAt: 1}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case ids := <-got:
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("event %d: id %d after %d", i, ids[i], ids[i-1])
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("follower did not see every message")
	}
}
