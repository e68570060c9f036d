package storegrpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/storetest"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc"
	"github.com/ztnlabs/ztn/examples/chat/internal/web"
)

// serve runs st behind a real gRPC server on a loopback port and returns
// a client of it and the server.
func serve(t *testing.T, st store.Store, opts ...grpc.ServerOption) (*storegrpc.Client, *grpc.Server) {
	t.Helper()
	s, cc := listen(t, st, opts...)
	return storegrpc.NewClient(cc), s
}

// listen serves st on a loopback port until the test ends and returns the
// server and a connection to it.
func listen(t testing.TB, st store.Store, opts ...grpc.ServerOption) (*grpc.Server, *grpc.ClientConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	storegrpc.Register(s, st)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Stop(); <-done })
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return s, cc
}

// TestSuite: the store over gRPC behaves as the store itself.
func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		c, _ := serve(t, store.NewMemory())
		return c
	})
}

// deny refuses the listed methods as a mesh's L7 intentions do.
func deny(methods ...string) grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		for _, m := range methods {
			if info.FullMethod == m {
				return nil, status.Error(codes.PermissionDenied, "intentions deny chat-web -> chat-store "+m)
			}
		}
		return h(ctx, req)
	})
}

// TestDenied: with posting refused by the mesh, the front end answers a
// post with a 503 that says so, reads keep working and nothing stored is
// lost.
func TestDenied(t *testing.T) {
	mem := store.NewMemory()
	open, _ := serve(t, mem)
	denied, _ := serve(t, mem, deny("/chat.store.v1.Store/CreateMessage"))
	u, err := open.CreateUser(t.Context(), store.NewUser{Email: "ann@example.com", PasswordHash: mustHash(t, "pw")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.CreateMessage(t.Context(), store.NewMessage{Text: "kept", UserID: u.ID, CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = denied.CreateMessage(t.Context(), store.NewMessage{Text: "x", UserID: u.ID, CreatedAt: 1})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "PermissionDenied") || !strings.Contains(err.Error(), "intentions deny") {
		t.Fatalf("denied CreateMessage: %v", err)
	}

	srv, err := web.New(denied, []byte("0123456789abcdef0123456789abcdef"), web.WithBcryptCost(bcrypt.MinCost), web.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	call := func(method, path, token string, body any) (int, map[string]any) {
		data, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(data))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	code, auth := call("POST", "/authentication", "", map[string]string{"strategy": "local", "email": "ann@example.com", "password": "pw"})
	if code != http.StatusCreated {
		t.Fatalf("sign in over gRPC: %d %v", code, auth)
	}
	token := auth["accessToken"].(string)
	code, out := call("POST", "/messages", token, map[string]string{"text": "lost?"})
	if code != http.StatusServiceUnavailable || out["name"] != "Unavailable" || !strings.Contains(out["message"].(string), "PermissionDenied") {
		t.Fatalf("post while denied: %d %v", code, out)
	}
	code, out = call("GET", "/messages", token, nil)
	if code != http.StatusOK || out["total"] != float64(1) || out["data"].([]any)[0].(map[string]any)["text"] != "kept" {
		t.Fatalf("messages while denied: %d %v", code, out)
	}
}

// TestFollowServerGone: a follower learns that the store went away.
func TestFollowServerGone(t *testing.T) {
	c, s := serve(t, store.NewMemory())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Follow(ctx, store.Position{}, func(ev store.Event) error {
			if ev.User != nil && ev.User.Email == "first@example.com" {
				close(started)
			}
			return nil
		})
	}()
	if _, err := c.CreateUser(ctx, store.NewUser{Email: "first@example.com"}); err != nil {
		t.Fatal(err)
	}
	<-started
	s.Stop()
	if err := <-done; !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Follow after the server stopped: %v", err)
	}
}

func mustHash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
