package ztnet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/ztnlabs/ztn/authz"
)

// watchPolicy re-checks accepted connections each time the policy changes and
// closes those whose pair is now denied.
func (s *Service) watchPolicy(w interface{ Changed() <-chan struct{} }) {
	defer s.wg.Done()
	for {
		ch := w.Changed()
		select {
		case <-ch:
		case <-s.done:
			return
		}
		s.recheck()
	}
}

// recheck re-authorizes every accepted connection and revokes those now
// denied, in two steps so that many revocations cost little time: first
// each is cut (marked revoked, and its socket's deadline set in the past,
// which makes every Read and Write on it fail at once, with no write to the
// network); then they are closed (TLS close_notify, then the socket) by a
// few goroutines in parallel. One Warn record per source and reason says
// how many were revoked; each connection's access record (Debug) says it was.
func (s *Service) recheck() {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	type key struct{ source, reason string }
	counts := map[key]int{}
	var denied []*Conn
	for _, c := range conns {
		d := s.authorize(c.peer, c.admitL7, false)
		if d.Allowed {
			continue
		}
		c.cut(d)
		denied = append(denied, c)
		counts[key{c.peerID.String(), d.Reason()}]++
	}
	if len(denied) == 0 {
		return
	}
	ctx := context.Background()
	s.m.revoked.Add(ctx, int64(len(denied)), s.m.set("side:server"))
	for k, n := range counts {
		s.log.LogAttrs(ctx, slog.LevelWarn, "ztn connection revoked",
			slog.String("source", k.source),
			slog.String("destination", s.ID().String()),
			slog.String("reason", k.reason),
			slog.Int("connections", n))
	}
	closeAll(denied)
}

// closeAll closes conns with one goroutine per CPU.
func closeAll(conns []*Conn) {
	workers := min(runtime.GOMAXPROCS(0), len(conns))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(conns); i += workers {
				_ = conns[i].Close()
			}
		})
	}
	wg.Wait()
}

// cut revokes c for decision d: Read and Write fail from now on with an
// error saying so (errors.Is net.ErrClosed), before Close has run.
func (c *Conn) cut(d authz.Decision) {
	c.revoked.Store(&d)
	_ = c.tc.NetConn().SetDeadline(time.Unix(1, 0))
}

// revokedError returns, for a connection cut by a policy change, the error
// of the failed operation op; nil for any other connection.
func (c *Conn) revokedError(op string) error {
	d := c.revoked.Load()
	if d == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
		Err: fmt.Errorf("ztnet: connection revoked by a policy change: %s: %w", d.Reason(), net.ErrClosed)}
}
