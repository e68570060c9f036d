package ztnet

import (
	"context"
	"log/slog"
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

func (s *Service) recheck() {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		d := s.authorize(c.peer, c.admitL7, false)
		if d.Allowed {
			continue
		}
		c.revoked.Store(&d)
		s.m.revoked.Add(context.Background(), 1, s.m.set("side:server"))
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "ztn connection revoked",
			slog.String("source", c.peerID.String()),
			slog.String("destination", s.ID().String()),
			slog.String("reason", d.Reason()))
		_ = c.Close()
	}
}
