package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// curl runs curl against the chat and returns the HTTP status it printed
// (-w) and the body; args are curl's, after the common ones.
func curl(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// -g: no globbing of the brackets of $sort[createdAt].
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "-g", "--max-time", "15", "-w", "\n%{http_code}"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	i := strings.LastIndex(string(out), "\n")
	code, err := strconv.Atoi(string(out[i+1:]))
	if err != nil {
		t.Fatalf("curl %q: no status in %q", args, out)
	}
	return code, strings.TrimSpace(string(out[:max(i, 0)]))
}

// TestCurl: curl, a client nobody here wrote, uses the chat through the
// gateway of `go run ./examples/chat`: signs up and in, posts, lists, reads
// the event stream (curl -N) and gets the message another post sends;
// a form post, as curl makes by default, is refused with a 415 saying to
// send JSON.
func TestCurl(t *testing.T) {
	bin := testenv.Program(t, "curl", "curl")
	base, _ := startDev(t)
	const js = "Content-Type: application/json"

	code, body := curl(t, bin, "-H", js, "-d", `{"email":"curl@example.com","password":"pw-curl-123"}`, base+"/users")
	if code != 201 || !strings.Contains(body, `"email":"curl@example.com"`) || strings.Contains(body, "pw-curl") {
		t.Fatalf("sign up: %d %s", code, body)
	}
	code, body = curl(t, bin, "-H", js, "-d", `{"strategy":"local","email":"curl@example.com","password":"pw-curl-123"}`, base+"/authentication")
	var auth struct{ AccessToken string }
	if code != 201 || json.Unmarshal([]byte(body), &auth) != nil || auth.AccessToken == "" {
		t.Fatalf("sign in: %d %s", code, body)
	}
	bearer := "Authorization: Bearer " + auth.AccessToken
	if code, body = curl(t, bin, "-H", js, "-H", bearer, "-d", `{"text":"hello from curl"}`, base+"/messages"); code != 201 {
		t.Fatalf("post: %d %s", code, body)
	}
	code, body = curl(t, bin, "-H", bearer, base+"/messages?$sort[createdAt]=-1&$limit=5")
	var page struct {
		Total, Limit int
		Data         []struct{ Text string }
	}
	if code != 200 || json.Unmarshal([]byte(body), &page) != nil || page.Limit != 5 || len(page.Data) == 0 || page.Data[0].Text != "hello from curl" {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body = curl(t, bin, "-H", bearer, "-d", "text=form", base+"/messages"); code != 415 || !strings.Contains(body, "application/json") {
		t.Fatalf("a form post: %d %s, want 415 saying to send JSON", code, body)
	}
	if code, _ = curl(t, bin, base+"/messages"); code != 401 {
		t.Fatalf("list without a token: %d, want 401", code)
	}

	// The event stream, read by curl -N as it arrives.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sse := exec.CommandContext(ctx, bin, "-sS", "-N", "-H", bearer, base+"/events")
	stdout, err := sse.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sse.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = sse.Wait() }()
	lines := bufio.NewScanner(stdout)
	waitFor := func(want string) string {
		t.Helper()
		for lines.Scan() {
			if strings.Contains(lines.Text(), want) {
				return lines.Text()
			}
		}
		t.Fatalf("curl -N /events ended (%v) before a line with %q", lines.Err(), want)
		return ""
	}
	waitFor(`"authenticated":true`)
	if code, body = curl(t, bin, "-H", js, "-H", bearer, "-d", `{"text":"pushed to curl"}`, base+"/messages"); code != 201 {
		t.Fatalf("post while streaming: %d %s", code, body)
	}
	waitFor("event: messages created")
	if data := waitFor("data: "); !strings.Contains(data, `"text":"pushed to curl"`) || !strings.Contains(data, `"email":"curl@example.com"`) {
		t.Fatalf("the pushed event: %s", data)
	}
}
