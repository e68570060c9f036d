package ztnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/discovery"
)

// listener hands out only connections that completed a mutual TLS 1.3
// handshake with a verified, authorized peer. Handshakes run in their own
// goroutines under a deadline, so a slow or silent client never holds up
// Accept for the others.
type listener struct {
	svc *Service
	raw net.Listener

	ctx    context.Context // canceled by Close: aborts pending handshakes
	cancel context.CancelFunc

	accepted chan *Conn
	slots    chan struct{} // one per handshake in progress (WithMaxConcurrentHandshakes)
	closeMu  sync.Mutex
	closed   bool
	wg       sync.WaitGroup

	deregister func(context.Context) error

	tlsConf *tls.Config // the Service's, with this listener's application protocols
	noALPN  *tls.Config // tlsConf without ALPN, for clients of other protocols
	admitL7 bool        // withL7Enforced
}

// Listen announces on the local network address and returns a listener whose
// Accept yields only authorized ztn connections, as *Conn. If the Service has
// a Registrar, the listener is registered as an instance of the service until
// it is closed. WithProtocols adds application protocols.
//
// ctx bounds only the setup, opening the socket and registering; the
// listener serves until it or the Service is closed, whatever becomes of
// ctx.
func (s *Service) Listen(ctx context.Context, network, addr string, opts ...ListenOption) (net.Listener, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, fmt.Errorf("ztnet: listen %s: service closed: %w", s.name, net.ErrClosed)
	}
	if s.cfg.authorizer == nil {
		return nil, fmt.Errorf("ztnet: listen %s: no authorizer (use WithAuthorizer): refusing to accept without a policy", s.name)
	}
	var lc net.ListenConfig
	raw, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("ztnet: listen %s: %w", s.name, err)
	}
	var lcfg listenConfig
	for _, o := range opts {
		o.applyListen(&lcfg)
	}
	l := &listener{svc: s, raw: raw, accepted: make(chan *Conn), slots: make(chan struct{}, s.cfg.maxHandshakes), admitL7: lcfg.l7}
	l.tlsConf, l.noALPN = s.listenTLS(l, lcfg)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if s.cfg.registrar != nil {
		dereg, err := s.cfg.registrar.Register(ctx, discovery.Registration{
			Service: s.name,
			Address: raw.Addr().String(),
			Healthy: l.healthy,
		})
		if err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("ztnet: listen %s: register: %w", s.name, err)
		}
		l.deregister = dereg
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.cancel()
		_ = raw.Close()
		if l.deregister != nil {
			_ = l.deregister(context.Background())
		}
		return nil, fmt.Errorf("ztnet: listen %s: service closed: %w", s.name, net.ErrClosed)
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	l.wg.Add(1)
	go l.acceptLoop()
	s.log.Debug("ztn listening", "addr", raw.Addr().String(), "id", s.ID().String())
	return l, nil
}

// Accept waits for the next authorized connection. The returned net.Conn is
// a *Conn.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accepted:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.raw.Addr().Network(), Addr: l.raw.Addr(), Err: net.ErrClosed}
	}
}

// Addr returns the listener's network address.
func (l *listener) Addr() net.Addr { return l.raw.Addr() }

// Close stops accepting, aborts handshakes in progress and deregisters the
// instance. Connections already returned by Accept stay open.
func (l *listener) Close() error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return errClosedListener
	}
	l.closed = true
	l.closeMu.Unlock()
	// Deregister first: callers stop being sent here before Accept returns,
	// and a program that exits as soon as Accept fails still deregisters.
	var err error
	if l.deregister != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if derr := l.deregister(ctx); derr != nil {
			err = fmt.Errorf("ztnet: deregister %s: %w", l.svc.name, derr)
		}
		cancel()
	}
	l.cancel()
	err = errors.Join(err, l.raw.Close())
	l.wg.Wait()
	s := l.svc
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ztnet: close listener %s: %w", s.name, err)
	}
	return nil
}

// healthy reports whether the listener can serve: open, and its Service
// ready (a usable certificate, a policy that can decide).
func (l *listener) healthy() error {
	if l.ctx.Err() != nil {
		return errClosedListener
	}
	return l.svc.Ready()
}

