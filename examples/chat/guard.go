package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/examples/chat/internal/bot"
	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/grpcztn"
)

// botGuard is chat-store's store as its gRPC callers see it. The intentions
// decide which RPCs each caller may make (chat-bot: follow, read its own
// user, post); botGuard decides, per call, on whose behalf: chat-bot may
// post only as the bot user and look up or create only that user, and
// nobody else may post as the bot. A refusal is PermissionDenied with the
// reason, and a Warn record.
type botGuard struct {
	store.Store
	botService string // the bot's service name, "chat-bot"
	logger     *slog.Logger

	mu    sync.Mutex
	botID int64 // 0 until known
}

// isBot reports whether the RPC of ctx comes from the bot's service.
func (g *botGuard) isBot(ctx context.Context) bool {
	id, ok := grpcztn.Peer(ctx)
	return ok && id.Name == g.botService
}

// id returns the bot user's ID, looking it up until it exists (without
// holding the lock: posts do not wait for each other's lookups).
func (g *botGuard) id(ctx context.Context) (int64, error) {
	g.mu.Lock()
	id := g.botID
	g.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	u, _, err := g.Store.Credentials(ctx, bot.DefaultEmail)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	g.botID = u.ID
	g.mu.Unlock()
	return u.ID, nil
}

func (g *botGuard) refuse(ctx context.Context, method, why string) error {
	peer, _ := grpcztn.Peer(ctx)
	g.logger.Warn("chat-store: refused", "caller", peer.String(), "method", method, "reason", why)
	return status.Errorf(codes.PermissionDenied, "chat-store: %s: %s", method, why)
}

// CreateMessage lets the bot post as the bot user only, and nobody else
// post as the bot.
func (g *botGuard) CreateMessage(ctx context.Context, m store.NewMessage) (store.Message, error) {
	botID, err := g.id(ctx)
	if err != nil && g.isBot(ctx) {
		return store.Message{}, g.refuse(ctx, "CreateMessage", "the bot user does not exist yet")
	}
	switch {
	case g.isBot(ctx) && m.UserID != botID:
		return store.Message{}, g.refuse(ctx, "CreateMessage", fmt.Sprintf("%s posts only as the bot user", g.botService))
	case !g.isBot(ctx) && err == nil && m.UserID == botID:
		return store.Message{}, g.refuse(ctx, "CreateMessage", "only "+g.botService+" posts as the bot user")
	}
	return g.Store.CreateMessage(ctx, m)
}

// Credentials lets the bot read its own user only (which has no password).
func (g *botGuard) Credentials(ctx context.Context, email string) (store.User, string, error) {
	if g.isBot(ctx) && email != bot.DefaultEmail {
		return store.User{}, "", g.refuse(ctx, "Credentials", g.botService+" reads only the bot user")
	}
	return g.Store.Credentials(ctx, email)
}

// CreateUser lets the bot create its own user only, without a password.
func (g *botGuard) CreateUser(ctx context.Context, u store.NewUser) (store.User, error) {
	if g.isBot(ctx) && (u.Email != bot.DefaultEmail || u.PasswordHash != "") {
		return store.User{}, g.refuse(ctx, "CreateUser", g.botService+" creates only the bot user, without a password")
	}
	return g.Store.CreateUser(ctx, u)
}
