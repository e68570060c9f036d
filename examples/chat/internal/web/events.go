package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
)

// Event names on the stream, as feathers' real-time clients name them:
// "<service> <event>".
const (
	eventMessageCreated = "messages created"
	eventUserCreated    = "users created"
	eventConnected      = "connected"
	eventExpired        = "expired"
)

type sseEvent struct {
	name string
	data []byte
}

// stream is one authenticated event stream.
type stream struct {
	jti    string
	ch     chan sseEvent
	done   chan struct{}
	closed bool // under hub.mu
}

// hub fans new records out to the authenticated streams of this server.
type hub struct {
	mu      sync.Mutex
	streams map[*stream]struct{}
	buffer  int
}

func newHub(buffer int) *hub {
	return &hub{streams: make(map[*stream]struct{}), buffer: buffer}
}

func (h *hub) add(jti string) *stream {
	st := &stream{jti: jti, ch: make(chan sseEvent, h.buffer), done: make(chan struct{})}
	h.mu.Lock()
	h.streams[st] = struct{}{}
	h.mu.Unlock()
	return st
}

func (h *hub) removeLocked(st *stream) {
	delete(h.streams, st)
	if !st.closed {
		st.closed = true
		close(st.done)
	}
}

func (h *hub) remove(st *stream) {
	h.mu.Lock()
	h.removeLocked(st)
	h.mu.Unlock()
}

// broadcast queues ev on every stream; a stream too slow to take it is
// closed (its client reconnects and reloads), so no reader slows the rest.
func (h *hub) broadcast(ev sseEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.streams {
		select {
		case st.ch <- ev:
		default:
			h.removeLocked(st)
		}
	}
}

// logout ends the streams opened with the token whose ID is jti.
func (h *hub) logout(jti string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.streams {
		if st.jti == jti {
			h.removeLocked(st)
		}
	}
}

// count returns how many authenticated streams are open.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// Run follows the store and pushes every new user and message to the
// authenticated event streams, until ctx is done (it then returns nil).
// When following fails (the store is unreachable) it logs, waits and
// resumes where it stopped, so no record is skipped.
func (s *Server) Run(ctx context.Context) error {
	var (
		pos     store.Position
		started bool
		wait    = 100 * time.Millisecond
	)
	for {
		var err error
		if !started {
			if pos, err = s.st.Position(ctx); err == nil {
				started = true
				s.startOnce.Do(func() { close(s.following) })
			}
		}
		if started {
			err = s.st.Follow(ctx, pos, func(ev store.Event) error {
				wait = 100 * time.Millisecond
				switch {
				case ev.Message != nil:
					pos.MessageID = max(pos.MessageID, ev.Message.ID)
					s.push(eventMessageCreated, ev.Message)
				case ev.User != nil:
					pos.UserID = max(pos.UserID, ev.User.ID)
					s.push(eventUserCreated, ev.User)
				}
				return nil
			})
		}
		if ctx.Err() != nil {
			return nil
		}
		s.cfg.logger.Warn("chat web: following the store failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (s *Server) push(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.cfg.logger.Error("chat web: encode event", "event", name, "err", err)
		return
	}
	s.hub.broadcast(sseEvent{name: name, data: data})
}

// handleEvents serves the real-time stream (server-sent events). It takes
// the JWT as "Authorization: Bearer <jwt>" or, since a browser's
// EventSource cannot set headers, as ?token=<jwt>. A bad token is a 401;
// no token gives an anonymous stream that gets nothing but keep-alives,
// as an anonymous feathers connection is in no channel.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method %s is not supported by this endpoint.", r.Method))
		return
	}
	token := bearer(r)
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	var (
		c   claims
		err error
	)
	if token != "" {
		if c, err = s.verifyToken(token); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var (
		events <-chan sseEvent
		done   <-chan struct{}
		expiry <-chan time.Time
	)
	if token != "" {
		st := s.hub.add(c.ID)
		defer s.hub.remove(st)
		events, done = st.ch, st.done
		t := time.NewTimer(c.Expiry.Sub(s.cfg.now()))
		defer t.Stop()
		expiry = t.C
	}
	write := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 3000\nevent: %s\ndata: {\"authenticated\":%t}\n\n", eventConnected, token != "") {
		return
	}
	keepAlive := time.NewTicker(s.cfg.keepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-expiry:
			write("event: %s\ndata: {}\n\n", eventExpired)
			return
		case <-keepAlive.C:
			if !write(": keep-alive\n\n") {
				return
			}
		case ev := <-events:
			if !write("event: %s\ndata: %s\n\n", ev.name, ev.data) {
				return
			}
		}
	}
}
