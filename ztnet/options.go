package ztnet

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
)

// Option configures a Service.
type Option func(*config)

type config struct {
	source           certs.Source
	resolver         discovery.Resolver
	registrar        discovery.Registrar
	authorizer       authz.Authorizer
	logger           *slog.Logger
	meterProvider    metric.MeterProvider
	tracerProvider   trace.TracerProvider
	federated        []spiffeid.TrustDomain
	peerNames        map[spiffeid.TrustDomain]string // WithFederatedPeer
	handshakeTimeout time.Duration
	maxHandshakes    int
	remoteServices   map[string]spiffeid.TrustDomain // WithRemoteService
	resumption       bool
	pqResumption     bool
	sessionCacheSize int
	closeSource      bool
}

// WithSource sets where the service's identity and trust bundle come from
// (required). Service.Close does not close it unless WithSourceOwned is also
// given.
func WithSource(s certs.Source) Option { return func(c *config) { c.source = s } }

// WithSourceOwned makes Service.Close close the Source too.
func WithSourceOwned() Option { return func(c *config) { c.closeSource = true } }

// WithResolver sets how Dial finds instances of a service (required for
// Dial).
func WithResolver(r discovery.Resolver) Option { return func(c *config) { c.resolver = r } }

// WithRegistrar makes Listen register each listener as an instance of the
// service, and deregister it on Close. A Resolver that is also a Registrar
// (such as discovery.Static) is used for both unless this option overrides it.
func WithRegistrar(r discovery.Registrar) Option { return func(c *config) { c.registrar = r } }

// WithAuthorizer sets the policy that admits incoming connections (required
// for Listen). If it also has a Changed() <-chan struct{} method, open
// connections are re-checked on every change and closed when now denied.
func WithAuthorizer(a authz.Authorizer) Option { return func(c *config) { c.authorizer = a } }

// WithLogger sets the logger for access records and refusals
// (default, or given nil: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider sets the OpenTelemetry meter provider (default: otel's
// global provider).
func WithMeterProvider(p metric.MeterProvider) Option { return func(c *config) { c.meterProvider = p } }

// WithTracerProvider sets the OpenTelemetry tracer provider (default: otel's
// global provider). Given OpenTelemetry's no-op tracer and meter providers
// (trace/noop, metric/noop), the gRPC and HTTP adapters install no
// instrumentation at all; ztn's own metrics and access records stay.
func WithTracerProvider(p trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = p }
}

// WithFederatedTrustDomains accepts peers from these trust domains as well as
// the local one (the Source must have their bundles).
//
// A federated trust domain never borrows local names. Authorization sees a
// client of a federated trust domain as a service of a peer named after the
// trust domain (authz.Service.Peer = "partner.example", unless
// WithFederatedPeer names it otherwise): it matches only intentions whose
// source names that peer (`{"Name": "web", "Peer": "partner.example"}`),
// never those written for the local service of the same name, nor local
// wildcard sources ("*"). The same holds for every request AuthorizeRequest
// judges and for re-checks of open connections. Dial accepts a server of a
// federated trust domain only when asked to with WithServerTrustDomain; by
// default the server must be in the local trust domain.
func WithFederatedTrustDomains(tds ...spiffeid.TrustDomain) Option {
	return func(c *config) { c.federated = append(c.federated, tds...) }
}

// WithFederatedPeer federates td as WithFederatedTrustDomains does, and
// names its peer peer in authorization instead of the trust domain's name:
// for intentions written for a Consul cluster peering (whose peer names,
// such as "partner", are not trust domains). A peer cannot be "" or contain
// the wildcard "*", and two trust domains cannot share a peer name; New
// fails otherwise.
func WithFederatedPeer(peer string, td spiffeid.TrustDomain) Option {
	return func(c *config) {
		c.federated = append(c.federated, td)
		if c.peerNames == nil {
			c.peerNames = make(map[spiffeid.TrustDomain]string)
		}
		c.peerNames[td] = peer
	}
}

// WithHandshakeTimeout bounds each handshake, incoming or made by Dial,
// including the authorization verdict (default 10s; 0 means the default, a
// negative duration makes New fail). A silent client is dropped after it;
// it never delays other clients.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d == 0 {
			d = DefaultHandshakeTimeout
		}
		c.handshakeTimeout = d
	}
}

