package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/pgstore"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// TestHostileRequests sends hostile requests to the front end over real
// HTTP, on the in-memory store and on Postgres (testenv: a real server,
// skipped when Postgres is not installed): each gets the 4xx it should,
// with a feathers error saying why, or is served with its input kept as
// data (SQL-looking strings are text, nothing more); no answer carries a
// password (newChat checks every body), and the server keeps serving.
func TestHostileRequests(t *testing.T) {
	t.Run("Memory", func(t *testing.T) { testHostile(t, store.NewMemory()) })
	t.Run("Postgres", func(t *testing.T) { testHostile(t, postgresStore(t)) })
}

// postgresStore opens a pgstore on a fresh Postgres server, logging in as
// the database's owner with a client certificate.
func postgresStore(t *testing.T) store.Store {
	t.Helper()
	ca := testenv.NewTestCA(t, "chat web test CA")
	pg := testenv.Postgres(t, ca.ServerTLS(t), testenv.PostgresDatabase("chat", "chat"), testenv.PostgresSetting("fsync", "off"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, "postgres://chat@"+pg.Addr+"/chat", nil,
		pgstore.WithTLSConfig(testenv.ClientTLS(t, ca, ca, "chat")), pgstore.WithPollInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// hostileCase is one request and what it must get.
type hostileCase struct {
	name        string
	method      string
	path        string
	contentType string // "" sends none
	body        string
	code        int
	says        string // in the error message (or, for a 2xx, the body)
}

func testHostile(t *testing.T, st store.Store) {
	c := newChat(t, st)
	ann, annID := c.user("ann@example.com")
	c.must(http.StatusCreated, "POST", "/messages", ann, map[string]any{"text": "before"})
	const json = "application/json"
	sqlText := `'); DELETE FROM messages; DROP TABLE users; --`
	for _, tc := range []hostileCase{
		// Bodies: capped at maxBody, JSON only, one object, known keys once.
		{"body over the cap", "POST", "/messages", json, `{"text":"` + strings.Repeat("a", maxBody) + `"}`, 413, "larger than 65536 bytes"},
		{"10 MB body", "POST", "/users", json, strings.Repeat(" ", 10<<20), 413, "larger than 65536 bytes"},
		{"form body", "POST", "/users", "application/x-www-form-urlencoded", "email=x@y.z&password=x", 415, `"name":"UnsupportedMediaType"`},
		{"text/plain JSON", "POST", "/messages", "text/plain", `{"text":"csrf?"}`, 415, "application/json"},
		{"multipart", "POST", "/authentication", "multipart/form-data; boundary=x", "--x--", 415, "application/json"},
		{"bad content type", "POST", "/messages", "application/json; charset", `{"text":"x"}`, 415, "Content-Type"},
		{"JSON with a charset", "POST", "/messages", "application/json; charset=utf-8", `{"text":"charset"}`, 201, `"charset"`},
		{"no content type", "POST", "/messages", "", `{"text":"plain client"}`, 201, `"plain client"`},
		{"duplicate key", "POST", "/messages", json, `{"text":"a","text":"b"}`, 400, `duplicate key \"text\"`},
		{"duplicate key, other case", "POST", "/users", json, `{"email":"dup@example.com","password":"x","EMAIL":"admin@example.com"}`, 400, `unknown field \"EMAIL\"`},
		{"key in another case", "POST", "/messages", json, `{"Text":"a"}`, 400, `unknown field \"Text\"`},
		{"two objects", "POST", "/messages", json, `{"text":"a"}{"text":"b"}`, 400, "more than one value"},
		{"array", "POST", "/messages", json, `[{"text":"a"}]`, 400, "invalid JSON body"},
		{"deep nesting", "POST", "/messages", json, strings.Repeat("[", 20000), 400, "invalid JSON body"},
		// Text: NUL and control characters, any Unicode, the 400 cut.
		{"NUL in text", "POST", "/messages", json, `{"text":"a\u0000b"}`, 400, "NUL"},
		{"unicode text", "POST", "/messages", json, `{"text":"ünï 🦊 שלום \u202e evil"}`, 201, "ünï 🦊 שלום \u202e evil"},
		{"lone surrogate", "POST", "/messages", json, `{"text":"\ud800x"}`, 201, "\ufffdx"},
		{"invalid UTF-8", "POST", "/messages", json, "{\"text\":\"\xff\xfeok\"}", 201, "\ufffd\ufffdok"},
		{"401 emoji", "POST", "/messages", json, `{"text":"` + strings.Repeat("🦊", 401) + `"}`, 201, `"` + strings.Repeat("🦊", 400) + `"`},
		{"SQL text", "POST", "/messages", json, `{"text":"` + sqlText + `"}`, 201, sqlText},
		// Emails.
		{"NUL in email", "POST", "/users", json, `{"email":"eve\u0000@example.com","password":"x"}`, 400, "not an email address"},
		{"control character in email", "POST", "/users", json, `{"email":"eve\u0007@example.com","password":"x"}`, 400, "not an email address"},
		{"newline in email", "POST", "/users", json, `{"email":"eve@example.com\nBcc: x@y.z","password":"x"}`, 400, "not an email address"},
		{"huge avatar", "POST", "/users", json, `{"email":"big@example.com","password":"x","avatar":"https://` + strings.Repeat("a", 3000) + `"}`, 400, "at most 2048 bytes"},
		{"unicode email", "POST", "/users", json, `{"email":"ännä@exämple.com","password":"pw-ännä"}`, 201, "ännä@exämple.com"},
		{"SQL email", "POST", "/users", json, `{"email":"x'OR'1'='1@example.com","password":"pw"}`, 201, "x'OR'1'='1@example.com"},
		{"SQL sign-in", "POST", "/authentication", json, `{"strategy":"local","email":"ann@example.com' --","password":"x"}`, 401, "Invalid login"},
		{"NUL sign-in", "POST", "/authentication", json, `{"strategy":"local","email":"ann@example.com\u0000","password":"x"}`, 401, "Invalid login"},
		// Queries: limits, overflow, unknown and injected sort fields.
		{"negative $limit", "GET", "/messages?$limit=-1", "", "", 400, "$limit must be"},
		{"overflowing $limit", "GET", "/messages?$limit=99999999999999999999", "", "", 200, `"limit":50`},
		{"$limit over int32", "GET", "/messages?$limit=2147483648", "", "", 200, `"limit":50`},
		{"negative $skip", "GET", "/messages?$skip=-5", "", "", 400, "$skip must be"},
		{"overflowing $skip", "GET", "/messages?$skip=99999999999999999999", "", "", 400, "$skip must be"},
		{"$skip over int32", "GET", "/messages?$skip=4294967296", "", "", 400, "$skip must be"},
		{"largest $skip", "GET", "/messages?$skip=2147483647", "", "", 200, `"data":[]`},
		{"$sort on password", "GET", "/users?$sort[password]=1", "", "", 400, "password"},
		{"5 sort fields", "GET", "/messages?$sort[id]=1&$sort[id]=1&$sort[id]=1&$sort[id]=1&$sort[id]=1", "", "", 400, "at most 4"},
		{"4 sort fields", "GET", "/messages?$sort[userId]=1&$sort[createdAt]=-1&$sort[text]=1&$sort[id]=1", "", "", 200, `"total":`},
		{"$sort on unknown field", "GET", "/messages?$sort[nope]=1", "", "", 400, "nope"},
		{"SQL in $sort", "GET", "/messages?$sort[id%3BDROP%20TABLE%20users]=1", "", "", 400, "DROP TABLE"},
		{"SQL in userId", "GET", "/messages?userId=1%20OR%201=1", "", "", 400, "must be an id"},
		{"NUL in query", "GET", "/messages?$limit=%00", "", "", 400, "$limit must be"},
		{"bad escape", "GET", "/messages?%zz=1", "", "", 400, "malformed query"},
		{"huge id", "GET", "/messages/99999999999999999999", "", "", 404, "No record found"},
		{"negative id", "GET", "/users/-1", "", "", 404, "No record found"},
	} {
		t.Run(tc.name, func(t *testing.T) { c.hostile(t, tc, ann) })
	}

	// Everything is still there and served: the SQL-looking strings were
	// data, the rejected requests changed nothing.
	out := c.must(http.StatusOK, "GET", "/messages?$sort[createdAt]=1&$limit=50", ann, nil)
	var texts []string
	for _, d := range out["data"].([]any) {
		texts = append(texts, d.(map[string]any)["text"].(string))
	}
	if len(texts) < 2 || texts[0] != "before" || !contains(texts, sqlText) || contains(texts, "b") || contains(texts, "csrf?") {
		t.Errorf("messages after the hostile requests: %q", texts)
	}
	c.signIn("x'OR'1'='1@example.com", "pw")
	c.signIn("ännä@exämple.com", "pw-ännä")
	if u := c.must(http.StatusOK, "GET", fmt.Sprintf("/users/%d", annID), ann, nil); u["email"] != "ann@example.com" {
		t.Errorf("ann after the hostile requests: %v", u)
	}
	if p, err := c.st.FindUsers(t.Context(), store.Query{Limit: 50}); err != nil || p.Total != 3 {
		t.Errorf("%d users stored (%v), want ann and the two created", p.Total, err)
	}
}

// hostile sends tc's request with ann's token and checks the answer.
func (c *chat) hostile(t *testing.T, tc hostileCase, token string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), tc.method, c.ts.URL+tc.path, strings.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	if tc.contentType != "" {
		req.Header.Set("Content-Type", tc.contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.ts.Client().Do(req)
	if err != nil {
		// A server may answer a too-large body before reading it and close
		// the connection while the client still writes; the status is lost.
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.bodies = append(c.bodies, string(data))
	c.mu.Unlock()
	body := string(data)
	if res.StatusCode != tc.code || !strings.Contains(body, tc.says) {
		t.Fatalf("%s %s: %d %.300s; want %d saying %q", tc.method, tc.path, res.StatusCode, body, tc.code, tc.says)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: content type %q", tc.method, tc.path, ct)
	}
	if tc.code >= 400 {
		name, class := feathersNames(tc.code)
		if !strings.Contains(body, `"name":"`+name+`"`) || !strings.Contains(body, `"className":"`+class+`"`) {
			t.Fatalf("%s %s: not a feathers error: %s", tc.method, tc.path, body)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
