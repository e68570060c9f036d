// Package consulx holds the plumbing ztn's Consul clients share: errors that
// say what to fix (naming the missing ACL permission), the blocking-query
// index rules, and a jittered backoff.
package consulx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Error explains an error from Consul's API in words that say what
// to fix, and wraps the original error.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// Explain turns an error from the Consul API into an *Error; perm names
// the ACL permission the request needs ("service:read on \"api\"").
func Explain(err error, perm string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if se, ok := errors.AsType[api.StatusError](err); ok {
		body := strings.TrimSpace(se.Body)
		switch {
		case se.Code == 403 && strings.Contains(body, "ACL not found"):
			return &Error{fmt.Sprintf("Consul does not know the ACL token (403: %s)", body), err}
		case se.Code == 403:
			return &Error{fmt.Sprintf("Consul denied the request: the ACL token lacks %s (403: %s)", perm, body), err}
		default:
			return &Error{fmt.Sprintf("Consul answered %d: %s", se.Code, body), err}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{fmt.Sprintf("Consul unreachable: %v", err), err}
}

// StatusCode returns the HTTP status of a Consul API error, or 0.
func StatusCode(err error) int {
	if se, ok := errors.AsType[api.StatusError](err); ok {
		return se.Code
	}
	return 0
}

// NextIndex is the index for the next blocking query after an answer at
// got, when the previous query used prev (Consul's blocking-query rules): an
// index that goes backwards (a restarted agent, a new leader with older
// state) restarts with a non-blocking query, and an index of 0 becomes 1 so
// that the loop blocks.
func NextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got == 0:
		return 1
	default:
		return got
	}
}

// Backoff is a jittered exponential backoff from Min to Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(b.cur*2, b.Max)
	}
	// Full jitter in [cur/2, cur).
	half := b.cur / 2
	return half + rand.N(half+1)
}

// Reset starts over from Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits for d or ctx; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// MaxBlockingWait bounds a blocking query's HTTP request: Consul answers
// within wait plus up to wait/16 of jitter; anything much later is a hung
// connection.
func MaxBlockingWait(wait time.Duration) time.Duration {
	return wait + wait/16 + 15*time.Second
}
