package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// chat is a front end under test on an in-memory store, served over real
// HTTP, with Run following the store.
type chat struct {
	t   *testing.T
	srv *Server
	st  store.Store
	ts  *httptest.Server

	mu     sync.Mutex
	bodies []string // every response body, to check no password leaks
}

func newChat(t *testing.T, st store.Store, opts ...Option) *chat {
	t.Helper()
	if st == nil {
		st = store.NewMemory()
	}
	opts = append([]Option{WithBcryptCost(bcrypt.MinCost), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	srv, err := New(st, testKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	c := &chat{t: t, srv: srv, st: st, ts: httptest.NewServer(srv)}
	t.Cleanup(func() {
		c.ts.CloseClientConnections()
		c.ts.Close()
		cancel()
		<-done
		c.checkNoPasswords()
	})
	select {
	case <-srv.following:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start following the store")
	}
	return c
}

// do sends a request with an optional JSON body and bearer token and
// returns the status and the decoded JSON body.
func (c *chat) do(method, path, token string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.ts.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, string(data))
	c.mu.Unlock()
	var out map[string]any
	if len(data) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(data, &out); err != nil {
			c.t.Fatalf("%s %s: body %q: %v", method, path, data, err)
		}
	}
	return res.StatusCode, out
}

// must is do that fails the test unless the status is want.
func (c *chat) must(want int, method, path, token string, body any) map[string]any {
	c.t.Helper()
	code, out := c.do(method, path, token, body)
	if code != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %v", method, path, code, want, out)
	}
	return out
}

func (c *chat) signUp(email, password string) map[string]any {
	c.t.Helper()
	return c.must(http.StatusCreated, "POST", "/users", "", map[string]any{"email": email, "password": password})
}

func (c *chat) signIn(email, password string) (string, map[string]any) {
	c.t.Helper()
	out := c.must(http.StatusCreated, "POST", "/authentication", "", map[string]any{"strategy": "local", "email": email, "password": password})
	token, _ := out["accessToken"].(string)
	if token == "" {
		c.t.Fatalf("no accessToken in %v", out)
	}
	return token, out["user"].(map[string]any)
}

// user signs up and in, returning the token and the user's ID.
func (c *chat) user(email string) (string, int64) {
	c.t.Helper()
	c.signUp(email, "secret-"+email)
	token, u := c.signIn(email, "secret-"+email)
	return token, int64(u["id"].(float64))
}

// checkNoPasswords fails if any response carried a password or a hash.
func (c *chat) checkNoPasswords() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bodies {
		if strings.Contains(b, `"password"`) || strings.Contains(b, "$2a$") || strings.Contains(b, "secret-") {
			c.t.Errorf("a response carries a password or hash: %s", b)
		}
	}
}

func checkFeathersError(t *testing.T, out map[string]any, code int, name string) {
	t.Helper()
	if out["code"] != float64(code) || out["name"] != name || out["message"] == "" || out["className"] == "" {
		t.Errorf("error body %v, want code %d name %s", out, code, name)
	}
}

