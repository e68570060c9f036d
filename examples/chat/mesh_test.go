package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

// TestMesh runs the chat in mesh mode on a real Consul, Vault and Postgres
// (each service with its own identity, Vault token and environment, as
// separate `chat -mode` processes would) and checks, through the gateway,
// everything the spec asks of it, in two real browsers too, then the deny case, a rotation of the
// Postgres logins under load and the weather API going down.
func TestMesh(t *testing.T) {
	m := startChatMesh(t)
	a := newAPI(t, m.gateway)
	t.Logf("the chat is up at %s", m.gateway)

	ann, annID := a.signUpIn("ann@example.com", "pw-ann-123")
	bob, _ := a.signUpIn("bob@example.com", "pw-bob-123")

	t.Run("Spec", func(t *testing.T) { testSpec(t, a, ann, annID, bob) })
	t.Run("Events", func(t *testing.T) { testEvents(t, a, ann, bob) })
	t.Run("Bot", func(t *testing.T) { testBot(t, m, a, ann) })
	t.Run("Browser", func(t *testing.T) { testBrowser(t, m.gateway) })
	t.Run("OneTrace", func(t *testing.T) { testTrace(t, m, a, ann) })
	t.Run("DenyWebToStore", func(t *testing.T) { testDeny(t, m, a, ann) })
	t.Run("RotateUnderPosts", func(t *testing.T) { testRotation(t, m, a, ann, bob) })
	t.Run("WeatherDown", func(t *testing.T) { testWeatherDown(t, m, a, ann) })
	t.Run("Metrics", func(t *testing.T) { testMetrics(t, m) })
}

// testSpec: the spec's checks (examples.md §3) through the gateway.
func testSpec(t *testing.T, a *api, ann string, annID float64, bob string) {
	// 401 without a token, or with a bad one.
	for _, tok := range []string{"", "not-a-jwt", ann[:len(ann)-2] + "xx"} {
		if code, raw, _ := a.call("GET", "/messages", tok, nil); code != http.StatusUnauthorized {
			t.Errorf("GET /messages with token %q: %d %s, want 401", tok, code, raw)
		}
	}
	if code, _, _ := a.call("POST", "/messages", "", map[string]any{"text": "hi"}); code != http.StatusUnauthorized {
		t.Errorf("POST /messages without a token: %d, want 401", code)
	}
	// Sign-in with a wrong password is refused; a duplicate email too.
	if code, _, _ := a.call("POST", "/authentication", "", map[string]any{"strategy": "local", "email": "ann@example.com", "password": "nope"}); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code, _, _ := a.call("POST", "/users", "", map[string]any{"email": "ann@example.com", "password": "x"}); code != http.StatusConflict {
		t.Errorf("duplicate email: %d, want 409", code)
	}
	// A posted message comes back with its user and without any password.
	msg := a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "hello from ann"})
	u, _ := msg["user"].(map[string]any)
	if msg["text"] != "hello from ann" || msg["userId"] != annID || u["email"] != "ann@example.com" {
		t.Errorf("created message %v", msg)
	}
	if _, ok := msg["createdAt"].(float64); !ok {
		t.Errorf("createdAt %v is not a number", msg["createdAt"])
	}
	// 400-character cut; empty text rejected.
	long := a.expect(http.StatusCreated, "POST", "/messages", bob, map[string]any{"text": strings.Repeat("é", 450)})
	if n := utf8.RuneCountInString(long["text"].(string)); n != 400 {
		t.Errorf("a 450-character text is kept as %d characters, want 400", n)
	}
	for _, empty := range []string{"", "   "} {
		if code, _, _ := a.call("POST", "/messages", ann, map[string]any{"text": empty}); code != http.StatusBadRequest {
			t.Errorf("text %q: %d, want 400", empty, code)
		}
	}
	// Paging: {total, limit, skip, data}, default 10, max 50, $skip.
	for i := range 12 {
		a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": fmt.Sprintf("page %02d", i)})
	}
	page := a.expect(http.StatusOK, "GET", "/messages", ann, nil)
	total := page["total"].(float64)
	if page["limit"] != float64(10) || page["skip"] != float64(0) || len(page["data"].([]any)) != 10 || total < 14 {
		t.Errorf("default page: limit %v skip %v, %d records, total %v", page["limit"], page["skip"], len(page["data"].([]any)), total)
	}
	big := a.expect(http.StatusOK, "GET", "/messages?$limit=100", ann, nil)
	if big["limit"] != float64(50) {
		t.Errorf("$limit=100 served as limit %v, want 50", big["limit"])
	}
	newest := a.expect(http.StatusOK, "GET", "/messages?$sort[createdAt]=-1&$limit=2&$skip=1", ann, nil)
	data := newest["data"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["text"] != "page 10" || data[1].(map[string]any)["text"] != "page 09" {
		t.Errorf("$sort[createdAt]=-1&$limit=2&$skip=1: %v", data)
	}
	// No response carried a password or a hash: the users' list included.
	_, raw, _ := a.call("GET", "/users?$limit=50", ann, nil)
	if strings.Contains(raw, "password") || strings.Contains(raw, "$2a$") || strings.Contains(raw, "pw-ann") {
		t.Errorf("GET /users shows a password: %s", raw)
	}
}

