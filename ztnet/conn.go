package ztnet

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
)

// Conn is an authenticated, authorized connection to or from a peer service.
// It is a net.Conn over TLS 1.3; reads and writes are counted for the access
// record logged when it closes.
type Conn struct {
	tc       *tls.Conn
	svc      *Service
	server   bool // accepted by a listener (else dialed)
	peer     ztn.ServiceID
	peerID   spiffeid.ID
	decision authz.Decision // server side: why the peer was admitted
	admitL7  bool           // server side: accepted by a withL7Enforced listener
	start    time.Time
	rx, tx   atomic.Int64

	closeOnce sync.Once
	closeErr  error
	revoked   atomic.Pointer[authz.Decision]
}

var _ net.Conn = (*Conn)(nil)

func newConn(s *Service, tc *tls.Conn, server bool, peer ztn.ServiceID, d authz.Decision, start time.Time) *Conn {
	id, _ := peer.SPIFFEID()
	c := &Conn{tc: tc, svc: s, server: server, peer: peer, peerID: id, decision: d, start: start}
	s.m.active.Add(context.Background(), 1, s.m.set("side:"+c.side()))
	return c
}

func (c *Conn) side() string {
	if c.server {
		return "server"
	}
	return "client"
}

// Read reads application data from the peer.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.tc.Read(b)
	c.rx.Add(int64(n))
	if err != nil {
		if rerr := c.revokedError("read"); rerr != nil {
			return n, rerr
		}
	}
	return n, err
}

// Write writes application data to the peer.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.tc.Write(b)
	c.tx.Add(int64(n))
	if err != nil {
		if rerr := c.revokedError("write"); rerr != nil {
			return n, rerr
		}
	}
	return n, err
}

// Close closes the connection and logs its access record (at Debug). It is
// safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.tc.Close()
		s := c.svc
		if c.server {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}
		s.m.active.Add(context.Background(), -1, s.m.set("side:"+c.side()))
		c.logAccess()
	})
	return c.closeErr
}

// logAccess writes the connection's access record, at Debug: a library
// is quiet by default, and a logger at Debug gives the full access log.
func (c *Conn) logAccess() {
	ctx := context.Background()
	if !c.svc.log.Enabled(ctx, slog.LevelDebug) {
		return // nothing to build the record for
	}
	src, dst := c.peerID.String(), c.svc.ID().String()
	if !c.server {
		src, dst = dst, src
	}
	attrs := []slog.Attr{
		slog.String("side", c.side()),
		slog.String("source", src),
		slog.String("destination", dst),
		slog.String("decision", "allow"),
		slog.String("reason", c.reason()),
		slog.Int64("bytes_in", c.rx.Load()),
		slog.Int64("bytes_out", c.tx.Load()),
		slog.Duration("duration", time.Since(c.start)),
		slog.String("remote", c.tc.RemoteAddr().String()),
		slog.Bool("resumed", c.tc.ConnectionState().DidResume),
	}
	if d := c.revoked.Load(); d != nil {
		attrs = append(attrs, slog.String("closed_by", "policy change: "+d.Reason()))
	}
	c.svc.log.LogAttrs(ctx, slog.LevelDebug, "ztn connection", attrs...)
}

func (c *Conn) reason() string {
	if c.server {
		return c.decision.Reason()
	}
	return "admitted by " + c.peerID.String()
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.tc.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }

// CloseWrite shuts down the writing side (TLS close_notify, then TCP FIN).
func (c *Conn) CloseWrite() error { return c.tc.CloseWrite() }

// ConnectionState returns the TLS state of the connection.
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// Peer returns the identity of the peer of a connection made by ztnet (by
// Dial, or accepted by a listener of Listen), or of anything that wraps one
// and has a NetConn() net.Conn method, such as a *tls.Conn; ok is false for
// any other connection.
func Peer(c net.Conn) (id ztn.ServiceID, ok bool) {
	for c != nil {
		switch v := c.(type) {
		case *Conn:
			return v.peer, true
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return ztn.ServiceID{}, false
		}
	}
	return ztn.ServiceID{}, false
}
