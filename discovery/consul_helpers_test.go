package discovery

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/logtest"

	"github.com/hashicorp/consul/api"
)

// recorder counts the requests an api.Client makes and keeps the bodies of
// service registrations.
type recorder struct {
	base     *http.Transport
	requests atomic.Int64
	mu       sync.Mutex
	paths    []string
	regs     []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.requests.Add(1)
	r.mu.Lock()
	r.paths = append(r.paths, req.Method+" "+req.URL.Path)
	if strings.HasSuffix(req.URL.Path, "/agent/service/register") && req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.regs = append(r.regs, string(b))
	}
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func (r *recorder) registrations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.regs...)
}

// newClient returns an api.Client for the agent at addr whose requests are
// counted; its idle connections are closed when the test ends.
func newClient(t testing.TB, addr, token string) (*api.Client, *recorder) {
	t.Helper()
	rec := &recorder{base: &http.Transport{Proxy: nil}}
	t.Cleanup(rec.base.CloseIdleConnections)
	c, err := api.NewClient(&api.Config{Address: addr, Token: token, HttpClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func newLogger() (*slog.Logger, *logtest.Buffer) {
	lb := &logtest.Buffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// newConsul returns a Consul that is closed when the test ends, with fast
// retries.
func newConsul(t testing.TB, client *api.Client, opts ...ConsulOption) *Consul {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts = append([]ConsulOption{WithConsulBackoff(20*time.Millisecond, 200*time.Millisecond), WithConsulLogger(quiet)}, opts...)
	c := NewConsul(client, opts...)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20ms until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resolveIDs resolves service and returns the instance IDs and addresses.
func resolveIDs(ctx context.Context, r Resolver, service string) (string, error) {
	in, err := r.Resolve(ctx, service)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, x := range in {
		parts = append(parts, fmt.Sprintf("%s@%s", x.ID, x.Address))
	}
	return strings.Join(parts, ","), nil
}