// DefaultHandshakeTimeout bounds handshakes unless WithHandshakeTimeout says
// otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// WithMaxConcurrentHandshakes bounds how many incoming handshakes each
// listener runs at once (default DefaultMaxHandshakes; 0 means the
// default). Beyond it the listener stops accepting until a handshake ends,
// and new connections wait in the kernel's accept queue: a flood of silent
// clients costs at most this many goroutines, each dropped after the
// handshake timeout.
func WithMaxConcurrentHandshakes(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultMaxHandshakes
		}
		c.maxHandshakes = n
	}
}

// DefaultMaxHandshakes is each listener's bound on concurrent incoming
// handshakes unless WithMaxConcurrentHandshakes says otherwise.
const DefaultMaxHandshakes = 1024

// WithoutResumption makes Dial do a full handshake every time. Resumption is
// on by default and safe: identity and authorization are re-checked on every
// resumed connection.
func WithoutResumption() Option { return func(c *config) { c.resumption = false } }

// WithPostQuantumResumption makes resumed handshakes use the hybrid
// post-quantum key exchange (X25519MLKEM768) that full handshakes use.
// By default a resumed handshake mixes the session's key, which comes from a
// hybrid handshake, with a fresh X25519 exchange only: about half the CPU of
// a hybrid one. Recorded traffic stays safe from a future quantum computer
// either way unless a session-ticket key or session key is also stolen; this
// option closes that remaining gap at the cost of speed (see resume.go).
func WithPostQuantumResumption() Option { return func(c *config) { c.pqResumption = true } }

// WithSessionCacheSize sets how many TLS sessions Dial keeps for resumption
// (default 1024, one per server instance).
func WithSessionCacheSize(n int) Option { return func(c *config) { c.sessionCacheSize = n } }

// checkNils refuses options given a nil pointer inside an interface (such as
// WithAuthorizer((*authz.Policy)(nil))), which would otherwise fail later,
// in the middle of a handshake or a background goroutine; and a negative
// handshake timeout.
func (c *config) checkNils() error {
	for _, o := range []struct {
		name string
		v    any
	}{
		{"WithSource", c.source}, {"WithResolver", c.resolver}, {"WithRegistrar", c.registrar},
		{"WithAuthorizer", c.authorizer},
		{"WithMeterProvider", c.meterProvider}, {"WithTracerProvider", c.tracerProvider},
	} {
		if isNilValue(o.v) {
			return fmt.Errorf("%s was given a nil %T", o.name, o.v)
		}
	}
	if c.handshakeTimeout < 0 {
		return errors.New("WithHandshakeTimeout was given a negative duration")
	}
	return nil
}

// isNilValue reports whether v is a non-nil interface holding a nil pointer,
// map, slice, func or channel.
func isNilValue(v any) bool {
	if v == nil {
		return false
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// WithRemoteService says that service lives in the federated trust domain
// td: Dial and DialAddress to it (including the dials of the grpcztn and
// httpztn clients) expect its servers there, as if given
// WithServerTrustDomain(td). td must be federated; New fails otherwise.
func WithRemoteService(service string, td spiffeid.TrustDomain) Option {
	return func(c *config) {
		if c.remoteServices == nil {
			c.remoteServices = make(map[string]spiffeid.TrustDomain)
		}
		c.remoteServices[service] = td
	}
}

// WithServerTrustDomain makes Dial and DialAddress expect the server in trust
// domain td: the local one (the default) or one federated with
// WithFederatedTrustDomains or WithFederatedPeer; for another, they fail
// at once. The server must still be the service asked for, in the
// client's own namespace and partition, with a certificate that chains to
// td's bundle. A server of any other trust domain is rejected, so that a
// federated CA cannot stand in for a local service, nor the reverse.
func WithServerTrustDomain(td spiffeid.TrustDomain) DialOption { return serverTDOption{td} }

type serverTDOption struct{ td spiffeid.TrustDomain }

func (o serverTDOption) applyDial(c *dialConfig) { c.serverTD = o.td }
