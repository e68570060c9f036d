package ztnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/discovery"
)

// Service is one named service's view of the mesh: its identity, the trust
// bundle, the policy that admits callers, and how it finds other services.
// Listen and Dial on a Service give zero-trust connections. A Service is safe
// for concurrent use; Close it when done.
type Service struct {
	name   string
	id     ztn.ServiceID
	sid    spiffeid.ID                     // id as a SPIFFE ID
	peers  map[spiffeid.TrustDomain]string // federated trust domain → peer name (federation.go)
	cfg    config
	log    *slog.Logger
	tracer trace.Tracer
	// asSource and asDestination are the Service's SPIFFE ID as the span
	// attributes AttrSourceID and AttrDestinationID (trace.go).
	asSource, asDestination attribute.KeyValue
	m                       *metrics

	serverTLS *tls.Config
	clientTLS *tls.Config   // full handshakes; stores session tickets unless WithoutResumption
	resumeTLS *tls.Config   // resumption attempts (resume.go); nil WithoutResumption
	tickets   *ticketSealer // seals the session tickets listeners issue
	dialConfs sync.Map      // application protocols → clientConfigs (alpn.go)
	inVerify  *verifier     // verifies clients (needs ClientAuth EKU)
	outVerify *verifier     // verifies servers (needs ServerAuth EKU)

	cert atomic.Pointer[ownCert]

	mu        sync.Mutex
	closed    bool
	listeners map[*listener]struct{}
	conns     map[*Conn]struct{} // accepted conns, re-checked on policy change
	rr        map[string]*atomic.Uint64

	done chan struct{}
	wg   sync.WaitGroup
}

type ownCert struct {
	svid *x509svid.SVID
	cert *tls.Certificate
}

// ID returns the service's own identity (its name is ID().Name, its SPIFFE
// ID ID().String()).
func (s *Service) ID() ztn.ServiceID { return s.id }

// New returns the Service called name. WithSource is required; Listen also
// needs WithAuthorizer and Dial needs WithResolver. The Source's SVID must
// name this service.
//
// New makes no network request; ctx bounds only New itself (an expired ctx
// fails it), never the Service's life, which lasts until Close.
func New(ctx context.Context, name string, opts ...Option) (*Service, error) {
	cfg := config{
		handshakeTimeout: defaultHandshakeTimeout,
		maxHandshakes:    defaultMaxHandshakes,
		resumption:       true,
	}
	for _, o := range opts {
		o.applyService(&cfg)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ztnet: new %s: %w", name, err)
	}
	if err := cfg.checkNils(); err != nil {
		return nil, fmt.Errorf("ztnet: new %s: %w", name, err)
	}
	if cfg.source == nil {
		return nil, fmt.Errorf("ztnet: new %s: no identity source (use WithSource)", name)
	}
	svid, err := cfg.source.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("ztnet: new %s: %w", name, err)
	}
	id, err := ztn.ServiceIDFromSPIFFEID(svid.ID)
	if err != nil {
		return nil, fmt.Errorf("ztnet: new %s: own identity: %w", name, err)
	}
	if id.Name != name {
		return nil, fmt.Errorf("ztnet: new %s: the source's identity %s names service %q", name, svid.ID, id.Name)
	}
	peers, err := federatedPeers(id.TrustDomain, cfg.federated, cfg.peerNames)
	if err != nil {
		return nil, fmt.Errorf("ztnet: new %s: %w", name, err)
	}
	for svc, td := range cfg.remoteServices {
		if _, ok := peers[td]; !ok {
			return nil, fmt.Errorf("ztnet: new %s: WithRemoteService(%q, %q): the trust domain is not federated (WithFederatedPeer)", name, svc, td.Name())
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.meterProvider == nil {
		cfg.meterProvider = otel.GetMeterProvider()
	}
	if cfg.tracerProvider == nil {
		cfg.tracerProvider = otel.GetTracerProvider()
	}
	if cfg.registrar == nil {
		if r, ok := cfg.resolver.(discovery.Registrar); ok {
			cfg.registrar = r
		}
	}
	m, err := newMetrics(cfg.meterProvider, name)
	if err != nil {
		return nil, fmt.Errorf("ztnet: new %s: metrics: %w", name, err)
	}
	s := &Service{
		name:          name,
		id:            id,
		sid:           svid.ID,
		peers:         peers,
		cfg:           cfg,
		log:           cfg.logger.With("service", name),
		tracer:        cfg.tracerProvider.Tracer(instrumentationName),
		asSource:      attribute.String(AttrSourceID, id.String()),
		asDestination: attribute.String(AttrDestinationID, id.String()),
		m:             m,
		inVerify:      newVerifier(id.TrustDomain, cfg.federated, cfg.source, x509.ExtKeyUsageClientAuth),
		outVerify:     newVerifier(id.TrustDomain, cfg.federated, cfg.source, x509.ExtKeyUsageServerAuth),
		listeners:     make(map[*listener]struct{}),
		conns:         make(map[*Conn]struct{}),
		rr:            make(map[string]*atomic.Uint64),
		done:          make(chan struct{}),
		tickets:       &ticketSealer{now: time.Now},
	}
	s.serverTLS = &tls.Config{
		MinVersion:       tls.VersionTLS13,
		ClientAuth:       tls.RequestClientCert, // verifyClient requires one and says so when absent
		GetCertificate:   func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certificate() },
		NextProtos:       []string{alpnVerdict},
		VerifyConnection: func(cs tls.ConnectionState) error { return s.verifyClient(cs, false) },
		WrapSession:      s.tickets.wrap,
		UnwrapSession:    s.tickets.unwrap,
	}
	s.clientTLS = &tls.Config{
		MinVersion:           tls.VersionTLS13,
		InsecureSkipVerify:   true, // replaced by verifyServer, which checks the SPIFFE chain and ID
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.certificate() },
		NextProtos:           []string{alpnVerdict},
		VerifyConnection:     s.verifyServer,
	}
	if cfg.resumption {
		s.clientTLS.ClientSessionCache = tls.NewLRUClientSessionCache(sessionCacheSize)
	}
	s.resumeTLS = s.resumeConfig(s.clientTLS)
	if w, ok := cfg.authorizer.(interface{ Changed() <-chan struct{} }); ok {
		s.wg.Add(1)
		go s.watchPolicy(w)
	}
	return s, nil
}

