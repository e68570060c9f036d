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

// Every option of this package is a value of one of four interfaces, named
// after what takes it, in the style of go-spiffe's spiffetls: Option (New,
// Dev.Service, and NewDev for every Service of the mesh), DevOption
// (NewDev), ListenOption (Service.Listen) and DialOption (Service.Dial).
// WithProtocols serves both Listen and Dial: its ProtocolsOption is both.

// Option configures a Service, given to New or Dev.Service.
//
// Every Option is also a DevOption: given to NewDev, it applies to every
// Service the mesh makes, before the options given to Dev.Service. That is
// how a whole mesh gets one logger, meter or tracer provider:
//
//	mesh, err := ztnet.NewDev(ztnet.WithLogger(logger))
type Option interface {
	DevOption
	applyService(*config)
}

// DevOption configures a Dev mesh, given to NewDev. Every Option is one too.
type DevOption interface {
	applyDev(*devConfig)
}

// ListenOption configures one listener, given to Service.Listen.
type ListenOption interface {
	applyListen(*listenConfig)
}

// DialOption configures one connection, given to Service.Dial.
type DialOption interface {
	applyDial(*dialConfig)
}

// ProtocolsOption is both a ListenOption and a DialOption; WithProtocols
// makes it.
type ProtocolsOption interface {
	ListenOption
	DialOption
}

// serviceOption is an Option; given to NewDev it becomes a default of every
// Service of the mesh.
type serviceOption func(*config)

func (o serviceOption) applyService(c *config) { o(c) }
func (o serviceOption) applyDev(c *devConfig)  { c.service = append(c.service, o) }

type devOption func(*devConfig)

func (o devOption) applyDev(c *devConfig) { o(c) }

type listenOption func(*listenConfig)

func (o listenOption) applyListen(c *listenConfig) { o(c) }

type dialOption func(*dialConfig)

func (o dialOption) applyDial(c *dialConfig) { o(c) }

type protocolsOption []string

func (o protocolsOption) applyListen(c *listenConfig) { c.protos = append(c.protos, o...) }
func (o protocolsOption) applyDial(c *dialConfig)     { c.protos = append(c.protos, o...) }

// config is a Service's configuration.
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
	closeSource      bool // the Source is the Service's own (made by Dev or Env)
}

// devConfig is a Dev mesh's configuration.
type devConfig struct {
	trustDomain string
	datacenter  string
	ttl         time.Duration
	policy      []authz.Option
	service     []Option // the defaults of every Service of the mesh
}

// listenConfig is one listener's configuration.
type listenConfig struct {
	protos []string
	l7     bool // withL7Enforced
}

// dialConfig is one Dial's configuration.
type dialConfig struct {
	protos   []string
	serverTD spiffeid.TrustDomain // WithServerTrustDomain; zero: the local one
}

// Defaults of the options that bound handshakes.
const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultMaxHandshakes    = 1024
	sessionCacheSize        = 1024 // TLS sessions Dial keeps, one per server instance
)

// Service options.

// WithSource sets where the service's identity and trust bundle come from
// (required by New; Dev.Service issues one when it is not given). The
// Service does not close the Source: whoever made it closes it, after the
// Service.
func WithSource(s certs.Source) Option { return serviceOption(func(c *config) { c.source = s }) }

// withOwnedSource is WithSource for a Source the Service closes on Close:
// the one Dev.Service or Env makes for it.
func withOwnedSource(s certs.Source) Option {
	return serviceOption(func(c *config) { c.source, c.closeSource = s, true })
}

// WithResolver sets how Dial finds instances of a service (required for
// Dial).
func WithResolver(r discovery.Resolver) Option {
	return serviceOption(func(c *config) { c.resolver = r })
}

// WithRegistrar makes Listen register each listener as an instance of the
// service, and deregister it on Close. A Resolver that is also a
// [discovery.Registrar] (such as [discovery.Static]) is used for both unless
// this option overrides it.
func WithRegistrar(r discovery.Registrar) Option {
	return serviceOption(func(c *config) { c.registrar = r })
}

