package httpztn_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// NewServer bounds how long an admitted connection may stay silent: before
// its first request (ReadHeaderTimeout, 10 s by default) and between
// requests (IdleTimeout, 2 min by default), over HTTP/1.1 and HTTP/2.
func TestServerClosesSilentConnections(t *testing.T) {
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Permissions":[
	  {"Action":"deny","HTTP":{"PathPrefix":"/"}}]}]}]`) // every request denied
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	srv := httpztn.NewServer(api, whoami)
	if srv.ReadHeaderTimeout != 10*time.Second || srv.IdleTimeout != 2*time.Minute {
		t.Fatalf("defaults: ReadHeaderTimeout %v, IdleTimeout %v", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	const timeout = 300 * time.Millisecond
	srv.ReadHeaderTimeout, srv.IdleTimeout = timeout, timeout
	l, err := httpztn.Listen(context.Background(), api, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	defer func() { _ = srv.Close(); <-done }()

	// closedWithin reads c until the server closes it.
	closedWithin := func(name string, c net.Conn) {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if d := time.Since(start); err != nil || d > 3*time.Second {
			t.Errorf("%s: connection still open after %v (%v)", name, d, err)
		}
	}
	for _, proto := range []string{"http/1.1", "h2"} {
		c, err := ztnhook.Of(web).DialAddress(context.Background(), "api", l.Addr().String(), proto)
		if err != nil {
			t.Fatal(err)
		}
		closedWithin(proto+" silent", c)
		c.Close()
	}
	// A connection whose one request was denied, then idle.
	c, err := ztnhook.Of(web).DialAddress(context.Background(), "api", l.Addr().String(), "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if code, _ := rawRequest(t, c, "GET", "api", "/x"); code != 403 {
		t.Fatalf("status %d", code)
	}
	closedWithin("http/1.1 idle after a denied request", c)
}

// Serve refuses a listener that is not from Listen (a ztnet listener
// negotiates no HTTP protocol, so every client would fail its handshake
// with "no application protocol"), closing it, with an error and a Warn
// record that name httpztn.Listen; with one from Listen it serves.
func TestServeNeedsListenersListener(t *testing.T) {
	var logs logtest.Buffer
	m := meshtest.Dev(t)
	meshtest.Intentions(t, m, allowWebToAPI)
	api := meshtest.Service(t, m, "api", ztnet.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	web := meshtest.Service(t, m, "web")

	zl, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{zl, pl} {
		errc := make(chan error, 1)
		go func() { errc <- httpztn.Serve(api, l, whoami) }()
		select {
		case err := <-errc:
			if err == nil || !strings.Contains(err.Error(), "httpztn.Listen") {
				t.Errorf("Serve on %T: %v", l, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Serve on %T is serving", l)
		}
		if _, err := l.Accept(); err == nil {
			t.Errorf("Serve left %T open", l)
		}
	}
	recs := logs.Records(t, "ztn serve refused")
	if len(recs) != 2 || recs[0]["level"] != "WARN" || !strings.Contains(recs[0]["error"].(string), "httpztn.Listen") {
		t.Errorf("records: %v\n%s", recs, logs.String())
	}

	l, err := httpztn.Listen(context.Background(), api, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- httpztn.Serve(api, l, whoami) }()
	if code, body := do(t, newClient(t, web), "GET", "http://api/served"); code != 200 || !strings.HasSuffix(body, "/served") {
		t.Errorf("Serve on Listen's listener: %d %q", code, body)
	}
	_ = l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve returned %v after Close", err)
	}
}
