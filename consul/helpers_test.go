package consul

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

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/logtest"
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

// consulClient is newClient without the recorder.
func consulClient(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	c, _ := newClient(t, addr, token)
	return c
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

func newLogger() (*slog.Logger, *logtest.Buffer) {
	lb := &logtest.Buffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// testConfig returns a Config for client with fast retries.
func testConfig(client *api.Client) Config {
	return Config{Client: client, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
}

// newIntentions returns an Intentions for dest, closed when the test ends,
// with a quiet logger unless opts say otherwise.
func newIntentions(t testing.TB, cfg Config, dest string, opts ...IntentionsOption) *Intentions {
	t.Helper()
	c, err := NewIntentions(cfg, dest, append([]IntentionsOption{WithLogger(quietLogger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// newCatalog returns a Catalog that is closed when the test ends, with a
// quiet logger unless opts say otherwise.
func newCatalog(t testing.TB, cfg Config, opts ...CatalogOption) *Catalog {
	t.Helper()
	c, err := NewCatalog(cfg, append([]CatalogOption{WithLogger(quietLogger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// writeEntry writes a config entry given as JSON.
func writeEntry(t testing.TB, c *api.Client, js string) {
	t.Helper()
	e, err := api.DecodeConfigEntryFromJSON([]byte(js))
	if err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	if err := retryWrite(func() error { _, _, err := c.ConfigEntries().Set(e, nil); return err }); err != nil {
		t.Fatalf("write %s: %v", js, err)
	}
}

// retryWrite retries a write Consul refuses while it migrates legacy
// intentions to config entries, just after it starts (testenv's readiness
// check does not wait for that).
func retryWrite(write func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := write()
		if err == nil || !strings.Contains(err.Error(), "read only while being upgraded") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sid returns the identity of the service s selects, in trust domain
// ztn.test and datacenter dc1 (which authorization does not look at).
func sid(s authz.Selector) ztn.ServiceID {
	return ztn.ServiceID{TrustDomain: spiffeid.RequireTrustDomainFromString("ztn.test"), Partition: s.Partition, Namespace: s.Namespace, Datacenter: "dc1", Name: s.Name}
}

func l4req(src, dst string) authz.Request {
	return authz.Request{Source: sid(authz.Selector{Name: src}), Destination: sid(authz.Selector{Name: dst})}
}

// entry builds the entry for the service name dst.
func entry(dst string, sources ...authz.SourceIntention) authz.ConfigEntry {
	return authz.ConfigEntry{Kind: authz.KindServiceIntentions, Name: dst, Sources: sources}
}

// resolveIDs resolves service and returns the instance IDs and addresses.
func resolveIDs(ctx context.Context, r discovery.Resolver, service string) (string, error) {
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
