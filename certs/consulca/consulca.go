package consulca

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
)

// New returns a [certs.Rotator] whose SVIDs come from Consul's Connect CA
// through the local agent: the leaf is GET /v1/agent/connect/ca/leaf/<Service>
// and the trust bundle is every root of GET /v1/agent/connect/ca/roots (spec
// §2), in the trust domain Consul reports there (<cluster id>.consul).
//
// Unlike certs/vault, the private key is not generated in the process: the
// Consul agent generates it (ECDSA P-256) and returns it with the
// certificate over its HTTP API, so use an agent on the same host and, if
// it is not on loopback, HTTPS.
//
// A leaf is accepted only if its only SAN is exactly the service's SPIFFE ID
// in the roots' trust domain, its key is the private key returned with it,
// it may be used for client and server authentication, and its chain (the
// leaf and the active root's intermediates, e.g. the new root cross-signed
// by the old one after a CA rotation) verifies against the roots.
//
// Renewal: the Rotator schedules it at 60-90% of the leaf's life; the Consul
// agent keeps its own schedule for the leaf it caches (also 60-90%, at its
// own random moment). A renewal that finds the agent still holding the
// current leaf past 60% of its life waits for the agent's next one with
// blocking queries (up to 90% of the life, plus a minute), so no leaf is
// installed twice; earlier (a forced renewal, a retry) the agent's current
// leaf is the answer. The roots are followed with blocking queries; when the
// active root changes, the SVID is re-issued within the root change window
// ([certs.WithRootChangeWindow], default 30s, as Consul's own jitter) — the agent
// re-issues at once a leaf not signed by the active root — and roots Consul
// stops reporting stay trusted until the leaves seen under them expire.
//
// New reads the roots and issues the first SVID before it returns;
// errors say what is wrong (an unreachable agent, a token without
// service:write, a malformed response, a leaf for another identity...).
// Later failures are retried by the Rotator and show in its logs and
// metrics. Only the default admin partition and namespace are supported.
func New(ctx context.Context, cfg Config, opts ...certs.Option) (*certs.Rotator, error) {
	c, err := newIssuer(ctx, cfg, certsx.NewConfig(opts))
	if err != nil {
		return nil, err
	}
	return certs.NewRotator(ctx, c, opts...)
}

// issuer is the certs.Issuer (and certs.BundleWatcher) of New.
type issuer struct {
	client  *api.Client
	service string
	dc      string
	td      spiffeid.TrustDomain // fixed at construction
	id      spiffeid.ID
	timeout time.Duration
	wait    time.Duration
	log     *slog.Logger

	now func() time.Time // time.Now; tests move it

	// Issue is never called concurrently: no lock needed.
	lastSerial string // of the leaf last returned by Issue
}

func newIssuer(ctx context.Context, cfg Config, rc certsx.Config) (*issuer, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("consulca: no Client in Config")
	case cfg.RequestTimeout < 0 || cfg.BlockingWait < 0:
		return nil, errors.New("consulca: negative duration in Config")
	}
	c := &issuer{
		client:  cfg.Client,
		service: cfg.Service,
		dc:      cfg.Datacenter,
		timeout: cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout),
		wait:    min(cmp.Or(cfg.BlockingWait, DefaultBlockingWait), maxBlockingWait),
		log:     rc.Logger,
		now:     time.Now,
	}
	// Validate the name before any request (the trust domain is not known
	// yet: any valid one will do).
	if err := ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("consul"), "dc", cfg.Service).Validate(); err != nil {
		return nil, fmt.Errorf("consulca: service %q: %w", cfg.Service, err)
	}
	if c.dc == "" {
		dc, err := c.agentDatacenter(ctx)
		if err != nil {
			return nil, err
		}
		c.dc = dc
	}
	roots, _, err := c.fetchRoots(ctx, 0)
	if err != nil {
		return nil, err
	}
	c.td = roots.td
	id, err := ztn.NewServiceID(c.td, c.dc, c.service).SPIFFEID()
	if err != nil {
		return nil, fmt.Errorf("consulca: service %q in datacenter %q: %w", c.service, c.dc, err)
	}
	c.id = id
	return c, nil
}

// agentDatacenter reads the agent's datacenter.
func (c *issuer) agentDatacenter(ctx context.Context) (string, error) {
	var self struct {
		Config struct{ Datacenter string }
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.client.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("consulca: reading the agent's datacenter (set Config.Datacenter if the token may not read the agent): %w", c.describe(err))
	}
	if self.Config.Datacenter == "" {
		return "", errors.New("consulca: /v1/agent/self: malformed response: no Config.Datacenter")
	}
	return self.Config.Datacenter, nil
}
