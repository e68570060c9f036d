package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelbtest"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// Hostile requests through the whole app as `go run ./examples/yelb` runs
// it (on real Postgres and Redis when installed), sent as written, no
// client library normalizing them: path escapes, oversized headers, methods
// and paths the intentions do not allow. Each is refused with its status
// and the reason in the log (the gateway's access record, found by the
// request id of the answer, or the gateway's own line); none reaches a
// store, a well-behaved client meanwhile sees no failure, and afterwards a
// normal vote works.
func TestDevHostile(t *testing.T) {
	logger, lines := logtest.Capture(t)
	app := startDevT(t, devConfig{Hostnames: []string{"appserver-1"}, Logger: logger})
	t.Logf("stores: %s", app.Store)
	addr := strings.TrimSuffix(strings.TrimPrefix(app.URL, "http://"), "/")
	const intention = "denied: L7 intention yelb-ui → yelb-appserver: no permission matched (default deny)"
	big := func(n int) []string { return []string{"X-Big: " + strings.Repeat("a", n)} }
	base := strings.TrimSuffix(app.URL, "/")
	// A well-behaved client meanwhile, reading only.
	ld := meshtest.StartLoad(2, func(ctx context.Context) error {
		if err := get(ctx, base+"/api/getvotes"); err != nil {
			return err
		}
		return get(ctx, base+"/")
	})
	waitOK := func() {
		n := ld.OK.Load()
		poll.Eventually(t, 10*time.Second, func() error {
			if ld.OK.Load() <= n {
				return fmt.Errorf("the well-behaved client has not been answered (%d failures: %v)", ld.Failed.Load(), ld.Errors())
			}
			return nil
		})
	}
	waitOK()
	for _, tc := range []struct {
		method, target string
		header         []string
		code           int
		reason         string // in the log record of the refusal
	}{
		// Path escapes: refused by the gateway before any routing.
		{"GET", "/api/../admin", nil, 400, "dot segment"},
		{"GET", "/api/%2e%2e/admin", nil, 400, "dot segment"},
		{"GET", "/api/%2E%2E/api/ihop", nil, 400, "dot segment"},
		{"GET", "/api/./ihop", nil, 400, "dot segment"},
		{"GET", "/api/..;/admin", nil, 400, "dot segment"},
		{"GET", "/api%2Fihop", nil, 400, "encoded slash"},
		{"GET", "/api/ihop%2f", nil, 400, "encoded slash"},
		{"GET", "/api/..%5c..%5cadmin", nil, 400, "backslash"},
		{"GET", "/api/ihop%00", nil, 400, "control character"},
		{"GET", "/api/%252e%252e/admin", nil, 400, "double"},
		// Methods and paths the ui → appserver intention (GET /api/...) does
		// not allow: refused by the app server's httpztn authorization.
		{"POST", "/api/ihop", nil, 403, intention},
		{"PUT", "/api/ihop", nil, 403, intention},
		{"DELETE", "/api/ihop", nil, 403, intention},
		{"PATCH", "/api/chipotle", nil, 403, intention},
		{"OPTIONS", "/api/ihop", nil, 403, intention},
		{"TRACE", "/api/ihop", nil, 403, intention},
		{"GET", "/api", nil, 403, intention},
		{"GET", "//api", nil, 403, intention},
		// A tunnel: refused by the gateway.
		{"CONNECT", "/api/ihop", nil, 405, "the gateway opens no tunnels"},
		// Headers over the gateway's bound.
		{"GET", "/api/ihop", big(40 << 10), 431, "headers too large"},
		{"POST", "/api/ihop", big(maxHeader), 431, "headers too large"},
		{"GET", "/api/" + strings.Repeat("ihop", 10<<10), nil, 431, "headers too large"}, // a 40 KiB path
	} {
		what := tc.method + " " + tc.target
		if tc.header != nil {
			what += " with a large header"
		}
		logged := len(lines())
		a := yelbtest.Raw(t, addr, tc.method, yelbtest.RawRequest(tc.method, tc.target, tc.header...))
		if a.Code != tc.code {
			t.Errorf("%s = %d %q; want %d", what, a.Code, a.Body, tc.code)
			continue
		}
		// The answer says no more than its status (and the request id of
		// the record that says why).
		var record []string
		if m := regexp.MustCompile(`\(request id ([0-9a-f]+)\)`).FindStringSubmatch(a.Body); m != nil {
			record = []string{"ztn gateway request", "request_id=" + m[1], "status=" + strconv.Itoa(tc.code)}
		} else {
			record = []string{"yelb: gateway: request refused", "method=" + tc.method}
		}
		if strings.Contains(a.Body, "yelb-") || strings.Contains(a.Body, "spiffe") {
			t.Errorf("%s: the answer %q names the mesh's services", what, a.Body)
		}
		// The access record may follow the answer by a moment.
		poll.Eventually(t, 5*time.Second, func() error {
			if n := logtest.Count(lines()[logged:], append(record, tc.reason)...); n != 1 {
				return fmt.Errorf("%s = %d %q: %d log records with %q and %q; want 1", what, a.Code, a.Body, n, record, tc.reason)
			}
			return nil
		})
	}

	// HEAD passes the intention (GET covers it): 405 from the app server,
	// counting nothing.
	if a := yelbtest.Raw(t, addr, http.MethodHead, yelbtest.RawRequest(http.MethodHead, "/api/ihop")); a.Code != http.StatusMethodNotAllowed {
		t.Errorf("HEAD /api/ihop = %d %q; want 405", a.Code, a.Body)
	}

	// A request hidden in the body of another, on a connection kept open,
	// is a body: the answers are those of the two requests sent, and the
	// hidden one votes for nothing (checked below).
	hidden := yelbtest.RawRequest("GET", "/api/chipotle")
	raw := "GET /api/hostname HTTP/1.1\r\nHost: yelb\r\nContent-Length: " + strconv.Itoa(len(hidden)) + "\r\n\r\n" + hidden +
		yelbtest.RawRequest("GET", "/api/hostname") // the last: Connection: close
	got := yelbtest.Pipelined(t, addr, raw)
	if len(got) != 2 || got[0].Code != 200 || got[0].Body != "appserver-1" || got[1].Code != 200 || got[1].Body != "appserver-1" {
		t.Errorf("GET /api/hostname with a request as its body, then another: answers %+v; want two, 200 appserver-1", got)
	}

	// Over net/http's own bound the server answers 431 before the gateway
	// sees the request (it logs nothing), and closes the connection.
	if code := oversized(t, addr, maxHeaderBytes+8<<10); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a header of %d KiB = %d; want 431", (maxHeaderBytes+8<<10)>>10, code)
	}

	waitOK()
	ld.Stop()
	if n := ld.Failed.Load(); n != 0 || ld.OK.Load() == 0 {
		t.Errorf("a well-behaved client meanwhile: %d requests failed, %d succeeded: %v", n, ld.OK.Load(), ld.Errors())
	}

	// Nothing reached a store; the app works as before.
	yelbtest.Expect(t, base, "/api/getvotes", 200, yelbtest.VotesJSON(0, 0, 0, 0))
	yelbtest.Expect(t, base, "/api/pageviews", 200, "1")
	yelbtest.Expect(t, base, "/api/ihop", 200, "1")
	yelbtest.Expect(t, base, "//api/getvotes", 200, yelbtest.VotesJSON(0, 0, 1, 0))
	// A header just under the bound passes.
	a := yelbtest.Raw(t, addr, "GET", yelbtest.RawRequest("GET", "/api/chipotle", big(maxHeader-1<<10)...))
	if a.Code != 200 || a.Body != "1" {
		t.Errorf("a vote with a header under the bound = %d %q; want 200 1", a.Code, a.Body)
	}
}

// oversized sends a GET with a header of n bytes and returns the status of
// the answer; the server stops reading early, so the write may fail.
func oversized(t *testing.T, addr string, n int) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = io.WriteString(c, yelbtest.RawRequest("GET", "/api/ihop", "X-Big: "+strings.Repeat("a", n)))
	}()
	defer func() { c.Close(); <-wrote }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a header of %d bytes: no answer: %v", n, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
