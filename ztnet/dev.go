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
// For tests, package [github.com/ztnlabs/ztn/ztnet/ztntest] wraps a Dev
// bound to the test.
type Dev struct {
	ca       *certs.DevCA
	policy   *authz.Policy
	catalog  *discovery.Static
	dc       string
	ttl      time.Duration
	defaults []Option     // given to NewDev: the defaults of every Service
	logger   *slog.Logger // the defaults' logger, for the mesh's own records

	mu       sync.Mutex
	closed   bool
	services map[*Service]struct{} // made by Service and maybe still open
}

// NewDev starts an embedded mesh. Options of Services given here (such as
// WithLogger) apply to every Service the mesh makes.
func NewDev(opts ...DevOption) (*Dev, error) {
	cfg := devConfig{trustDomain: "ztn.dev", datacenter: "dc1", ttl: time.Hour}
	for _, o := range opts {
		o.applyDev(&cfg)
	}
	var defaults config
	for _, o := range cfg.service {
		o.applyService(&defaults)
	}
	if defaults.source != nil {
		return nil, errors.New("ztnet: dev mesh: WithSource names one service: give it to Dev.Service, not NewDev")
	}
	if defaults.logger == nil {
		defaults.logger = slog.Default()
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
		ca:       ca,
		policy:   authz.NewPolicy(cfg.policy...),
		catalog:  discovery.NewStatic(nil),
		dc:       cfg.datacenter,
		ttl:      cfg.ttl,
		defaults: cfg.service,
		logger:   defaults.logger,

		services: make(map[*Service]struct{}),
	}, nil
}

// Service returns a new Service named name in this mesh, with its own
// rotating certificate, issued within ctx; ctx bounds only that, not the
// Service's life. Options override the mesh's defaults (its policy,
// catalog, and the options given to NewDev). Closing the Service stops its
// certificate rotation.
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
	all := make([]Option, 0, 2+len(d.defaults)+len(opts)+1)
	all = append(all, WithAuthorizer(d.policy), WithResolver(d.catalog))
	all = append(all, d.defaults...)
	all = append(all, opts...)
	var cfg config
	for _, o := range all {
		o.applyService(&cfg)
	}
	if cfg.source != nil {
		return New(ctx, name, all...)
	}
	// The mesh issues this service's identity; its rotation logs and
	// measures as the Service does.
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	copts := []certs.Option{certs.WithLogger(cfg.logger)}
	if cfg.meterProvider != nil {
		copts = append(copts, certs.WithMeterProvider(cfg.meterProvider))
	}
	src, err := d.ca.Source(ctx, d.dc, name, d.ttl, copts...)
	if err != nil {
		return nil, fmt.Errorf("ztnet: dev service %s: %w", name, err)
	}
	s, err := New(ctx, name, append(all, withOwnedSource(src))...)
	if err != nil {
		_ = src.Close()
		return nil, err
	}
	return s, nil
}

// Policy returns the mesh's intentions; set them with Policy().Set or load a
// file with Policy().LoadFile.
func (d *Dev) Policy() *authz.Policy { return d.policy }

// CA returns the mesh's certificate authority (to rotate its root, say).
func (d *Dev) CA() *certs.DevCA { return d.ca }

// Catalog returns the mesh's in-memory catalog.
func (d *Dev) Catalog() *discovery.Static { return d.catalog }
