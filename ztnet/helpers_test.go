package ztnet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// logRecorder is a slog.Handler that keeps every record, so tests can assert
// on what the library logged (the access records and refusals).
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	echo    bool
}

type logRecord struct {
	msg   string
	level slog.Level
	attrs map[string]string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{r: r, attrs: as}
}
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	return r.handle(rec, nil)
}

func (r *logRecorder) handle(rec slog.Record, extra []slog.Attr) error {
	lr := logRecord{msg: rec.Message, level: rec.Level, attrs: map[string]string{}}
	for _, a := range extra {
		lr.attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool { lr.attrs[a.Key] = a.Value.String(); return true })
	r.mu.Lock()
	r.records = append(r.records, lr)
	r.mu.Unlock()
	if r.echo {
		fmt.Fprintln(os.Stderr, lr.msg, lr.attrs)
	}
	return nil
}

type withAttrs struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (w *withAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (w *withAttrs) WithGroup(string) slog.Handler            { return w }
func (w *withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{r: w.r, attrs: append(append([]slog.Attr{}, w.attrs...), as...)}
}
func (w *withAttrs) Handle(_ context.Context, rec slog.Record) error { return w.r.handle(rec, w.attrs) }

// find returns the records with message msg.
func (r *logRecorder) find(msg string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.records {
		if rec.msg == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitFor polls until a record with msg satisfies ok, or fails the test.
func (r *logRecorder) waitFor(t testing.TB, msg string, ok func(logRecord) bool) logRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, rec := range r.find(msg) {
			if ok(rec) {
				return rec
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q log record matched; have %v", msg, r.find(msg))
	return logRecord{}
}

type testMesh struct {
	*Dev
	logs *logRecorder
}

func newTestMesh(t testing.TB, opts ...DevOption) *testMesh {
	t.Helper()
	logs := &logRecorder{echo: os.Getenv("ZTN_TEST_LOG") != ""}
	base := []DevOption{WithDevTrustDomain("ztn.test"), WithLogger(slog.New(logs))}
	dev, err := NewDev(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	return &testMesh{Dev: dev, logs: logs}
}

func (m *testMesh) service(t testing.TB, name string, opts ...Option) *Service {
	t.Helper()
	s, err := m.Service(context.Background(), name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// intentions replaces the mesh policy with service-intentions entries given
// as Consul config-entry JSON.
func (m *testMesh) intentions(t testing.TB, js string) {
	t.Helper()
	entries, err := authz.ParseConfigEntries([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Policy().Set(entries...); err != nil {
		t.Fatal(err)
	}
}

// allow sets a policy where each "src->dst" pair is allowed.
func (m *testMesh) allow(t testing.TB, pairs ...string) {
	t.Helper()
	bySrc := map[string][]string{}
	var order []string
	for _, p := range pairs {
		src, dst, _ := strings.Cut(p, "->")
		if _, ok := bySrc[dst]; !ok {
			order = append(order, dst)
		}
		bySrc[dst] = append(bySrc[dst], src)
	}
	var b strings.Builder
	b.WriteString("[")
	for i, dst := range order {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"Kind":"service-intentions","Name":%q,"Sources":[`, dst)
		for j, src := range bySrc[dst] {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"Name":%q,"Action":"allow"}`, src)
		}
		b.WriteString("]}")
	}
	b.WriteString("]")
	m.intentions(t, b.String())
}

// serve accepts on l and runs handle for each connection until l closes.
func serve(t testing.TB, l net.Listener, handle func(net.Conn)) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
}

// echo copies everything back until EOF.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// listen opens a listener of s on a free loopback port.
func listen(t testing.TB, s *Service) net.Listener {
	t.Helper()
	l, err := s.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// roundTrip writes msg and reads as many bytes back.
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("read %q, want %q", buf, msg)
	}
}

// callOnce dials service from s, echoes msg (the server must echo) and
// closes, returning the connection's TLS state.
func callOnce(t testing.TB, s *Service, service, msg string) tls.ConnectionState {
	t.Helper()
	c, err := s.Dial(poll.Context(t, 5*time.Second), service)
	if err != nil {
		t.Fatalf("dial %s: %v", service, err)
	}
	defer c.Close()
	roundTrip(t, c, msg)
	return c.ConnectionState()
}

func (m *testMesh) mustResolve(t testing.TB, service string) []discovery.Instance {
	t.Helper()
	in, err := m.Catalog().Resolve(context.Background(), service)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func instanceAt(id, addr string) discovery.Instance { return discovery.Instance{ID: id, Address: addr} }

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// tlsServer accepts connections on a loopback port with cfg, one at a time,
// and runs after on each once its handshake succeeded; then closes it. It
// stands for a TLS server that is not a ztn listener.
func tlsServer(t *testing.T, cfg *tls.Config, after func(*tls.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(raw, cfg)
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.Handshake() == nil {
				after(tc)
			}
			_ = tc.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}
