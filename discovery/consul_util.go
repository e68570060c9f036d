package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// consulError explains an error from Consul's API in words that say what
// to fix, and wraps the original error.
type consulError struct {
	msg string
	err error
}

func (e *consulError) Error() string { return e.msg }
func (e *consulError) Unwrap() error { return e.err }

// explain turns an error from the Consul API into a consulError; perm names
// the ACL permission the request needs ("service:read on \"api\"").
func explain(err error, perm string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*consulError](err); ok {
		return err
	}
	if se, ok := errors.AsType[api.StatusError](err); ok {
		body := strings.TrimSpace(se.Body)
		switch {
		case se.Code == 403 && strings.Contains(body, "ACL not found"):
			return &consulError{fmt.Sprintf("Consul does not know the ACL token (403: %s)", body), err}
		case se.Code == 403:
			return &consulError{fmt.Sprintf("Consul denied the request: the ACL token lacks %s (403: %s)", perm, body), err}
		default:
			return &consulError{fmt.Sprintf("Consul answered %d: %s", se.Code, body), err}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &consulError{fmt.Sprintf("Consul unreachable: %v", err), err}
}

// statusCode returns the HTTP status of a Consul API error, or 0.
func statusCode(err error) int {
	if se, ok := errors.AsType[api.StatusError](err); ok {
		return se.Code
	}
	return 0
}

// nextIndex is the index for the next blocking query after an answer at
// got, when the previous query used prev (Consul's blocking-query rules): an
// index that goes backwards (a restarted agent, a new leader with older
// state) restarts with a non-blocking query, and an index of 0 becomes 1 so
// that the loop blocks.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got == 0:
		return 1
	default:
		return got
	}
}

// backoff is a jittered exponential backoff.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	// Full jitter in [cur/2, cur).
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits for d or ctx; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxBlockingWait bounds a blocking query's HTTP request: Consul answers
// within wait plus up to wait/16 of jitter; anything much later is a hung
// connection.
func maxBlockingWait(wait time.Duration) time.Duration {
	return wait + wait/16 + 15*time.Second
}