// testEvents: a message is pushed to an authenticated stream through the
// gateway, and an anonymous stream gets nothing but its greeting.
func testEvents(t *testing.T, a *api, ann, bob string) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	code, authed := a.events(ctx, bob)
	if code != http.StatusOK {
		t.Fatalf("GET /events as bob: %d", code)
	}
	_, anon := a.events(ctx, "")
	<-authed // "connected"
	<-anon
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "pushed to bob"})
	deadline := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case d := <-authed:
			got = strings.Contains(d, "pushed to bob")
		case <-deadline:
			t.Fatal("bob's stream did not get the message")
		}
	}
	select {
	case d := <-anon:
		t.Errorf("the anonymous stream got %s", d)
	case <-time.After(time.Second):
	}
}

// testBot: /fortune is answered by the bot (bot → fortune over ztn),
// /weather by the external API through the egress client.
func testBot(t *testing.T, m *chatMesh, a *api, ann string) {
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "/fortune"})
	t.Logf("fortune: %s", a.waitBotReply(ann, "🥠", 20*time.Second))
	calls := m.weather.calls.Load()
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "/weather Paris"})
	reply := a.waitBotReply(ann, "Paris", 20*time.Second)
	if !strings.Contains(reply, "light rain") || m.weather.calls.Load() == calls {
		t.Errorf("weather reply %q (API calls %d → %d)", reply, calls, m.weather.calls.Load())
	}
}

