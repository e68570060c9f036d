package authz

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// consulClient returns an api.Client for the agent at addr whose idle
// connections are closed when the test ends.
func consulClient(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := api.NewClient(&api.Config{Address: addr, Token: token, HttpClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newConsulAuthz returns a Consul authorizer for dest, closed when the test
// ends, with fast retries and a quiet logger unless opts say otherwise.
func newConsulAuthz(t testing.TB, client *api.Client, dest string, opts ...ConsulOption) *Consul {
	t.Helper()
	opts = append([]ConsulOption{WithConsulBackoff(20*time.Millisecond, 200*time.Millisecond), WithConsulLogger(quietLogger)}, opts...)
	c, err := NewConsul(client, dest, opts...)
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

func timeoutCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitUntil(t testing.TB, d time.Duration, cond func() error) {
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
		time.Sleep(10 * time.Millisecond)
	}
}

// writeEntry writes a service-intentions config entry given as JSON.
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

func l4req(src, dst string) Request {
	return Request{Source: sid(Selector{Name: src}), Destination: sid(Selector{Name: dst})}
}
