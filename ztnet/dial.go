package ztnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
)

// Dial connects to a healthy instance of service, authenticates it as that
// service, and waits until the server has authorized this service. Instances
// are tried in round-robin order, or in the order the resolver picks if it
// is a [discovery.Picker] (which is told how each attempt went, to eject
// failing instances); a failed instance is skipped for the next one while
// ctx allows. A refusal by the server's policy ends the Dial at once with a
// [*DeniedError] carrying the server's reason; a server that is not the
// service asked for is a [*RejectedError]; no instance at all is
// [ErrNoInstance]; a closed Service, [net.ErrClosed]. Errors read
// "ztnet: dial <service>: ...". WithProtocols asks for an application
// protocol, WithServerTrustDomain for a server of a federated trust domain.
//
// ctx bounds the whole Dial: finding instances, connecting, the handshake
// and the verdict. The connection Dial returns no longer depends on ctx.
func (s *Service) Dial(ctx context.Context, service string, opts ...DialOption) (*Conn, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, fmt.Errorf("ztnet: dial %s: service %s closed: %w", service, s.name, net.ErrClosed)
	}
	if s.cfg.resolver == nil {
		return nil, fmt.Errorf("ztnet: dial %s: no resolver (use WithResolver)", service)
	}
	if service == "" {
		return nil, errors.New("ztnet: dial: empty service name")
	}
	if _, err := s.certificate(); err != nil { // fail before the network, and say it is ours
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, err)
	}
	cc := s.dialTLS(opts)
	if cc.serverTD.IsZero() {
		cc.serverTD = s.cfg.remoteServices[service]
	}
	if err := s.checkServerTrustDomain(cc.serverTD); err != nil {
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, err)
	}
	ctx, span := s.tracer.Start(ctx, "ztnet.Dial", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("ztn.destination", service), attribute.String("ztn.source", s.name),
			s.asSource))
	defer span.End()
	c, err := s.dial(ctx, service, cc)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	if span.IsRecording() {
		peer := c.peerID.String()
		span.SetAttributes(attribute.String("ztn.peer", peer), attribute.String(AttrDestinationID, peer))
	}
	return c, nil
}

func (s *Service) dial(ctx context.Context, service string, cc clientConfigs) (*Conn, error) {
	instances, err := s.cfg.resolver.Resolve(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, err)
	}
	picker, _ := s.cfg.resolver.(discovery.Picker)
	if picker != nil {
		instances = picker.Pick(service, instances)
	}
	if len(instances) == 0 {
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, ErrNoInstance)
	}
	first := 0
	if picker == nil {
		first = int(s.counter(service).Add(1) % uint64(len(instances)))
	}
	var errs []error
	for i := range instances {
		in := instances[(first+i)%len(instances)]
		c, err := s.dialInstance(ctx, service, in, cc)
		var denied *DeniedError
		isDenied := errors.As(err, &denied)
		if picker != nil {
			if isDenied {
				picker.Report(service, in, nil) // the instance answered
			} else {
				picker.Report(service, in, err)
			}
		}
		if err == nil {
			return c, nil
		}
		if isDenied {
			return nil, fmt.Errorf("ztnet: dial %s: %w", service, err)
		}
		errs = append(errs, &attemptError{instance: in, err: err})
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, errs[0])
	}
	return nil, fmt.Errorf("ztnet: dial %s: %d instances failed: %w", service, len(errs), joinedErrors(errs))
}

// attemptError is why one instance could not be reached; it wraps the
// attempt's error so that errors.As and errors.Is see through Dial.
type attemptError struct {
	instance discovery.Instance
	err      error
}

func (e *attemptError) Error() string {
	return fmt.Sprintf("instance %s (%s): %v", e.instance.ID, e.instance.Address, e.err)
}

func (e *attemptError) Unwrap() error { return e.err }

// joinedErrors is errors.Join with "; " between the errors, on one line.
type joinedErrors []error

func (e joinedErrors) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e joinedErrors) Unwrap() []error { return e }

func (s *Service) counter(service string) *atomic.Uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.rr[service]
	if c == nil {
		c = new(atomic.Uint64)
		s.rr[service] = c
	}
	return c
}

// dialAddress connects to the instance of service at address (host:port),
// with the same checks as Dial. Adapters that do their own balancing, such as
// grpcztn, use it through internal/ztnhook.
func (s *Service) dialAddress(ctx context.Context, service, address string, opts ...DialOption) (*Conn, error) {
	if err := s.made(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, fmt.Errorf("ztnet: dial %s at %s: service %s closed: %w", service, address, s.name, net.ErrClosed)
	}
	if _, err := s.certificate(); err != nil {
		return nil, fmt.Errorf("ztnet: dial %s at %s: %w", service, address, err)
	}
	cc := s.dialTLS(opts)
	if cc.serverTD.IsZero() {
		cc.serverTD = s.cfg.remoteServices[service]
	}
	if err := s.checkServerTrustDomain(cc.serverTD); err != nil {
		return nil, fmt.Errorf("ztnet: dial %s at %s: %w", service, address, err)
	}
	c, err := s.dialInstance(ctx, service, discovery.Instance{ID: address, Address: address}, cc)
	if err != nil {
		return nil, fmt.Errorf("ztnet: dial %s at %s: %w", service, address, err)
	}
	return c, nil
}