func TestSignUp(t *testing.T) {
	c := newChat(t, nil)
	u := c.signUp("Ann@Example.com", "pw-ann")
	if u["email"] != "Ann@Example.com" || u["id"] == nil {
		t.Fatalf("created user %v", u)
	}
	if _, ok := u["password"]; ok {
		t.Fatalf("password returned: %v", u)
	}
	// feathers-chat's gravatar: md5 of the lower-cased email.
	if want := fmt.Sprintf("https://s.gravatar.com/avatar/%x?s=60", md5.Sum([]byte("ann@example.com"))); u["avatar"] != want {
		t.Fatalf("avatar %v, want %s", u["avatar"], want)
	}
	own := c.must(http.StatusCreated, "POST", "/users", "", map[string]any{"email": "bob@example.com", "password": "pw", "avatar": "https://example.com/bob.png"})
	if own["avatar"] != "https://example.com/bob.png" {
		t.Fatalf("own avatar %v", own["avatar"])
	}
	_, hash, err := c.st.Credentials(t.Context(), "Ann@Example.com")
	if err != nil || bcrypt.CompareHashAndPassword([]byte(hash), []byte("pw-ann")) != nil {
		t.Fatalf("stored hash %q is not a bcrypt hash of the password", hash)
	}

	for _, tc := range []struct {
		name string
		body any
		code int
	}{
		{"duplicate email", map[string]any{"email": "Ann@Example.com", "password": "x"}, http.StatusConflict},
		{"no password", map[string]any{"email": "c@example.com"}, http.StatusBadRequest},
		{"empty password", map[string]any{"email": "c@example.com", "password": ""}, http.StatusBadRequest},
		{"no email", map[string]any{"password": "x"}, http.StatusBadRequest},
		{"not an email", map[string]any{"email": "nope", "password": "x"}, http.StatusBadRequest},
		{"unknown field", map[string]any{"email": "c@example.com", "password": "x", "admin": true}, http.StatusBadRequest},
		{"javascript avatar", map[string]any{"email": "c@example.com", "password": "x", "avatar": "javascript:alert(1)"}, http.StatusBadRequest},
		{"password over 72 bytes", map[string]any{"email": "c@example.com", "password": strings.Repeat("x", 73)}, http.StatusBadRequest},
		{"not JSON", "{", http.StatusBadRequest},
	} {
		code, out := c.do("POST", "/users", "", tc.body)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, code, tc.code, out)
		}
	}
	if p, _ := c.st.FindUsers(t.Context(), store.Query{Limit: 10}); p.Total != 2 {
		t.Errorf("%d users stored, want 2", p.Total)
	}
}

func TestSignIn(t *testing.T) {
	c := newChat(t, nil)
	c.signUp("ann@example.com", "pw-ann")
	token, u := c.signIn("ann@example.com", "pw-ann")
	if u["email"] != "ann@example.com" {
		t.Fatalf("user %v", u)
	}
	if _, ok := u["password"]; ok {
		t.Fatal("password returned on sign-in")
	}
	// The token: HS256, typ access, sub = user id, a day long.
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", token)
	}
	head, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(head), `"alg":"HS256"`) || !strings.Contains(string(head), `"typ":"access"`) {
		t.Fatalf("token header %s", head)
	}
	var rc jwt.RegisteredClaims
	if _, err := jwt.ParseWithClaims(token, &rc, func(*jwt.Token) (any, error) { return testKey, nil }); err != nil {
		t.Fatal(err)
	}
	if life := rc.ExpiresAt.Sub(rc.IssuedAt.Time); life != 24*time.Hour || rc.Subject != fmt.Sprint(u["id"]) {
		t.Fatalf("claims %+v (lifetime %v)", rc, life)
	}

	for _, tc := range []struct {
		name string
		body any
	}{
		{"wrong password", map[string]any{"strategy": "local", "email": "ann@example.com", "password": "nope"}},
		{"unknown email", map[string]any{"strategy": "local", "email": "bob@example.com", "password": "pw-ann"}},
		{"no password", map[string]any{"strategy": "local", "email": "ann@example.com"}},
		{"no strategy", map[string]any{"email": "ann@example.com", "password": "pw-ann"}},
		{"unknown strategy", map[string]any{"strategy": "github", "email": "ann@example.com", "password": "pw-ann"}},
		{"jwt strategy, bad token", map[string]any{"strategy": "jwt", "accessToken": token + "x"}},
	} {
		code, out := c.do("POST", "/authentication", "", tc.body)
		if code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, code)
		}
		checkFeathersError(t, out, 401, "NotAuthenticated")
	}

	// Re-authentication with the token (what the page does on reload).
	out := c.must(http.StatusCreated, "POST", "/authentication", "", map[string]any{"strategy": "jwt", "accessToken": token})
	if out["accessToken"] != token || out["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Fatalf("jwt re-authentication %v", out)
	}
	// Logout needs the token and answers the user.
	c.must(http.StatusUnauthorized, "DELETE", "/authentication", "", nil)
	out = c.must(http.StatusOK, "DELETE", "/authentication", token, nil)
	if out["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Fatalf("logout %v", out)
	}
	c.must(http.StatusMethodNotAllowed, "GET", "/authentication", token, nil)
}