func (l *listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		select {
		case l.slots <- struct{}{}: // at most maxHandshakes at once
		case <-l.ctx.Done():
			return
		}
		raw, err := l.raw.Accept()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.svc.log.Warn("ztn accept failed; retrying", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

// handshake runs the TLS handshake, authorizes the peer, sends the verdict to
// ztn clients, and hands the connection to Accept.
func (l *listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	slot := true
	release := func() {
		if slot {
			slot = false
			<-l.slots
		}
	}
	defer release()
	s := l.svc
	start := time.Now()
	_ = raw.SetDeadline(start.Add(s.cfg.handshakeTimeout))
	// Close aborts the handshake; AfterFunc costs less than the goroutine
	// HandshakeContext would start for a cancellable context.
	stop := context.AfterFunc(l.ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_, span := s.tracer.Start(l.ctx, "ztnet.Accept", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("ztn.destination", s.name), s.asDestination))
	defer span.End()
	ac := &acceptedConn{Conn: raw}
	tc := tls.Server(ac, l.tlsConf)
	if err := tc.Handshake(); err != nil {
		_ = tc.Close()
		if l.ctx.Err() != nil {
			return
		}
		if attrs, ok := protocolRefusal(err, ac); ok {
			l.refusedProtocol(span, tc, start, err, attrs)
			return
		}
		l.refused(span, tc, start, err)
		return
	}
	ac.offered = nil // only refusals need it; don't keep it for the connection's life
	cs := tc.ConnectionState()
	peer, err := ztn.ServiceIDFromURI(cs.PeerCertificates[0].URIs[0]) // verified in verifyClient
	if err != nil {
		_ = tc.Close()
		l.refused(span, tc, start, &RejectedError{Reason: err.Error()})
		return
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String(AttrSourceID, peer.String()))
	}
	// ztn clients are authorized here, so they can be told the verdict; plain
	// TLS clients were authorized in verifyClient (and counted there): this
	// re-evaluation only fetches the reason for the access record.
	ztnClient := isZTNProtocol(cs.NegotiatedProtocol)
	d := s.authorize(peer, l.admitL7, ztnClient)
	if !d.Allowed {
		denied := &DeniedError{Source: peer.String(), Destination: s.name, Reason: d.Reason()}
		if ztnClient {
			_, _ = tc.Write(encodeDeny(d.Reason()))
		}
		_ = tc.Close()
		l.refused(span, tc, start, denied)
		return
	}
	if ztnClient {
		if _, err := tc.Write(verdictAllowMsg); err != nil {
			_ = tc.Close()
			l.refused(span, tc, start, fmt.Errorf("sending the verdict: %w", err))
			return
		}
	}
	_ = raw.SetDeadline(time.Time{})
	if span.IsRecording() {
		span.SetAttributes(attribute.String("ztn.peer", peer.String()), attribute.Bool("ztn.resumed", cs.DidResume))
	}
	c := newConn(s, tc, true, peer, d, start)
	c.admitL7 = l.admitL7
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.m.handshake(l.ctx, "server", resultOK, start)
	release() // waiting for Accept is not handshaking
	select {
	case l.accepted <- c:
	case <-l.ctx.Done():
		_ = c.Close()
	}
}

// refused records a refused or failed incoming handshake: metrics, the
// accept span's status and one log record that say why.
func (l *listener) refused(span trace.Span, tc *tls.Conn, start time.Time, err error) {
	s := l.svc
	result, level := resultError, slog.LevelInfo
	var denied *DeniedError
	var rejected *RejectedError
	switch {
	case errors.As(err, &denied):
		result, level = resultDenied, slog.LevelWarn
	case errors.As(err, &rejected):
		result, level = resultRejected, slog.LevelWarn
	}
	s.m.handshake(l.ctx, "server", result, start)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(attribute.String("ztn.result", result))
	s.log.LogAttrs(l.ctx, level, "ztn connection refused",
		slog.String("remote", tc.RemoteAddr().String()),
		slog.Bool("resumed", tc.ConnectionState().DidResume),
		slog.String("destination", s.ID().String()),
		slog.String("result", result),
		slog.String("reason", err.Error()),
		slog.Duration("duration", time.Since(start)))
}

// refusedProtocol records a client refused because it speaks another
// protocol (plaintext, TLS below 1.3, an application protocol not served):
// at Warn, with what it offered, so a misconfigured peer stands out.
func (l *listener) refusedProtocol(span trace.Span, tc *tls.Conn, start time.Time, err error, offered []slog.Attr) {
	s := l.svc
	s.m.handshake(l.ctx, "server", resultProtocol, start)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(attribute.String("ztn.result", resultProtocol))
	attrs := append([]slog.Attr{
		slog.String("remote", tc.RemoteAddr().String()),
		slog.String("destination", s.ID().String()),
		slog.String("result", resultProtocol),
		slog.String("reason", err.Error()),
	}, offered...)
	s.log.LogAttrs(l.ctx, slog.LevelWarn, "ztn connection refused", append(attrs, slog.Duration("duration", time.Since(start)))...)
}
