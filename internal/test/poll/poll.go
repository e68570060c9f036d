// Package poll is how tests wait: for a condition to hold, for an error to
// clear, and for no longer than a step may take. It imports nothing of ztn,
// so that every package's tests can use it, internal ones included:
//
//	ctx := poll.Context(t, 10*time.Second)
//	poll.Eventually(t, 5*time.Second, func() error { return src.Ready(ctx) })
//	poll.WaitFor(t, 5*time.Second, func() bool { return hits.Load() > 20 })
package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

// interval is how often a condition is checked.
const interval = 20 * time.Millisecond

// Context returns a context that ends after d or when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// WaitFor polls cond every 20 ms until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	Eventually(t, d, func() error {
		if !cond() {
			return errors.New("condition not met")
		}
		return nil
	})
}

// Eventually polls cond every 20 ms until it returns nil, failing the test
// with cond's last error after d.
func Eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(interval)
	}
}
