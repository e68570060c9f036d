package ztnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
)

// Dev is an embedded mesh for development, demos and tests, all in this
// process: a certificate authority in memory (keys never leave memory), a
// local intention policy, and an in-memory catalog where listeners register.
// Services made by one Dev trust each other's certificates and find each
// other's listeners.
//
// Like a real mesh, the policy denies everything until intentions allow it.
type Dev struct {
	ca      *certs.DevCA
	policy  *authz.Policy
	catalog *discovery.Static
	dc      string
	ttl     time.Duration
	logger  *slog.Logger

	mu       sync.Mutex
	closed   bool
	services map[*Service]struct{} // made by Service and maybe still open
}

// DevOption configures a Dev mesh.
type DevOption func(*devConfig)

type devConfig struct {
	trustDomain string
	datacenter  string
	ttl         time.Duration
	policy      []authz.Option
	logger      *slog.Logger
}

// WithDevTrustDomain sets the trust domain (default "ztn.dev").
func WithDevTrustDomain(td string) DevOption { return func(c *devConfig) { c.trustDomain = td } }

// WithDevDatacenter sets the datacenter in issued SPIFFE IDs (default "dc1").
func WithDevDatacenter(dc string) DevOption { return func(c *devConfig) { c.datacenter = dc } }

// WithDevCertTTL sets the lifetime of issued certificates (default 1h). They
// are renewed at 60–90% of it, so a few seconds shows rotation live.
func WithDevCertTTL(d time.Duration) DevOption { return func(c *devConfig) { c.ttl = d } }

// WithDevPolicyOptions passes options to the mesh's authz.Policy, such as
// authz.WithDefaultAllow.
func WithDevPolicyOptions(opts ...authz.Option) DevOption {
	return func(c *devConfig) { c.policy = append(c.policy, opts...) }
}

// WithDevLogger sets the logger given to the mesh's services and
// certificate rotators (default slog.Default()).
func WithDevLogger(l *slog.Logger) DevOption { return func(c *devConfig) { c.logger = l } }

// NewDev starts an embedded mesh.
func NewDev(opts ...DevOption) (*Dev, error) {
	cfg := devConfig{trustDomain: "ztn.dev", datacenter: "dc1", ttl: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	td, err := spiffeid.TrustDomainFromString(cfg.trustDomain)
	if err != nil {
		return nil, fmt.Errorf("ztnet: dev mesh: trust domain %q: %w", cfg.trustDomain, err)
	}
	if cfg.ttl <= 0 {
		return nil, fmt.Errorf("ztnet: dev mesh: certificate TTL %v must be positive", cfg.ttl)
	}
	ca, err := certs.NewDevCA(td)
	if err != nil {
		return nil, fmt.Errorf("ztnet: dev mesh: %w", err)
	}
	return &Dev{
		ca:      ca,
		policy:  authz.NewPolicy(cfg.policy...),
		catalog: discovery.NewStatic(nil),
		dc:      cfg.datacenter,
		ttl:     cfg.ttl,
		logger:  cfg.logger,

		services: make(map[*Service]struct{}),
	}, nil
}

// Service returns a new Service named name in this mesh, with its own
// rotating certificate. Options override the mesh's defaults (policy,
// catalog, logger). Closing the Service stops its certificate rotation.
func (d *Dev) Service(ctx context.Context, name string, opts ...Option) (*Service, error) {
	if d == nil || d.ca == nil {
		return nil, errNotNew("Dev", "NewDev")
	}
	s, err := d.newService(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		_ = s.Close()
		return nil, fmt.Errorf("ztnet: dev service %s: %w", name, net.ErrClosed)
	}
	for o := range d.services { // forget those closed since
		if o.isClosed() {
			delete(d.services, o)
		}
	}
	d.services[s] = struct{}{}
	return s, nil
}

// Close closes every Service the mesh made that is still open; Service
// fails afterwards with net.ErrClosed. Close is idempotent.
func (d *Dev) Close() error {
	if d == nil || d.ca == nil {
		return errNotNew("Dev", "NewDev")
	}
	d.mu.Lock()
	d.closed = true
	services := d.services
	d.services = nil
	d.mu.Unlock()
	var errs []error
	for s := range services {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

func (d *Dev) newService(ctx context.Context, name string, opts []Option) (*Service, error) {
	base := []Option{WithAuthorizer(d.policy), WithResolver(d.catalog), WithLogger(d.logger)}
	var given config
	for _, o := range opts {
		o(&given)
	}
	if given.source == nil { // the mesh issues this service's identity
		src, err := d.ca.Source(ctx, d.dc, name, d.ttl, certs.WithLogger(d.logger))
		if err != nil {
			return nil, fmt.Errorf("ztnet: dev service %s: %w", name, err)
		}
		base = append(base, WithSource(src), WithSourceOwned())
		s, err := New(ctx, name, append(base, opts...)...)
		if err != nil {
			_ = src.Close()
			return nil, err
		}
		return s, nil
	}
	return New(ctx, name, append(base, opts...)...)
}

// Policy returns the mesh's intentions; set them with Policy().Set or load a
// file with Policy().LoadFile.
func (d *Dev) Policy() *authz.Policy { return d.policy }

// CA returns the mesh's certificate authority (to rotate its root, say).
func (d *Dev) CA() *certs.DevCA { return d.ca }

// Catalog returns the mesh's in-memory catalog.
func (d *Dev) Catalog() *discovery.Static { return d.catalog }
