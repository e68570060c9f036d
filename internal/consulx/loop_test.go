package consulx

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// The loop blocks on the last answer's index, retries without blocking
// after an error, and starts over when the index goes backwards. (The
// answers are scripted: the real Consul behind authz's and discovery's
// loops is tested there.)
func TestLoopIndexes(t *testing.T) {
	answers := []struct {
		index uint64
		err   error
	}{{5, nil}, {7, nil}, {0, errors.New("agent down")}, {9, nil}, {3, nil}, {4, nil}}
	var sent []uint64
	var fails, oks int
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := Loop{Wait: time.Minute, Every: time.Microsecond, Burst: 10, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	l.Run(ctx, func(q *api.QueryOptions) (*api.QueryMeta, error) {
		if q.WaitTime != time.Minute {
			t.Errorf("wait time %v, want 1m", q.WaitTime)
		}
		if _, ok := q.Context().Deadline(); !ok {
			t.Error("request context without a deadline")
		}
		sent = append(sent, q.WaitIndex)
		a := answers[len(sent)-1]
		if len(sent) == len(answers) {
			cancel()
		}
		if a.err != nil {
			return nil, a.err
		}
		return &api.QueryMeta{LastIndex: a.index}, nil
	}, func(error) { fails++ }, func(*api.QueryMeta) { oks++ })
	want := []uint64{0, 5, 7, 0, 9, 0}
	if len(sent) != len(want) {
		t.Fatalf("sent indexes %v, want %v", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Fatalf("sent indexes %v, want %v", sent, want)
		}
	}
	if fails != 1 || oks != 4 {
		t.Errorf("%d failures and %d answers reported, want 1 and 4 (the last, after cancel, is dropped)", fails, oks)
	}
}
