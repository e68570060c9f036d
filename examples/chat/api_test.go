package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// api calls the chat's HTTP API through the gateway, as a browser does.
type api struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newAPI(t *testing.T, base string) *api {
	return &api{t: t, base: base, hc: &http.Client{Timeout: 20 * time.Second}}
}

// call sends a request (body as JSON unless nil) and returns the status,
// the raw body and the body decoded as a JSON object, if it is one.
func (a *api) call(method, path, token string, body any) (int, string, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, string(raw), out
}

// expect is call that fails the test unless the status is want.
func (a *api) expect(want int, method, path, token string, body any) map[string]any {
	a.t.Helper()
	code, raw, out := a.call(method, path, token, body)
	if code != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, code, raw, want)
	}
	return out
}

// signUpIn creates a user and signs in, returning the token and user ID.
func (a *api) signUpIn(email, password string) (string, float64) {
	a.t.Helper()
	a.expect(http.StatusCreated, "POST", "/users", "", map[string]any{"email": email, "password": password})
	out := a.expect(http.StatusCreated, "POST", "/authentication", "", map[string]any{"strategy": "local", "email": email, "password": password})
	tok, _ := out["accessToken"].(string)
	u, _ := out["user"].(map[string]any)
	if tok == "" || u == nil {
		a.t.Fatalf("sign in: %v", out)
	}
	return tok, u["id"].(float64)
}

// messages returns the newest n messages' texts with their authors' emails,
// newest first.
func (a *api) messages(token string, n int) (texts, authors []string) {
	a.t.Helper()
	out := a.expect(http.StatusOK, "GET", "/messages?$sort[createdAt]=-1&$limit="+itoa(n), token, nil)
	data, _ := out["data"].([]any)
	for _, d := range data {
		m := d.(map[string]any)
		texts = append(texts, m["text"].(string))
		authors = append(authors, m["user"].(map[string]any)["email"].(string))
	}
	return texts, authors
}

// waitBotReply waits for a message by the bot whose text contains want.
func (a *api) waitBotReply(token, want string, within time.Duration) string {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for {
		texts, authors := a.messages(token, 20)
		for i, txt := range texts {
			if authors[i] == "bot@chat.invalid" && strings.Contains(txt, want) {
				return txt
			}
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("no bot reply containing %q within %v; newest: %q", want, within, texts)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// events opens the event stream (token "" for an anonymous one) and sends
// the data line of every event on the channel until ctx ends.
func (a *api) events(ctx context.Context, token string) (status int, lines <-chan string) {
	a.t.Helper()
	url := a.base + "/events"
	if token != "" {
		url += "?token=" + token
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	res, err := (&http.Client{}).Do(req)
	if err != nil {
		a.t.Fatalf("GET /events: %v", err)
	}
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				select {
				case ch <- strings.TrimSpace(d):
				default:
				}
			}
		}
	}()
	return res.StatusCode, ch
}

func itoa(n int) string { return strconv.Itoa(n) }