// WithAuthorizer sets the policy that admits incoming connections (required
// for Listen). If it also has a Changed() <-chan struct{} method, open
// connections are re-checked on every change and closed when now denied.
func WithAuthorizer(a authz.Authorizer) Option {
	return serviceOption(func(c *config) { c.authorizer = a })
}

// WithLogger sets the logger of the Service and of what is built on it: its
// certificate rotation when Dev made it, and the access records of the
// grpcztn and httpztn adapters (default, or given nil: [slog.Default]).
// Accepted connections are logged at Debug, refusals at Warn; see the
// package documentation.
func WithLogger(l *slog.Logger) Option { return serviceOption(func(c *config) { c.logger = l }) }

// WithMeterProvider sets the OpenTelemetry meter provider of the Service
// and of the adapters built on it (default: otel's global provider).
func WithMeterProvider(p metric.MeterProvider) Option {
	return serviceOption(func(c *config) { c.meterProvider = p })
}

// WithTracerProvider sets the OpenTelemetry tracer provider of the Service
// and of the adapters built on it (default: otel's global provider). Given
// OpenTelemetry's no-op tracer and meter providers (trace/noop,
// metric/noop), the gRPC and HTTP adapters install no instrumentation at
// all; ztn's own metrics and access records stay.
func WithTracerProvider(p trace.TracerProvider) Option {
	return serviceOption(func(c *config) { c.tracerProvider = p })
}

// WithFederatedPeer accepts clients of the federated trust domain td (the
// Source must have its bundle), and names them in authorization as
// services of peer: intentions admit them only through sources that name
// that peer (`{"Name": "web", "Peer": "partner"}`), never through those
// written for the local service of the same name, nor through local
// wildcard sources ("*"). The same holds for every request the adapters
// judge and for re-checks of open connections. Name the peer as the
// intentions do: after the trust domain ("partner.example"), or after a
// Consul cluster peering ("partner").
//
// Give it once per federated trust domain. A peer cannot be "" or contain
// the wildcard "*", two trust domains cannot share a peer name, and td
// cannot be the local trust domain; New fails otherwise.
//
// Dial accepts a server of a federated trust domain only when asked to,
// with [WithRemoteService] or [WithServerTrustDomain]; by default the
// server must be in the local trust domain.
func WithFederatedPeer(peer string, td spiffeid.TrustDomain) Option {
	return serviceOption(func(c *config) {
		c.federated = append(c.federated, td)
		if c.peerNames == nil {
			c.peerNames = make(map[spiffeid.TrustDomain]string)
		}
		c.peerNames[td] = peer
	})
}

// WithRemoteService says that service lives in the federated trust domain
// td: Dial to it (including the dials of the grpcztn and httpztn clients)
// expects its servers there, as if given [WithServerTrustDomain](td). td
// must be federated ([WithFederatedPeer]); New fails otherwise.
func WithRemoteService(service string, td spiffeid.TrustDomain) Option {
	return serviceOption(func(c *config) {
		if c.remoteServices == nil {
			c.remoteServices = make(map[string]spiffeid.TrustDomain)
		}
		c.remoteServices[service] = td
	})
}

// WithHandshakeTimeout bounds each handshake, incoming or made by Dial,
// including the authorization verdict (default 10s; 0 means the default, a
// negative duration makes New fail). A silent client is dropped after it;
// it never delays other clients.
func WithHandshakeTimeout(d time.Duration) Option {
	return serviceOption(func(c *config) {
		if d == 0 {
			d = defaultHandshakeTimeout
		}
		c.handshakeTimeout = d
	})
}