func TestUnauthenticated(t *testing.T) {
	c := newChat(t, nil)
	token, _ := c.user("ann@example.com")
	msg := c.must(http.StatusCreated, "POST", "/messages", token, map[string]any{"text": "hi"})
	id := fmt.Sprint(msg["id"])

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/messages", 401},
		{"POST", "/messages", 401},
		{"GET", "/messages/" + id, 401},
		{"PATCH", "/messages/" + id, 401},
		{"DELETE", "/messages/" + id, 401},
		{"PUT", "/messages/" + id, 405},
		{"PUT", "/messages", 405},
		{"DELETE", "/messages", 405},
		{"PATCH", "/messages", 405},
		{"GET", "/users", 401},
		{"GET", "/users/1", 401},
		{"PATCH", "/users/1", 401},
		{"DELETE", "/users/1", 401},
		{"PUT", "/users/1", 405},
		{"PUT", "/users", 405},
		{"DELETE", "/users", 405},
		{"PUT", "/authentication", 405},
	} {
		code, out := c.do(tc.method, tc.path, "", map[string]any{"text": "x"})
		if code != tc.code {
			t.Errorf("%s %s without token: status %d, want %d", tc.method, tc.path, code, tc.code)
			continue
		}
		name, _ := feathersNames(tc.code)
		checkFeathersError(t, out, tc.code, name)
	}
	// The message is still there, unchanged.
	if got := c.must(200, "GET", "/messages/"+id, token, nil); got["text"] != "hi" {
		t.Fatalf("message after unauthenticated attempts: %v", got)
	}
}