func (s *Service) dialInstance(ctx context.Context, service string, in discovery.Instance, cc clientConfigs) (*Conn, error) {
	start := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", in.Address)
	if err != nil {
		s.m.dials.Add(ctx, 1, s.m.set("client:"+resultError))
		return nil, err
	}
	cfg := cc.full
	key := raw.RemoteAddr().String() // crypto/tls's session cache key
	offered := cc.resume != nil && hasSession(cc.resume.ClientSessionCache, key)
	if offered {
		cfg = cc.resume
	}
	c, result, resumed, err := s.clientHandshake(ctx, raw, service, cc.serverTD, start, cfg)
	how := resumptionFull
	switch {
	case resumed:
		how = resumptionResumed
	case offered: // the server did not take it (with WithPostQuantumResumption, the handshake went on as a full one)
		how = resumptionFallback
	}
	var denied *DeniedError
	if err != nil && offered && (resumed || errors.Is(err, errNotResumed)) &&
		!errors.As(err, &denied) && ctx.Err() == nil {
		// The server did not take the session (it restarted, or its ticket
		// key rotated out), or it was resumed with certificates that were
		// valid when it began and have expired or lost their root since.
		// Forget it and do a full handshake, once.
		_ = raw.Close()
		cc.full.ClientSessionCache.Put(key, nil)
		how = resumptionFallback
		if raw, err = d.DialContext(ctx, "tcp", in.Address); err == nil {
			c, result, _, err = s.clientHandshake(ctx, raw, service, cc.serverTD, start, cc.full)
		}
	}
	s.m.dials.Add(ctx, 1, s.m.set("client:"+result))
	s.m.handshake(ctx, "client", result, start)
	if err != nil {
		if raw != nil {
			_ = raw.Close()
		}
		s.logDialFailure(ctx, service, in, result, err, start)
		return nil, err
	}
	s.m.resumption.Add(ctx, 1, s.m.set("resumption:"+how))
	return c, nil
}

// logDialFailure writes one record for a failed attempt on an instance: at
// Warn when the server refused us (denied) or we refused the server
// (rejected), at Debug for other failures, which Dial may still overcome on
// another instance and otherwise returns.
func (s *Service) logDialFailure(ctx context.Context, service string, in discovery.Instance, result string, err error, start time.Time) {
	level := slog.LevelDebug
	msg := "ztn dial attempt failed"
	if result == resultDenied || result == resultRejected {
		level, msg = slog.LevelWarn, "ztn dial refused"
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.log.LogAttrs(ctx, level, msg,
		slog.String("source", s.ID().String()),
		slog.String("destination", service),
		slog.String("instance", in.Address),
		slog.String("result", result),
		slog.String("reason", err.Error()),
		slog.Duration("duration", time.Since(start)))
}

// clientHandshake runs the TLS handshake and reads the verdict. resumed
// reports whether the server accepted a session resumption, even on failure.
// The server must be service in serverTD (zero: the local trust domain).
func (s *Service) clientHandshake(ctx context.Context, raw net.Conn, service string, serverTD spiffeid.TrustDomain, start time.Time, cfg *tls.Config) (c *Conn, result string, resumed bool, err error) {
	deadline := start.Add(s.cfg.handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		resumed = tc.ConnectionState().DidResume
		if err := ctxErr(ctx); err != nil {
			return nil, resultError, resumed, err
		}
		var rejected *RejectedError
		if errors.As(err, &rejected) {
			return nil, resultRejected, resumed, err
		}
		return nil, resultError, resumed, err
	}
	cs := tc.ConnectionState()
	resumed = cs.DidResume
	peer, err := ztn.ServiceIDFromURI(cs.PeerCertificates[0].URIs[0]) // verified in verifyServer
	if err != nil {
		return nil, resultRejected, resumed, &RejectedError{Reason: err.Error()}
	}
	if serverTD.IsZero() {
		serverTD = s.id.TrustDomain
	}
	if peer.TrustDomain != serverTD {
		// A federated CA must not stand in for a local service, nor the
		// reverse: the caller names the trust domain it expects.
		return nil, resultRejected, resumed, &RejectedError{Reason: fmt.Sprintf(
			"server presented %s, in trust domain %q, not %q (a federated server is dialed with WithServerTrustDomain)",
			peer, peer.TrustDomain.Name(), serverTD.Name())}
	}
	if peer.Name != service || peer.Namespace != s.id.Namespace || peer.Partition != s.id.Partition {
		return nil, resultRejected, resumed, &RejectedError{Reason: fmt.Sprintf("server presented %s, not service %q", peer, service)}
	}
	if wantsAppProtocol(cfg) && appProtocol(cs.NegotiatedProtocol) == "" {
		return nil, resultError, resumed, fmt.Errorf("server %s agreed on no application protocol (asked for %s)",
			peer, strings.Join(cfg.NextProtos, ", "))
	}
	if isZTNProtocol(cs.NegotiatedProtocol) {
		if err := readVerdict(tc, s.ID().String(), service); err != nil {
			if err := ctxErr(ctx); err != nil {
				return nil, resultError, resumed, err
			}
			var denied *DeniedError
			if errors.As(err, &denied) {
				return nil, resultDenied, resumed, err
			}
			return nil, resultError, resumed, err
		}
	}
	_ = raw.SetDeadline(time.Time{})
	return newConn(s, tc, false, peer, authz.Decision{}, start), resultOK, resumed, nil
}

// ctxErr returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline has passed: a handshake cut by the connection deadline set from
// ctx can fail a moment before ctx itself is marked done.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// wantsAppProtocol reports whether a client configuration asks for an
// application protocol (WithProtocols): its NextProtos are then all
// "ztn/1+<protocol>", never plain "ztn/1".
func wantsAppProtocol(cfg *tls.Config) bool {
	return len(cfg.NextProtos) > 0 && cfg.NextProtos[0] != alpnVerdict
}