// testDeny: with web → store denied, posting fails with a clear 503 and
// nothing stored is lost; allowed again, posting works.
func testDeny(t *testing.T, m *chatMesh, a *api, ann string) {
	maxID := m.pg.ExecIn("chat", "SELECT coalesce(max(id), 0) FROM messages")
	stored := func() string { return m.pg.ExecIn("chat", "SELECT count(*) FROM messages WHERE id <= "+maxID) }
	before := stored()
	m.writeEntry([]byte(`{"Kind": "service-intentions", "Name": "chat-store", "Sources": [
		{"Name": "chat-web", "Action": "deny"},
		{"Name": "chat-bot", "Permissions": [{"Action": "allow", "HTTP": {"PathRegex": "/chat\\.store\\.v1\\.Store/(GetPosition|Follow|Credentials|CreateUser|CreateMessage)"}}]}]}`))
	// Consul's change reaches chat-store's policy within moments; a post
	// on the connection that the change closes fails as unavailable, the
	// next ones say why.
	var code int
	var raw string
	poll.WaitFor(t, 10*time.Second, func() bool {
		code, raw, _ = a.call("POST", "/messages", ann, map[string]any{"text": "while denied"})
		if code != http.StatusCreated && code != http.StatusServiceUnavailable {
			t.Errorf("posting while web → store is being denied: %d %s, want 503 (or 201 before the change arrives)", code, raw)
		}
		// Not the body of a 201: it echoes the text, "while denied".
		return code == http.StatusServiceUnavailable && strings.Contains(raw, "denies")
	})
	if code != http.StatusServiceUnavailable || !strings.Contains(raw, "intention chat-web → chat-store denies") {
		t.Errorf("posting while web → store is denied: %d %s, want 503 naming the intention", code, raw)
	}
	t.Logf("posting while denied: %d %s", code, raw)
	if after := stored(); after != before {
		t.Errorf("%s messages stored before the deny, %s of them after", before, after)
	}
	m.writeConfig()
	poll.WaitFor(t, 30*time.Second, func() bool {
		code, _, _ = a.call("POST", "/messages", ann, map[string]any{"text": "allowed again"})
		return code == http.StatusCreated
	})
	if texts, _ := a.messages(ann, 50); !contains(texts, "hello from ann") {
		t.Errorf("after the deny: %q", texts)
	}
}

// testRotation: Vault's Postgres logins last dbTTL, renewable to dbMaxTTL,
// so chat-store takes new ones every few seconds; under a steady stream of
// posts through the gateway not one fails or is lost.
func testRotation(t *testing.T, m *chatMesh, a *api, ann, bob string) {
	loginRE := regexp.MustCompile(`chat-store: Postgres login (\S+) from Vault`)
	logins := func() int { return len(loginRE.FindAllString(m.out.String(), -1)) }
	first := logins()
	before := m.pg.ExecIn("chat", "SELECT count(*) FROM messages")
	var posted, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w, tok := range []string{ann, bob} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, raw, _ := a.call("POST", "/messages", tok, map[string]any{"text": fmt.Sprintf("load %d-%d", w, i)})
				if code != http.StatusCreated {
					failed.Add(1)
					t.Errorf("post %d-%d: %d %s", w, i, code, raw)
					continue
				}
				posted.Add(1)
			}
		})
	}
	deadline := time.Now().Add(2*dbMaxTTL + 10*time.Second)
	for logins() < first+2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	rotated := logins() - first
	if rotated < 2 {
		t.Errorf("%d new Postgres logins during the run, want 2 or more", rotated)
	}
	after := m.pg.ExecIn("chat", "SELECT count(*) FROM messages")
	var b, c int64
	fmt.Sscan(before, &b)
	fmt.Sscan(after, &c)
	if failed.Load() != 0 || c-b < posted.Load() || posted.Load() < 20 {
		t.Errorf("%d posts, %d failed, %d stored", posted.Load(), failed.Load(), c-b)
	}
	users := m.pg.Exec("SELECT count(*) FROM pg_roles WHERE pg_has_role(oid, 'chat_owner', 'MEMBER') AND rolcanlogin AND rolname <> 'vault_admin'")
	t.Logf("%d posts through the gateway, %d failed; %d new Postgres logins from Vault; login roles left: %s", posted.Load(), failed.Load(), rotated, users)
}

// testWeatherDown: with the external API gone, /weather is answered with
// an error message and the chat keeps working (/fortune too).
func testWeatherDown(t *testing.T, m *chatMesh, a *api, ann string) {
	m.weather.srv.Close()
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "/weather Oslo"})
	reply := a.waitBotReply(ann, "Oslo", 30*time.Second)
	if !strings.Contains(reply, "Sorry") {
		t.Errorf("with the API down, the bot answered %q", reply)
	}
	t.Logf("API down: %s", reply)
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "still chatting"})
	a.expect(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "/fortune"})
	a.waitBotReply(ann, "🥠", 20*time.Second)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