// TestTokens: only HS256 tokens signed with the server's key, unexpired,
// are accepted; each other kind is a 401 on the API and on the stream.
func TestTokens(t *testing.T) {
	c := newChat(t, nil)
	good, id := c.user("ann@example.com")
	sub := fmt.Sprint(id)
	now := time.Now()
	valid := validClaims(id, now)
	sign := func(m jwt.SigningMethod, claims jwt.RegisteredClaims, key any) string {
		return signToken(t, m, claims, key)
	}
	if tok := sign(jwt.SigningMethodHS256, valid, testKey); c.must(200, "GET", "/messages", tok, nil) == nil {
		t.Fatal("a well-made token is refused")
	}
	expired := valid
	expired.IssuedAt = jwt.NewNumericDate(now.Add(-48 * time.Hour))
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-24 * time.Hour))
	noExp := valid
	noExp.ExpiresAt = nil
	otherAud := valid
	otherAud.Audience = jwt.ClaimStrings{"someone-else"}
	// alg none: header {"alg":"none"}, no signature.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"iss":%q,"aud":%q,"exp":%d}`, sub, tokenIssuer, tokenAudience, now.Add(time.Hour).Unix())) + "."
	parts := strings.Split(good, ".")
	// A payload changed to another user, the signature kept.
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"999","iss":%q,"aud":%q,"exp":%d}`, tokenIssuer, tokenAudience, now.Add(time.Hour).Unix())) + "." + parts[2]
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 1
	tampered := parts[0] + "." + parts[1] + "." + string(sig)

	for name, tok := range map[string]string{
		"alg none":         none,
		"alg none, signed": sign(jwt.SigningMethodNone, valid, jwt.UnsafeAllowNoneSignatureType),
		"tampered":         tampered,
		"forged payload":   forged,
		"other key":        sign(jwt.SigningMethodHS256, valid, []byte("another key, also thirty-two bytes long")),
		"HS512, same key":  sign(jwt.SigningMethodHS512, valid, testKey),
		"expired":          sign(jwt.SigningMethodHS256, expired, testKey),
		"no expiry":        sign(jwt.SigningMethodHS256, noExp, testKey),
		"other audience":   sign(jwt.SigningMethodHS256, otherAud, testKey),
		"garbage":          "not-a-jwt",
	} {
		code, out := c.do("GET", "/messages", tok, nil)
		if code != http.StatusUnauthorized {
			t.Errorf("%s: /messages status %d, want 401", name, code)
		}
		checkFeathersError(t, out, 401, "NotAuthenticated")
		if code := c.do2Stream(tok); code != http.StatusUnauthorized {
			t.Errorf("%s: /events status %d, want 401", name, code)
		}
	}

	// An expired token from this server (its clock moved on) is refused too.
	c2 := newChat(t, nil, WithClock(func() time.Time { return now.Add(-25 * time.Hour) }))
	old, _ := c2.user("old@example.com")
	c3srv, err := New(c2.st, testKey, WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/messages", nil)
	req.Header.Set("Authorization", "Bearer "+old)
	c3srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "expired") {
		t.Fatalf("expired token: %d %s", rec.Code, rec.Body)
	}
}

// do2Stream opens /events with ?token= and returns the status.
func (c *chat) do2Stream(token string) int {
	c.t.Helper()
	ctx, cancel := context.WithCancel(c.t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.ts.URL+"/events?token="+token, nil)
	res, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestMessages(t *testing.T) {
	base := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	var tick atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Millisecond) }
	c := newChat(t, nil, WithClock(clock))
	ann, annID := c.user("ann@example.com")
	bob, _ := c.user("bob@example.com")

	m := c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "hello"})
	if m["text"] != "hello" || m["userId"] != float64(annID) {
		t.Fatalf("message %v", m)
	}
	created, ok := m["createdAt"].(float64)
	if !ok || created < float64(base.UnixMilli()) || created > float64(base.Add(time.Minute).UnixMilli()) {
		t.Fatalf("createdAt %v (%T), want ms since the epoch", m["createdAt"], m["createdAt"])
	}
	u, ok := m["user"].(map[string]any)
	if !ok || u["email"] != "ann@example.com" || u["id"] != float64(annID) {
		t.Fatalf("message user %v", m["user"])
	}
	if _, has := u["password"]; has {
		t.Fatal("message carries the user's password")
	}

	// Cut to 400 characters (runes, not bytes).
	long := strings.Repeat("é", 399) + "xyz"
	m = c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": long})
	if got := []rune(m["text"].(string)); len(got) != 400 || string(got) != strings.Repeat("é", 399)+"x" {
		t.Fatalf("cut text has %d runes: %q", len(got), string(got[len(got)-3:]))
	}
	exact := strings.Repeat("a", 400)
	if m = c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": exact}); m["text"] != exact {
		t.Fatal("400 characters not kept whole")
	}

	for name, body := range map[string]any{
		"empty":         map[string]any{"text": ""},
		"blank":         map[string]any{"text": " \n\t"},
		"missing":       map[string]any{},
		"null":          map[string]any{"text": nil},
		"not a string":  map[string]any{"text": 5},
		"posing as bob": map[string]any{"text": "x", "userId": 2},
		"not JSON":      "text=hi",
	} {
		code, out := c.do("POST", "/messages", ann, body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 (%v)", name, code, out)
			continue
		}
		checkFeathersError(t, out, 400, "BadRequest")
	}
	if n, _ := c.st.CountMessages(t.Context()); n != 3 {
		t.Fatalf("%d messages stored, want 3 (rejected ones stored?)", n)
	}

	// get, patch and remove: anyone reads, only the author changes.
	id := fmt.Sprint(m["id"])
	if got := c.must(200, "GET", "/messages/"+id, bob, nil); got["text"] != exact || got["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Fatalf("get %v", got)
	}
	c.must(http.StatusForbidden, "PATCH", "/messages/"+id, bob, map[string]any{"text": "bob was here"})
	c.must(http.StatusForbidden, "DELETE", "/messages/"+id, bob, nil)
	c.must(http.StatusBadRequest, "PATCH", "/messages/"+id, ann, map[string]any{"text": ""})
	if got := c.must(200, "PATCH", "/messages/"+id, ann, map[string]any{"text": "edited"}); got["text"] != "edited" {
		t.Fatalf("patch %v", got)
	}
	c.must(200, "DELETE", "/messages/"+id, ann, nil)
	c.must(http.StatusNotFound, "GET", "/messages/"+id, ann, nil)
	c.must(http.StatusNotFound, "GET", "/messages/nope", ann, nil)
	c.must(http.StatusNotFound, "GET", "/messages/99999", ann, nil)
}

func TestFindMessages(t *testing.T) {
	c := newChat(t, nil)
	ann, annID := c.user("ann@example.com")
	bob, _ := c.user("bob@example.com")
	for i := range 60 {
		tok := ann
		if i%2 == 1 {
			tok = bob
		}
		c.must(http.StatusCreated, "POST", "/messages", tok, map[string]any{"text": fmt.Sprintf("m%02d", i)})
	}
	page := func(query string) (total, limit, skip int, texts []string) {
		t.Helper()
		out := c.must(200, "GET", "/messages"+query, ann, nil)
		for _, d := range out["data"].([]any) {
			texts = append(texts, d.(map[string]any)["text"].(string))
		}
		return int(out["total"].(float64)), int(out["limit"].(float64)), int(out["skip"].(float64)), texts
	}
	if total, limit, skip, texts := page(""); total != 60 || limit != 10 || skip != 0 || len(texts) != 10 || texts[0] != "m00" {
		t.Fatalf("default page: total %d limit %d skip %d %v", total, limit, skip, texts)
	}
	if total, limit, _, texts := page("?$limit=100"); total != 60 || limit != 50 || len(texts) != 50 {
		t.Fatalf("$limit=100: total %d limit %d len %d; want 60 50 50", total, limit, len(texts))
	}
	// What the page asks: the newest 25.
	_, limit, _, texts := page("?%24sort%5BcreatedAt%5D=-1&$limit=25")
	if limit != 25 || len(texts) != 25 || texts[0] != "m59" || texts[24] != "m35" {
		t.Fatalf("newest 25: limit %d %v", limit, texts)
	}
	if _, _, skip, texts := page("?$sort[createdAt]=-1&$limit=25&$skip=50"); skip != 50 || len(texts) != 10 || texts[9] != "m00" {
		t.Fatalf("last page: skip %d %v", skip, texts)
	}
	if total, _, _, texts := page("?$limit=0"); total != 60 || len(texts) != 0 {
		t.Fatalf("$limit=0: total %d, %d records", total, len(texts))
	}
	if total, _, _, texts := page(fmt.Sprintf("?userId=%d&$limit=50", annID)); total != 30 || len(texts) != 30 || texts[1] != "m02" {
		t.Fatalf("ann's messages: total %d %v", total, texts)
	}
	if _, _, _, texts := page("?$sort[userId]=-1&$sort[id]=1&$limit=2"); texts[0] != "m01" || texts[1] != "m03" {
		t.Fatalf("two sort keys in order: %v", texts)
	}
	for _, q := range []string{"?$limit=-1", "?$limit=ten", "?$skip=-5", "?$sort[createdAt]=up", "?$sort[password]=1", "?admin=1", "?userId=x"} {
		code, out := c.do("GET", "/messages"+q, ann, nil)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 (%v)", q, code, out)
		}
	}
	// Users are paged the same way and never show a password.
	out := c.must(200, "GET", "/users?$sort[email]=-1", ann, nil)
	if out["total"] != float64(2) || out["limit"] != float64(10) || out["data"].([]any)[0].(map[string]any)["email"] != "bob@example.com" {
		t.Fatalf("users %v", out)
	}
}

func TestUsersOwnOnly(t *testing.T) {
	c := newChat(t, nil)
	ann, annID := c.user("ann@example.com")
	bob, bobID := c.user("bob@example.com")
	c.must(http.StatusCreated, "POST", "/messages", bob, map[string]any{"text": "bob's"})
	if got := c.must(200, "GET", fmt.Sprintf("/users/%d", bobID), ann, nil); got["email"] != "bob@example.com" {
		t.Fatalf("get user %v", got)
	}
	c.must(http.StatusForbidden, "PATCH", fmt.Sprintf("/users/%d", bobID), ann, map[string]any{"password": "taken over"})
	c.must(http.StatusForbidden, "DELETE", fmt.Sprintf("/users/%d", bobID), ann, nil)
	c.must(http.StatusConflict, "PATCH", fmt.Sprintf("/users/%d", annID), ann, map[string]any{"email": "bob@example.com"})
	c.must(200, "PATCH", fmt.Sprintf("/users/%d", annID), ann, map[string]any{"password": "new-pw"})
	c.must(http.StatusUnauthorized, "POST", "/authentication", "", map[string]any{"strategy": "local", "email": "ann@example.com", "password": "secret-ann@example.com"})
	c.signIn("ann@example.com", "new-pw")
	// Bob leaves: his messages go with him, his token no longer posts.
	c.must(200, "DELETE", fmt.Sprintf("/users/%d", bobID), bob, nil)
	if out := c.must(200, "GET", "/messages", ann, nil); out["total"] != float64(0) {
		t.Fatalf("messages after bob left: %v", out)
	}
	c.must(http.StatusUnauthorized, "POST", "/messages", bob, map[string]any{"text": "ghost"})
}

// sse is a client of /events.
type sse struct {
	code   int
	events chan [2]string // name, data
}

func (c *chat) stream(header, query string) *sse {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", c.ts.URL+"/events"+query, nil)
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	res, err := c.ts.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	s := &sse{code: res.StatusCode, events: make(chan [2]string, 100)}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		close(s.events)
		return s
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		c.t.Fatalf("stream content type %q", ct)
	}
	go func() {
		defer res.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" || data != "" {
					s.events <- [2]string{name, data}
				}
				name, data = "", ""
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	// Every stream opens with "connected".
	if ev := s.next(c.t, 10*time.Second); ev[0] != eventConnected {
		c.t.Fatalf("first event %v, want connected", ev)
	}
	return s
}

func (s *sse) next(t *testing.T, wait time.Duration) [2]string {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			return [2]string{"closed", ""}
		}
		return ev
	case <-time.After(wait):
		return [2]string{"timeout", ""}
	}
}

// TestRealTime: two authenticated clients (header and ?token=) get new
// users and messages, also those made without this front end (the bot
// posts to the store); an anonymous client gets nothing; a bad token gets
// a 401.
func TestRealTime(t *testing.T) {
	c := newChat(t, nil)
	ann, _ := c.user("ann@example.com")
	bob, _ := c.user("bob@example.com")
	byHeader := c.stream("Bearer "+ann, "")
	byQuery := c.stream("", "?token="+bob)
	anon := c.stream("", "")
	if bad := c.stream("", "?token="+bob+"x"); bad.code != http.StatusUnauthorized {
		t.Fatalf("bad token stream: status %d, want 401", bad.code)
	}
	if bad := c.stream("Bearer nonsense", ""); bad.code != http.StatusUnauthorized {
		t.Fatalf("bad header stream: status %d, want 401", bad.code)
	}

	c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "hello bob"})
	c.signUp("cid@example.com", "pw")
	bot, err := c.st.CreateUser(t.Context(), store.NewUser{Email: "bot@chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.st.CreateMessage(t.Context(), store.NewMessage{Text: "beep", UserID: bot.ID, CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*sse{"header": byHeader, "query": byQuery} {
		var got []string
		for range 4 {
			ev := s.next(t, 10*time.Second)
			var v map[string]any
			if err := json.Unmarshal([]byte(ev[1]), &v); err != nil {
				t.Fatalf("%s: event %v: %v", name, ev, err)
			}
			switch ev[0] {
			case eventMessageCreated:
				got = append(got, "message "+v["text"].(string)+" by "+v["user"].(map[string]any)["email"].(string))
			case eventUserCreated:
				if _, has := v["password"]; has {
					t.Errorf("%s: pushed user has a password", name)
				}
				got = append(got, "user "+v["email"].(string))
			default:
				t.Fatalf("%s: event %v", name, ev)
			}
		}
		want := "message hello bob by ann@example.com,user cid@example.com,user bot@chat,message beep by bot@chat"
		if strings.Join(got, ",") != want {
			t.Errorf("%s stream got %v, want %s", name, got, want)
		}
	}
	if ev := anon.next(t, 500*time.Millisecond); ev[0] != "timeout" {
		t.Fatalf("anonymous stream got %v", ev)
	}

	// Logging out ends the streams of that token, not the others.
	c.must(http.StatusUnauthorized, "DELETE", "/authentication", "", nil)
	c.must(200, "DELETE", "/authentication", ann, nil)
	if ev := byHeader.next(t, 5*time.Second); ev[0] != "closed" {
		t.Fatalf("after logout ann's stream got %v", ev)
	}
	c.must(http.StatusCreated, "POST", "/messages", bob, map[string]any{"text": "still here"})
	if ev := byQuery.next(t, 5*time.Second); ev[0] != eventMessageCreated {
		t.Fatalf("bob's stream after ann's logout got %v", ev)
	}
}

// TestStreamExpires: a stream ends with "expired" when its token does.
func TestStreamExpires(t *testing.T) {
	c := newChat(t, nil, WithTokenLifetime(1500*time.Millisecond))
	tok, _ := c.user("ann@example.com")
	s := c.stream("", "?token="+tok)
	if ev := s.next(t, 10*time.Second); ev[0] != eventExpired {
		t.Fatalf("got %v, want expired", ev)
	}
	if ev := s.next(t, 5*time.Second); ev[0] != "closed" {
		t.Fatalf("after expired: %v", ev)
	}
}

// flaky is a store whose writes can be made to fail as a store behind a
// refused connection does.
type flaky struct {
	store.Store
	down atomic.Bool
}

func (f *flaky) CreateMessage(ctx context.Context, m store.NewMessage) (store.Message, error) {
	if f.down.Load() {
		return store.Message{}, fmt.Errorf("chat store: permission denied by intentions: %w", store.ErrUnavailable)
	}
	return f.Store.CreateMessage(ctx, m)
}

func (f *flaky) Follow(ctx context.Context, pos store.Position, fn func(store.Event) error) error {
	if f.down.Load() {
		return fmt.Errorf("chat store: follow: %w", store.ErrUnavailable)
	}
	return f.Store.Follow(ctx, pos, func(ev store.Event) error {
		if f.down.Load() {
			return fmt.Errorf("chat store: follow: %w", store.ErrUnavailable)
		}
		return fn(ev)
	})
}

// TestStoreUnavailable: when the store refuses, posting fails with a 503
// that says so, nothing stored is lost, and once it is back the streams
// catch up on what was stored meanwhile.
func TestStoreUnavailable(t *testing.T) {
	f := &flaky{Store: store.NewMemory()}
	c := newChat(t, f)
	ann, annID := c.user("ann@example.com")
	s := c.stream("", "?token="+ann)
	c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "before"})
	if ev := s.next(t, 5*time.Second); ev[0] != eventMessageCreated {
		t.Fatalf("got %v", ev)
	}
	f.down.Store(true)
	code, out := c.do("POST", "/messages", ann, map[string]any{"text": "during"})
	if code != http.StatusServiceUnavailable || !strings.Contains(out["message"].(string), "permission denied") {
		t.Fatalf("post while denied: %d %v", code, out)
	}
	checkFeathersError(t, out, 503, "Unavailable")
	// Written meanwhile by another path (the bot): reaches the stream later.
	if _, err := f.Store.CreateMessage(t.Context(), store.NewMessage{Text: "meanwhile", UserID: annID, CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	f.down.Store(false)
	if ev := s.next(t, 10*time.Second); ev[0] != eventMessageCreated || !strings.Contains(ev[1], "meanwhile") {
		t.Fatalf("after recovery got %v", ev)
	}
	out = c.must(200, "GET", "/messages", ann, nil)
	if out["total"] != float64(2) {
		t.Fatalf("messages after recovery: %v", out)
	}
	c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "after"})
}

// TestPage: the page and its script come from the program itself, with
// no script, style or font from elsewhere.
func TestPage(t *testing.T) {
	c := newChat(t, nil)
	for path, want := range map[string]string{
		"/":          `<script src="/app.js"`,
		"/app.js":    "new EventSource('/events?token='",
		"/style.css": "#messages",
	} {
		res, err := c.ts.Client().Get(c.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("%s: %d, body lacks %q", path, res.StatusCode, want)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
		for _, remote := range []string{`src="http`, `href="http`, "cdn", "@import", "//fonts."} {
			if strings.Contains(strings.ToLower(string(body)), remote) {
				t.Errorf("%s loads something remote: %q", path, remote)
			}
		}
	}
	res, err := c.ts.Client().Get(c.ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, id := range []string{`id="email"`, `id="password"`, `id="signin"`, `id="signup"`, `id="messages"`, `id="text"`, `id="send"`, `id="logout"`} {
		if !strings.Contains(string(body), id) {
			t.Errorf("page lacks %s", id)
		}
	}
	code, out := c.do("GET", "/nope", "", nil)
	if code != 404 {
		t.Fatalf("/nope: %d", code)
	}
	checkFeathersError(t, out, 404, "NotFound")
}
