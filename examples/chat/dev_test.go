package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ztnlabs/ztn/internal/test/logtest"
)

// TestDev: `go run ./examples/chat` — the whole chat in one process on the
// dev mesh — serves the API through the gateway, the bot answers /fortune
// (over ztn to fortune) and /weather (the stub), and the program says
// loudly what is not real.
func TestDev(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the chat stops
	base, out := startDev(t)
	a := newAPI(t, base)
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	tok, _ := a.signUpIn("dev@example.com", "pw-dev-123")
	a.expect(http.StatusCreated, "POST", "/messages", tok, map[string]any{"text": "/fortune"})
	a.waitBotReply(tok, "🥠", 20*time.Second)
	a.expect(http.StatusCreated, "POST", "/messages", tok, map[string]any{"text": "/weather Lyon"})
	if reply := a.waitBotReply(tok, "Lyon", 20*time.Second); !strings.Contains(reply, "stub") {
		t.Errorf("weather reply %q does not say it is the stub", reply)
	}
	s := out.String()
	for _, want := range []string{"the weather API is a STUB", "chat-gateway: open http://"} {
		if !strings.Contains(s, want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	if !strings.Contains(s, "the store is Postgres at") && !strings.Contains(s, "the store is IN MEMORY") {
		t.Error("the output does not say which store it uses")
	}
}

// startDev runs the whole chat in this process as `go run ./examples/chat`
// does (runDev) until the test ends, and returns the gateway's URL and
// the program's output (warnings of the log too).
func startDev(t *testing.T) (string, *logtest.Buffer) {
	t.Helper()
	out := &logtest.Buffer{}
	gateway := make(chan string, 1)
	rc := roleConfig{out: out, logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})),
		addr: "127.0.0.1:0", listening: func(service string, a net.Addr) {
			if service == svcGateway {
				gateway <- "http://" + a.String()
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := runDev(ctx, rc); err != nil {
			t.Errorf("runDev: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	select {
	case base := <-gateway:
		return base, out
	case <-time.After(time.Minute):
		t.Fatal("the gateway did not start")
		return "", nil
	}
}
