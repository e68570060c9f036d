package testenv

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// FaultProxy is an HTTP reverse proxy in front of a real server that can be
// made to answer with an error status instead, to test how clients handle
// a server answering 5xx (or 4xx) without having to break the server.
// Blocking queries (long polls) pass through.
type FaultProxy struct {
	// Addr is the proxy's host:port.
	Addr string

	srv       *httptest.Server
	transport *http.Transport
	status    atomic.Int32 // 0: pass through
	requests  atomic.Int64

	mu       sync.Mutex
	prefixes []string // only these paths fail, when set
}

// NewFaultProxy starts a proxy to the server at target ("host:port" or a
// URL). It is closed when the test ends.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{transport: &http.Transport{Proxy: nil}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = p.transport
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if code := int(p.status.Load()); code != 0 && p.matches(r.URL.Path) {
			http.Error(w, fmt.Sprintf("testenv fault proxy: injected %d", code), code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.Addr = strings.TrimPrefix(p.srv.URL, "http://")
	t.Cleanup(p.Close)
	return p
}

func (p *FaultProxy) matches(path string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.prefixes) == 0 {
		return true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(path, pre) {
			return true
		}
	}
	return false
}

// Fail makes the proxy answer every request (or only those whose path
// starts with one of pathPrefixes) with status code, and breaks the
// connections of requests in flight (long polls) so that clients ask again.
func (p *FaultProxy) Fail(code int, pathPrefixes ...string) {
	p.mu.Lock()
	p.prefixes = pathPrefixes
	p.mu.Unlock()
	p.status.Store(int32(code))
	p.srv.CloseClientConnections()
}

// Heal makes the proxy pass requests through again.
func (p *FaultProxy) Heal() { p.status.Store(0) }

// Requests returns how many requests the proxy has received.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Close stops the proxy.
func (p *FaultProxy) Close() {
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.transport.CloseIdleConnections()
}
