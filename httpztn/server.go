package httpztn

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ztnlabs/ztn/internal/ztnhook"
	"github.com/ztnlabs/ztn/ztnet"
)

// Listen opens a ztn listener of svc for an HTTP server ([NewServer],
// [Serve]): it negotiates "h2" and "http/1.1" by ALPN (with ztn clients as
// "ztn/1+h2" and "ztn/1+http/1.1", with plain TLS clients such as curl under
// their own names) and admits sources that have only L7 intentions, since
// the server authorizes every request. The
// listener is registered with svc's registrar (if any) until it is closed;
// ctx bounds only opening and registering it.
func Listen(ctx context.Context, svc *ztnet.Service, network, addr string) (net.Listener, error) {
	l, err := ztnhook.Of(svc).ListenL7(ctx, network, addr, "h2", "http/1.1")
	if err != nil {
		return nil, fmt.Errorf("httpztn: %w", err)
	}
	return httpListener{l}, nil
}

// httpListener hands net/http its connections wrapped in httpConn. net/http
// only serves HTTP/2 without TLS on connections that do not look like TLS
// (no ConnectionState method); the ztn connection already is the TLS, and
// the client picked h2 or http/1.1 by ALPN, so the server recognizes which
// by the HTTP/2 preface.
type httpListener struct{ net.Listener }

func (l httpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if zc, ok := c.(*ztnet.Conn); ok {
		return httpConn{Conn: zc, zc: zc}, nil
	}
	return c, err
}

type httpConn struct {
	net.Conn
	zc *ztnet.Conn
}

// NetConn returns the ztn connection (for ztnet.Peer and the like).
func (c httpConn) NetConn() net.Conn { return c.zc }

// Default timeouts of the server NewServer returns: a connection admitted
// by the listener (even one whose every request is denied) is closed when
// it sends no complete request header within defaultReadHeaderTimeout, or
// stays idle between requests for defaultIdleTimeout.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
)

// NewServer returns an http.Server that serves h over ztn connections of
// svc: every request is authorized against svc's L7 intentions before h
// sees it (see the package doc) and traced and measured by otelhttp with
// svc's providers (not at all when both are OpenTelemetry's no-op
// providers); HTTP/1.1 and HTTP/2 are both served (HTTP/2 is recognized by
// its preface, as the client chose it by ALPN); h reads the caller with
// [Peer] (Request.TLS is nil, since net/http does not see the TLS layer).
// Serve it on a listener from [Listen]:
//
//	l, err := httpztn.Listen(ctx, svc, "tcp", ":8443")
//	srv := httpztn.NewServer(svc, mux)
//	go srv.Serve(l)
//	defer srv.Shutdown(ctx)
//
// The server's ReadHeaderTimeout is 10 s and its IdleTimeout 2 min, so that
// a connection that sends nothing does not hold a goroutine forever; change
// them (or set ReadTimeout, WriteTimeout, MaxHeaderBytes) on the returned
// server before serving.
//
// A refused request gets 403 Forbidden with the reason in a text/plain body
// ("httpztn: <source> denied: <reason>"), a path that is not clean 400 Bad
// Request. Each request gets one access record on svc's logger: at Debug
// when it was allowed, at Warn when it was refused (see the package doc).
// Requests that do not arrive over a ztn connection are refused with 403, so
// serving a plain net.Listener fails closed.
func NewServer(svc *ztnet.Service, h http.Handler) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true) // the ztn connection is the encryption
	return &http.Server{
		Handler:           instrumentHandler(svc, authorize(svc, h), svc.ID().Name),
		Protocols:         &p,
		ConnContext:       withConn,
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		IdleTimeout:       defaultIdleTimeout,
	}
}

// Serve serves h on l for svc with [NewServer] until l is closed; it returns
// the error from http.Server.Serve. l must come from [Listen]: a listener
// from (*ztnet.Service).Listen offers no HTTP protocol by ALPN, so every
// client would fail its handshake ("no application protocol"). Serve
// refuses any other listener at once, closing it, with an error (and a Warn
// record on svc's logger) that names Listen; a server over another kind of
// listener is NewServer(svc, h).Serve(l).
func Serve(svc *ztnet.Service, l net.Listener, h http.Handler) error {
	if _, ok := l.(httpListener); !ok {
		err := fmt.Errorf("httpztn: Serve needs a listener from httpztn.Listen, not a %T (a (*ztnet.Service).Listen listener negotiates no HTTP protocol; for another listener use NewServer(svc, h).Serve(l))", l)
		ztnhook.Of(svc).Logger().Warn("ztn serve refused", "error", err.Error())
		_ = l.Close()
		return err
	}
	return NewServer(svc, h).Serve(l)
}

type connKey struct{}

// withConn is an http.Server ConnContext that records the ztn connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	switch v := c.(type) {
	case httpConn:
		return context.WithValue(ctx, connKey{}, v.zc)
	case *ztnet.Conn:
		return context.WithValue(ctx, connKey{}, v)
	}
	return ctx
}

func connOf(r *http.Request) *ztnet.Conn {
	zc, _ := r.Context().Value(connKey{}).(*ztnet.Conn)
	return zc
}
