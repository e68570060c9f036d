package bot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/web"
)

// TestBotThroughWeb is the spec's "a bot command gets a bot reply" end to
// end: a user posts /fortune through the web API, and every
// authenticated stream gets the post and then the bot's answer.
func TestBotThroughWeb(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	st := store.NewMemory()
	srv, err := web.New(st, []byte("0123456789abcdef0123456789abcdef"), web.WithBcryptCost(bcrypt.MinCost), web.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer ts.CloseClientConnections()
	go srv.Run(ctx)

	me, err := EnsureUser(ctx, st, DefaultEmail)
	if err != nil {
		t.Fatal(err)
	}
	b := New(FortunerFunc(func(context.Context) (string, error) { return "Trust, but verify.\n", nil }), nil, WithLogger(quiet))
	started := make(chan struct{})
	b.cfg.started = func() { close(started) }
	go b.Run(ctx, st, me.ID)
	<-started

	call := func(method, path, token string, body any) map[string]any {
		t.Helper()
		data, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, method, ts.URL+path, bytes.NewReader(data))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v %v", method, path, res.StatusCode, out, err)
		}
		return out
	}
	call("POST", "/users", "", map[string]string{"email": "ann@example.com", "password": "pw"})
	token := call("POST", "/authentication", "", map[string]string{"strategy": "local", "email": "ann@example.com", "password": "pw"})["accessToken"].(string)

	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/events?token="+token, nil)
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := make(chan [2]string, 10)
	go func() {
		sc := bufio.NewScanner(res.Body)
		var name string
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				name = n
			}
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- [2]string{name, d}
			}
		}
		close(events)
	}()
	next := func() (string, map[string]any) {
		t.Helper()
		select {
		case ev := <-events:
			var v map[string]any
			_ = json.Unmarshal([]byte(ev[1]), &v)
			return ev[0], v
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return "", nil
		}
	}
	if name, _ := next(); name != "connected" {
		t.Fatalf("first event %s", name)
	}
	// The front end follows the store once a new user reaches the stream.
	call("POST", "/users", "", map[string]string{"email": "probe@example.com", "password": "pw"})
	if name, v := next(); name != "users created" || v["email"] != "probe@example.com" {
		t.Fatalf("event %s %v", name, v)
	}

	call("POST", "/messages", token, map[string]string{"text": "/fortune"})
	if name, v := next(); name != "messages created" || v["text"] != "/fortune" {
		t.Fatalf("event %s %v", name, v)
	}
	name, v := next()
	if name != "messages created" || v["text"] != "🥠 Trust, but verify." || v["user"].(map[string]any)["email"] != DefaultEmail {
		t.Fatalf("bot's answer: %s %v", name, v)
	}
	// Nobody can sign in as the bot.
	data, _ := json.Marshal(map[string]string{"strategy": "local", "email": DefaultEmail, "password": ""})
	r2, err := ts.Client().Post(ts.URL+"/authentication", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signing in as the bot: %d", r2.StatusCode)
	}
}
