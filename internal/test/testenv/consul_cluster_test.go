package testenv

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// A 3-server cluster elects a new leader when its leader is killed, and a
// restarted server rejoins with its state.
func TestConsulCluster(t *testing.T) {
	c := NewConsulCluster(t, 3)
	leader := c.Leader()
	if leader < 0 {
		t.Fatal("no leader")
	}
	other := c.Members[(leader+1)%3]
	if code := call(t, http.MethodPut, other.HTTPAddr()+"/v1/kv/ztn", "v", nil); code != http.StatusOK {
		t.Fatalf("kv put: %d", code)
	}
	c.Kill(leader)
	t0 := time.Now()
	next := c.WaitLeader()
	if next == leader || next < 0 {
		t.Fatalf("leader after kill: %d (was %d)", next, leader)
	}
	t.Logf("new leader %s after %s", c.Members[next].Name, time.Since(t0).Round(time.Millisecond))
	c.Start(leader)
	// The restarted server catches up with the log: its stale reads see
	// what was written before it crashed.
	err := waitFor(10*time.Second, nil, func(ctx context.Context) (bool, error) {
		var kv []struct{ Key string }
		code, body, err := doJSON(ctx, http.MethodGet, c.Members[leader].HTTPAddr()+"/v1/kv/ztn?stale", nil, &kv)
		if err != nil || code != http.StatusOK || len(kv) != 1 {
			return false, fmt.Errorf("kv on the restarted server: %d %s %v", code, body, err)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
