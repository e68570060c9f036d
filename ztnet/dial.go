package ztnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/ident"
)

// Dial connects to a healthy instance of service, authenticates it as that
// service, and waits until the server has authorized this service. Instances
// are tried in round-robin order; a failed instance is skipped for the next
// one while ctx allows. A refusal by the server's policy ends the Dial at
// once with a *DeniedError carrying the server's reason.
func (s *Service) Dial(ctx context.Context, service string) (*Conn, error) {
	if s.cfg.resolver == nil {
		return nil, fmt.Errorf("ztnet: dial %s: no resolver (use WithResolver)", service)
	}
	if service == "" {
		return nil, errors.New("ztnet: dial: empty service name")
	}
	ctx, span := s.tracer.Start(ctx, "ztnet.Dial", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("ztn.destination", service), attribute.String("ztn.source", s.name)))
	defer span.End()
	c, err := s.dial(ctx, service)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	span.SetAttributes(attribute.String("ztn.peer", c.peerID.String()))
	return c, nil
}

func (s *Service) dial(ctx context.Context, service string) (*Conn, error) {
	instances, err := s.cfg.resolver.Resolve(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, err)
	}
	if len(instances) == 0 {
		return nil, fmt.Errorf("ztnet: dial %s: %w", service, ErrNoInstance)
	}
	first := int(s.counter(service).Add(1) % uint64(len(instances)))
	var errs []string
	for i := range instances {
		in := instances[(first+i)%len(instances)]
		c, err := s.dialInstance(ctx, service, in)
		if err == nil {
			return c, nil
		}
		var denied *DeniedError
		if errors.As(err, &denied) {
			return nil, fmt.Errorf("ztnet: dial %s: %w", service, err)
		}
		errs = append(errs, fmt.Sprintf("%s (%s): %v", in.ID, in.Address, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 1 {
		return nil, fmt.Errorf("ztnet: dial %s: instance %s", service, errs[0])
	}
	return nil, fmt.Errorf("ztnet: dial %s: %d instances failed: %s", service, len(errs), strings.Join(errs, "; "))
}

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

// DialAddress connects to the instance of service at address (host:port),
// with the same checks as Dial. Adapters that do their own balancing, such as
// grpcztn, use it.
func (s *Service) DialAddress(ctx context.Context, service, address string) (*Conn, error) {
	c, err := s.dialInstance(ctx, service, discovery.Instance{ID: address, Address: address})
	if err != nil {
		return nil, fmt.Errorf("ztnet: dial %s at %s: %w", service, address, err)
	}
	return c, nil
}

func (s *Service) dialInstance(ctx context.Context, service string, in discovery.Instance) (*Conn, error) {
	start := time.Now()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", in.Address)
	if err != nil {
		s.m.dials.Add(ctx, 1, s.m.set("client:"+resultError))
		return nil, err
	}
	c, result, err := s.clientHandshake(ctx, raw, service, start)
	s.m.dials.Add(ctx, 1, s.m.set("client:"+result))
	s.m.handshake(ctx, "client", result, start)
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}

func (s *Service) clientHandshake(ctx context.Context, raw net.Conn, service string, start time.Time) (*Conn, string, error) {
	deadline := start.Add(s.cfg.handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tc := tls.Client(raw, s.clientTLS)
	if err := tc.Handshake(); err != nil {
		if ctx.Err() != nil {
			return nil, resultError, ctx.Err()
		}
		var rejected *RejectedError
		if errors.As(err, &rejected) {
			return nil, resultRejected, err
		}
		return nil, resultError, err
	}
	cs := tc.ConnectionState()
	peer, err := ident.ParseURI(cs.PeerCertificates[0].URIs[0]) // verified in verifyServer
	if err != nil {
		return nil, resultRejected, &RejectedError{Reason: err.Error()}
	}
	if peer.Name != service || peer.TrustDomain != s.id.TrustDomain ||
		peer.Namespace != s.id.Namespace || peer.Partition != s.id.Partition {
		return nil, resultRejected, &RejectedError{Reason: fmt.Sprintf("server presented %s, not service %q", peer, service)}
	}
	if cs.NegotiatedProtocol == alpnVerdict {
		if err := readVerdict(tc, s.ID().String(), service); err != nil {
			if ctx.Err() != nil {
				return nil, resultError, ctx.Err()
			}
			var denied *DeniedError
			if errors.As(err, &denied) {
				return nil, resultDenied, err
			}
			return nil, resultError, err
		}
	}
	_ = raw.SetDeadline(time.Time{})
	return newConn(s, tc, false, peer, authz.Decision{}, start), resultOK, nil
}
