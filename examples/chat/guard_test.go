package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztnlabs/ztn/examples/chat/internal/bot"
	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/ztnet/ztntest"
)

// TestBotPostsAsBotOnly: chat-store, on the dev mesh under config/'s intentions,
// lets chat-bot post as the bot user only and read or create only that
// user, and lets nobody else post as the bot; each refusal says why.
func TestBotPostsAsBotOnly(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the mesh closes
	m, mem := ztntest.NewMesh(t), store.NewMemory()
	ann, err := mem.CreateUser(t.Context(), store.NewUser{Email: "ann@example.com", PasswordHash: "$2a$hash"})
	if err != nil {
		t.Fatal(err)
	}
	startStore(t, m, mem)

	client := func(name string) *storegrpc.Client {
		cc, err := grpcztn.NewClient(m.Service(name), svcStore)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return storegrpc.NewClient(cc)
	}
	asBot, asWeb := client(svcBot), client(svcWeb)

	me, err := bot.EnsureUser(t.Context(), asBot, bot.DefaultEmail)
	if err != nil {
		t.Fatalf("the bot makes its user: %v", err)
	}
	if _, err := asBot.CreateMessage(t.Context(), store.NewMessage{Text: "hi", UserID: me.ID, CreatedAt: 1}); err != nil {
		t.Fatalf("the bot posts as itself: %v", err)
	}
	refused := []struct {
		name string
		call func() error
		want string
	}{
		{"bot posts as ann", func() error {
			_, err := asBot.CreateMessage(t.Context(), store.NewMessage{Text: "I am ann", UserID: ann.ID, CreatedAt: 1})
			return err
		}, "chat-bot posts only as the bot user"},
		{"bot reads ann's password hash", func() error {
			_, _, err := asBot.Credentials(t.Context(), "ann@example.com")
			return err
		}, "chat-bot reads only the bot user"},
		{"bot creates a user", func() error {
			_, err := asBot.CreateUser(t.Context(), store.NewUser{Email: "evil@example.com", PasswordHash: "x"})
			return err
		}, "creates only the bot user"},
		{"bot finds users (no intention)", func() error {
			_, err := asBot.FindUsers(t.Context(), store.Query{Limit: 10})
			return err
		}, "denied"},
		{"web posts as the bot", func() error {
			_, err := asWeb.CreateMessage(t.Context(), store.NewMessage{Text: "I am the bot", UserID: me.ID, CreatedAt: 1})
			return err
		}, "only chat-bot posts as the bot user"},
		{"web counts messages (not in its intention)", func() error {
			_, err := asWeb.CountMessages(t.Context())
			return err
		}, "denied"},
	}
	for _, tc := range refused {
		err := tc.call()
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := asWeb.CreateMessage(t.Context(), store.NewMessage{Text: "ann here", UserID: ann.ID, CreatedAt: 1}); err != nil {
		t.Errorf("web posts as ann: %v", err)
	}
	if n, _ := mem.CountMessages(t.Context()); n != 2 {
		t.Errorf("%d messages stored, want the bot's and ann's", n)
	}
}

// startStore serves st as chat-store (serveStore: the bot guard, gRPC over
// ztn) on the dev mesh m, under config/'s intentions, until the test
// ends, and returns its address.
func startStore(t *testing.T, m *ztntest.Mesh, st store.Store) string {
	t.Helper()
	entries, err := intentions()
	if err != nil {
		t.Fatal(err)
	}
	m.SetIntentions(entries...)
	rc := roleConfig{out: io.Discard, logger: slog.New(slog.DiscardHandler), addr: "127.0.0.1:0"}
	storeSvc := m.Service(svcStore)
	addr := make(chan net.Addr, 1)
	rc.listening = func(_ string, a net.Addr) { addr <- a }
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := serveStore(ctx, storeSvc, st, rc); err != nil {
			t.Errorf("serveStore: %v", err)
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	return (<-addr).String()
}