// Ready reports whether the service can take and make connections now: nil,
// or an error that says why not — it is closed, it has no usable
// certificate (not issued yet, expired, source closed), or its authorizer
// denies everything because its policy is not synced yet or has gone stale
// past its limit (authorizers with a Ready method, such as authz.Consul and
// authz.Policy). Serve it as a readiness probe. A listener's health check in
// Consul follows it too.
func (s *Service) Ready() error {
	if err := s.made(); err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("ztnet: %s: closed", s.name)
	}
	if _, err := s.certificate(); err != nil {
		return fmt.Errorf("ztnet: %s: %w", s.name, err)
	}
	if r, ok := s.cfg.authorizer.(interface{ Ready() error }); ok {
		if err := r.Ready(); err != nil {
			return fmt.Errorf("ztnet: %s: %w", s.name, err)
		}
	}
	return nil
}

// certificate returns the current SVID as a tls.Certificate, failing closed
// when the source has none or it has expired. Its errors say "no usable
// certificate" and name no package: Dial, Ready and the handshakes wrap
// them.
func (s *Service) certificate() (*tls.Certificate, error) {
	svid, err := s.cfg.source.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("no usable certificate: %w", err)
	}
	if c := s.cert.Load(); c != nil && c.svid == svid {
		if now := time.Now(); now.After(c.cert.Leaf.NotAfter) {
			return nil, errExpired(c.cert.Leaf)
		}
		return c.cert, nil
	}
	if len(svid.Certificates) == 0 {
		return nil, errors.New("no usable certificate: the source returned an SVID without certificates")
	}
	leaf := svid.Certificates[0]
	if time.Now().After(leaf.NotAfter) {
		return nil, errExpired(leaf)
	}
	raw := make([][]byte, len(svid.Certificates))
	for i, c := range svid.Certificates {
		raw[i] = c.Raw
	}
	c := &ownCert{svid: svid, cert: &tls.Certificate{Certificate: raw, PrivateKey: svid.PrivateKey, Leaf: leaf}}
	s.cert.Store(c)
	return c.cert, nil
}

func errExpired(leaf *x509.Certificate) error {
	return fmt.Errorf("no usable certificate: own certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
}

// verifyClient runs on the server for every handshake, resumed or not.
// admitL7 is set on listeners that authorize every request (withL7Enforced).
func (s *Service) verifyClient(cs tls.ConnectionState, admitL7 bool) error {
	peer, err := s.inVerify.verify(cs.PeerCertificates)
	if err != nil {
		return &RejectedError{Reason: err.Error()}
	}
	if isZTNProtocol(cs.NegotiatedProtocol) {
		// A ztn client: authorized after the handshake, so it can be told why.
		return nil
	}
	if d := s.authorize(peer, admitL7, true); !d.Allowed {
		return &DeniedError{Source: peer.String(), Destination: s.name, Reason: d.Reason()}
	}
	return nil
}

// verifyServer runs on the client for every handshake, resumed or not. The
// expected service name is checked by Dial once the handshake is done.
func (s *Service) verifyServer(cs tls.ConnectionState) error {
	if _, err := s.outVerify.verify(cs.PeerCertificates); err != nil {
		return &RejectedError{Reason: err.Error()}
	}
	return nil
}

// authorize asks the policy whether peer may connect to this service, and
// counts the decision in the metrics when record is set. admitL7 admits a
// source whose intention has L7 permissions (see withL7Enforced). A peer
// of a federated trust domain is a source of its peer (peerName).
func (s *Service) authorize(peer ztn.ServiceID, admitL7, record bool) authz.Decision {
	d := s.cfg.authorizer.Authorize(authz.Request{
		Source:      peer,
		SourcePeer:  s.peerName(peer),
		Destination: s.id,
		AdmitL7:     admitL7,
	})
	if record {
		s.m.decision(context.Background(), d)
	}
	return d
}

// isClosed reports whether Close has been called. It takes no lock: Dial
// calls it on every connection.
func (s *Service) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Close closes every listener and accepted connection of the service, stops
// its background work, and closes the Source if Dev made it.
func (s *Service) Close() error {
	if err := s.made(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ls := make([]*listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	close(s.done)
	var errs []error
	for _, l := range ls {
		if err := l.Close(); err != nil && !errors.Is(err, errClosedListener) {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	s.wg.Wait()
	if s.cfg.closeSource {
		if err := s.cfg.source.Close(); err != nil {
			errs = append(errs, fmt.Errorf("ztnet: close %s: source: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}