// WithMaxConcurrentHandshakes bounds how many incoming handshakes each
// listener runs at once (default 1024; 0 or less means the default). Beyond
// it the listener stops accepting until a handshake ends, and new
// connections wait in the kernel's accept queue: a flood of silent clients
// costs at most this many goroutines, each dropped after the handshake
// timeout.
func WithMaxConcurrentHandshakes(n int) Option {
	return serviceOption(func(c *config) {
		if n <= 0 {
			n = defaultMaxHandshakes
		}
		c.maxHandshakes = n
	})
}

// WithoutResumption makes Dial do a full handshake every time. Resumption is
// on by default and safe: identity and authorization are re-checked on every
// resumed connection. Dial keeps up to 1024 sessions, one per server
// instance.
func WithoutResumption() Option { return serviceOption(func(c *config) { c.resumption = false }) }

// WithPostQuantumResumption makes resumed handshakes use the hybrid
// post-quantum key exchange (X25519MLKEM768) that full handshakes use.
// By default a resumed handshake mixes the session's key, which comes from a
// hybrid handshake, with a fresh X25519 exchange only: about half the CPU of
// a hybrid one. Recorded traffic stays safe from a future quantum computer
// either way unless a session-ticket key or session key is also stolen; this
// option closes that remaining gap at the cost of speed.
func WithPostQuantumResumption() Option {
	return serviceOption(func(c *config) { c.pqResumption = true })
}

// Dev options.

// WithDevTrustDomain sets the mesh's trust domain (default "ztn.dev").
func WithDevTrustDomain(td string) DevOption {
	return devOption(func(c *devConfig) { c.trustDomain = td })
}

// WithDevDatacenter sets the datacenter in issued SPIFFE IDs (default "dc1").
func WithDevDatacenter(dc string) DevOption {
	return devOption(func(c *devConfig) { c.datacenter = dc })
}

// WithDevCertTTL sets the lifetime of issued certificates (default 1h). They
// are renewed at 60–90% of it, so a few seconds shows rotation live.
func WithDevCertTTL(d time.Duration) DevOption { return devOption(func(c *devConfig) { c.ttl = d }) }

// WithDevPolicyOptions passes options to the mesh's [authz.Policy], such as
// [authz.WithDefaultAllow].
func WithDevPolicyOptions(opts ...authz.Option) DevOption {
	return devOption(func(c *devConfig) { c.policy = append(c.policy, opts...) })
}

// Listen and Dial options.

// WithProtocols sets the application protocols (ALPN names such as "h2" or
// "http/1.1"), most preferred first.
//
// On Listen, the listener offers each protocol p as "ztn/1+p" to ztn clients
// and as plain p to other TLS clients, in this order of preference, and still
// accepts plain "ztn/1". On Dial, the client offers "ztn/1+p" for each p and
// nothing else: the handshake fails if the server supports none of them.
// [Conn.NegotiatedProtocol] tells which was chosen.
func WithProtocols(protos ...string) ProtocolsOption {
	return protocolsOption(append([]string(nil), protos...))
}

// withL7Enforced marks a listener whose server authorizes every request
// itself (the grpcztn and httpztn servers, through internal/ztnhook). A
// source whose matching intention has only L7 permissions is then admitted
// at connection level, with AdmitL7 set in the authz.Request, and its
// requests are judged one by one with authorizeRequest. Without it, a
// listener treats such a source as denied, as Consul's connection-level
// checks do.
func withL7Enforced() ListenOption { return listenOption(func(c *listenConfig) { c.l7 = true }) }

// WithServerTrustDomain makes this Dial expect the server in trust domain
// td: the local one (the default) or one federated with
// [WithFederatedPeer]; for another, Dial fails at once. The server must
// still be the service asked for, in the client's own namespace and
// partition, with a certificate that chains to td's bundle. A server of any
// other trust domain is rejected, so that a federated CA cannot stand in
// for a local service, nor the reverse. [WithRemoteService] says the same
// for every Dial to a service.
func WithServerTrustDomain(td spiffeid.TrustDomain) DialOption {
	return dialOption(func(c *dialConfig) { c.serverTD = td })
}

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
