// Package ztntest runs a ztn mesh inside a test, as net/http/httptest runs
// HTTP servers: every service in the test's process, a certificate authority
// in memory, intentions set by the test, and everything closed when the
// test ends.
//
// A [Mesh] is a [ztnet.Dev] bound to a [testing.TB]. Its methods fail the
// test on a setup error instead of returning it, so a test reads as what
// it checks:
//
//	func TestFortune(t *testing.T) {
//		mesh := ztntest.NewMesh(t)
//		mesh.SetIntentionsJSON(`{"Kind": "service-intentions", "Name": "fortune",
//			"Sources": [{"Name": "web", "Action": "allow"}]}`)
//		mesh.Serve("fortune", func(c net.Conn) { io.WriteString(c, "Trust, but verify.\n") })
//
//		c, err := mesh.Dial("web", "fortune")
//		if err != nil {
//			t.Fatal(err)
//		}
//		// read the fortune from c ...
//
//		if _, err := mesh.Dial("intruder", "fortune"); err == nil {
//			t.Error("intruder was admitted")
//		}
//	}
//
// Services are named, made on first use, and shared by name within the
// mesh: [Mesh.Service] gives one to the adapters (grpcztn, httpztn) or to
// code under test. The mesh starts with no intentions, so every connection
// is denied until the test allows it, as in a real mesh.
//
// # Logs
//
// The mesh's Services log refusals (records at Warn and above) to the
// test's log, where they explain a failed Dial. Give [ztnet.WithLogger] to
// NewMesh for another logger, such as one at Debug for the full access log.
//
// Call the methods from the test's goroutine, as testing.TB's Fatal
// requires.
package ztntest

import (
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/ztnet"
)

// A Mesh is an in-process mesh for one test. Make it with NewMesh.
type Mesh struct {
	tb   testing.TB
	dev  *ztnet.Dev
	wg   sync.WaitGroup // Serve's goroutines
	logs *tbWriter

	mu       sync.Mutex
	services map[string]*ztnet.Service
}

// NewMesh starts a mesh for the test tb and closes it, with every Service,
// listener and connection it made, when the test ends. opts configure the
// mesh as they do [ztnet.NewDev]; Service options among them (such as
// [ztnet.WithLogger]) apply to every Service of the mesh.
func NewMesh(tb testing.TB, opts ...ztnet.DevOption) *Mesh {
	tb.Helper()
	logs := &tbWriter{tb: tb}
	quiet := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{
		Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the test log has its own times
			}
			return a
		},
	}))
	dev, err := ztnet.NewDev(append([]ztnet.DevOption{ztnet.WithLogger(quiet)}, opts...)...)
	if err != nil {
		tb.Fatalf("ztntest: %v", err)
	}
	m := &Mesh{tb: tb, dev: dev, logs: logs, services: make(map[string]*ztnet.Service)}
	tb.Cleanup(m.close)
	if err := dev.Policy().Set(); err != nil { // synced, with nothing allowed
		tb.Fatalf("ztntest: %v", err)
	}
	return m
}

// close closes the mesh, waits for Serve's handlers, and stops writing to
// the test's log, which must not be written after the test.
func (m *Mesh) close() {
	if err := m.dev.Close(); err != nil {
		m.tb.Errorf("ztntest: close: %v", err)
	}
	m.wg.Wait()
	m.logs.stop()
}

// Dev returns the mesh's [ztnet.Dev]: its Policy, its certificate
// authority (to rotate the root), its catalog.
func (m *Mesh) Dev() *ztnet.Dev { return m.dev }

// Service returns the mesh's Service called name, made on first use with
// opts (which override the mesh's defaults). A later call for the same name
// returns the same Service; giving it options then fails the test.
func (m *Mesh) Service(name string, opts ...ztnet.Option) *ztnet.Service {
	m.tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.services[name]; ok {
		if len(opts) > 0 {
			m.tb.Fatalf("ztntest: service %s exists already: give its options on first use", name)
		}
		return s
	}
	s, err := m.dev.Service(m.tb.Context(), name, opts...)
	if err != nil {
		m.tb.Fatalf("ztntest: %v", err)
	}
	m.services[name] = s
	return s
}

// SetIntentions replaces the mesh's intentions with entries, at most one
// per destination.
func (m *Mesh) SetIntentions(entries ...authz.ConfigEntry) {
	m.tb.Helper()
	if err := m.dev.Policy().Set(entries...); err != nil {
		m.tb.Fatalf("ztntest: intentions: %v", err)
	}
}

// SetIntentionsJSON replaces the mesh's intentions with the
// service-intentions config entries in js, written as for Consul: one
// entry, or an array of them (see [authz.ParseConfigEntries]).
func (m *Mesh) SetIntentionsJSON(js string) {
	m.tb.Helper()
	entries, err := authz.ParseConfigEntries([]byte(js))
	if err != nil {
		m.tb.Fatalf("ztntest: intentions: %v", err)
	}
	m.SetIntentions(entries...)
}

// Serve listens as the service name on a loopback port, registered in the
// mesh's catalog so that Dial finds it, and runs handler in its own
// goroutine for every connection the listener admits, closing the
// connection when handler returns. It returns the listener's address. The
// listener and its connections close when the test ends, and the test
// waits for the handlers to return.
func (m *Mesh) Serve(name string, handler func(net.Conn)) string {
	m.tb.Helper()
	l, err := m.Service(name).Listen(m.tb.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		m.tb.Fatalf("ztntest: serve: %v", err)
	}
	m.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed with its Service, when the test ends
			}
			m.wg.Go(func() {
				defer c.Close()
				handler(c)
			})
		}
	})
	return l.Addr().String()
}

// Dial connects from the service from to the service to, as
// [ztnet.Service.Dial] does, within the test's context. The connection
// closes when the test ends, if the test has not closed it. A refusal is an
// error, not a failure of the test: Dial is what tests of intentions check.
func (m *Mesh) Dial(from, to string, opts ...ztnet.DialOption) (*ztnet.Conn, error) {
	m.tb.Helper()
	c, err := m.Service(from).Dial(m.tb.Context(), to, opts...)
	if err != nil {
		return nil, err
	}
	m.tb.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// tbWriter writes each log record to the test's output until stop.
type tbWriter struct {
	tb      testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		_, _ = w.tb.Output().Write(p)
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
