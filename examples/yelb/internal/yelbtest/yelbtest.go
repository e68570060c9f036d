// Package yelbtest holds the checks of Yelb's API that the tests of
// package yelb and of the command share: every row of the spec's table,
// exact bodies and order, against a base URL. Test support only.
package yelbtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var client = &http.Client{Timeout: 20 * time.Second}

// Answer is an HTTP answer, read whole.
type Answer struct {
	Code   int
	Body   string
	Header http.Header
}

// Do sends method base+path; path may start with "//".
func Do(t testing.TB, method, base, path string) Answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return Answer{resp.StatusCode, string(b), resp.Header}
}

// Expect sends GET base+path and checks the status, the body and the one CORS header of an API
// answer.
func Expect(t testing.TB, base, path string, code int, body string) Answer {
	t.Helper()
	a := Do(t, http.MethodGet, base, path)
	if a.Code != code || (body != "" && a.Body != body) {
		t.Errorf("GET %s = %d %q; want %d %q", path, a.Code, a.Body, code, body)
	}
	if got := a.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "*" {
		t.Errorf("GET %s: Access-Control-Allow-Origin %q; want exactly one *", path, got)
	}
	return a
}

// VotesJSON is getvotes' answer for these counts.
func VotesJSON(outback, bucadibeppo, ihop, chipotle int) string {
	return fmt.Sprintf(`[{"name":"outback","value":%d},{"name":"bucadibeppo","value":%d},{"name":"ihop","value":%d},{"name":"chipotle","value":%d}]`,
		outback, bucadibeppo, ihop, chipotle)
}

// Conformance checks every GET row of the spec's API table against base, an
// app server (or a UI in front of one) on a fresh store, answering as
// hostname.
func Conformance(t testing.TB, base, hostname string) {
	t.Helper()
	// A fresh database: four zeros, in this order.
	a := Expect(t, base, "/api/getvotes", 200, VotesJSON(0, 0, 0, 0))
	if ct := a.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("getvotes Content-Type %q", ct)
	}
	// Page views: +1 per pageviews or getstats, nothing else counts.
	Expect(t, base, "/api/pageviews", 200, "1")
	Expect(t, base, "/api/getstats", 200, `{"hostname":"`+hostname+`","pageviews":2}`)
	Expect(t, base, "/api/pageviews", 200, "3")
	a = Expect(t, base, "/api/hostname", 200, hostname)
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("hostname Content-Type %q", ct)
	}
	// A vote answers the new count; getvotes shows it.
	Expect(t, base, "/api/ihop", 200, "1")
	Expect(t, base, "/api/getvotes", 200, VotesJSON(0, 0, 1, 0))
	Expect(t, base, "/api/ihop", 200, "2")
	Expect(t, base, "/api/chipotle", 200, "1")
	Expect(t, base, "/api/outback", 200, "1")
	Expect(t, base, "/api/bucadibeppo", 200, "1")
	Expect(t, base, "/api/getvotes", 200, VotesJSON(1, 1, 2, 1))
	Expect(t, base, "/api/pageviews", 200, "4") // votes, getvotes, hostname did not count

	// //api/... (the original page asks for it) for every endpoint.
	Expect(t, base, "//api/getvotes", 200, VotesJSON(1, 1, 2, 1))
	Expect(t, base, "//api/outback", 200, "2")
	Expect(t, base, "///api/bucadibeppo", 200, "2")
	Expect(t, base, "//api/ihop", 200, "3")
	Expect(t, base, "//api/chipotle", 200, "2")
	Expect(t, base, "//api/pageviews", 200, "5")
	Expect(t, base, "//api/getstats", 200, `{"hostname":"`+hostname+`","pageviews":6}`)
	Expect(t, base, "//api/hostname", 200, hostname)

	// An unknown /api/<x> is an error, never a vote; so are other methods.
	for _, p := range []string{"/api/pizzahut", "/api/IHOP", "/api/ihop/", "/api/ihop/1", "/api/getvotes/",
		"/api/"} {
		a := Expect(t, base, p, 404, "")
		if strings.Contains(a.Body, "[") {
			t.Errorf("GET %s: body %q", p, a.Body)
		}
	}
	if a := Do(t, http.MethodGet, base, "/apiihop"); a.Code != 404 {
		t.Errorf("GET /apiihop = %d; want 404", a.Code)
	}
	Expect(t, base, "/api/getvotes", 200, VotesJSON(2, 2, 3, 2))
	Expect(t, base, "/api/pageviews", 200, "7")
}

// Methods checks the answers to other methods than GET: 405 with the
// methods allowed, and the CORS preflight's OPTIONS. They change no count.
func Methods(t testing.TB, base string) {
	t.Helper()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		a := Do(t, m, base, "/api/ihop")
		if a.Code != http.StatusMethodNotAllowed || a.Header.Get("Allow") != "GET, OPTIONS" {
			t.Errorf("%s /api/ihop = %d (Allow %q); want 405", m, a.Code, a.Header.Get("Allow"))
		}
	}
	a := Do(t, http.MethodOptions, base, "/api/getvotes")
	if a.Code != 200 || a.Header.Get("Access-Control-Allow-Origin") != "*" || a.Body != "" {
		t.Errorf("OPTIONS /api/getvotes = %d %q %v", a.Code, a.Body, a.Header)
	}
}

// OddPaths checks that paths a mesh would normalize or refuse before the app
// server sees them (httpztn merges repeated slashes and refuses an encoded
// slash with 400; Yelb's intentions allow /api/... only, not /api) are not
// votes when they reach the app server as sent.
func OddPaths(t testing.TB, base string) {
	t.Helper()
	for _, p := range []string{"/api//ihop", "/api/ihop%2F", "/api"} {
		Expect(t, base, p, 404, "")
	}
}

// Raw sends raw, the bytes of one request as the test wrote them (no
// client library to normalize its path or headers), on a new connection to
// addr, and reads the answer (a HEAD's has no body: method says which).
func Raw(t testing.TB, addr, method, raw string) Answer {
	t.Helper()
	c := send(t, addr, raw)
	defer c.Close()
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%.200q: no answer: %v", raw, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%.200q: %v", raw, err)
	}
	return Answer{resp.StatusCode, string(b), resp.Header}
}

// Pipelined sends raw, requests one after the other as the test wrote
// them, on one new connection to addr, and returns every answer until the
// server closes the connection.
func Pipelined(t testing.TB, addr, raw string) []Answer {
	t.Helper()
	c := send(t, addr, raw)
	defer c.Close()
	br := bufio.NewReader(c)
	var answers []Answer
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return answers
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, Answer{resp.StatusCode, string(b), resp.Header})
	}
}

// send writes raw on a new connection to addr, and returns the connection.
func send(t testing.TB, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Below the 10s after which go test -fuzz calls an input a hang
	// without saying more.
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// RawRequest is the request line and headers of method target, as Raw sends
// it, with extra header lines ("Name: value").
func RawRequest(method, target string, header ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: yelb\r\nConnection: close\r\n", method, target)
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}
