package httpztn_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/meshtest"
)

// The Transport follows the resolver request by request: once an instance
// is deregistered (its listener closed), no request goes to it, not even
// one with a body that could not be retried elsewhere; an instance that
// appears gets requests at once.
func TestTransportFollowsResolver(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	var n1, n2 atomic.Int64
	count := func(n *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			n.Add(1)
		})
	}
	serveHTTP(t, api, count(&n1))
	l, err := httpztn.Listen(context.Background(), api, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpztn.NewServer(api, count(&n2))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	defer func() { _ = srv.Close(); <-done }()

	c := newClient(t, web)
	post := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://api/", strings.NewReader("body"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 10 {
		if code := post(); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if n1.Load() != 5 || n2.Load() != 5 {
		t.Fatalf("instances served %d and %d of 10", n1.Load(), n2.Load())
	}

	_ = srv.Close() // deregisters the second instance, then closes its connections
	<-done
	for range 10 {
		if code := post(); code != 200 {
			t.Fatalf("after the second instance left: status %d", code)
		}
	}
	if n1.Load() != 15 {
		t.Fatalf("the remaining instance served %d of the last 10", n1.Load()-5)
	}

	var n3 atomic.Int64
	serveHTTP(t, api, count(&n3))
	for range 4 {
		post()
	}
	if n3.Load() != 2 {
		t.Fatalf("the new instance served %d of 4", n3.Load())
	}
}
