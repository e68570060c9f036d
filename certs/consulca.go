package certs

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/time/rate"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/internal/consulx"
)

// Defaults of ConsulCAConfig.
const (
	DefaultConsulRequestTimeout = 10 * time.Second
	DefaultConsulBlockingWait   = 5 * time.Minute
)

// consulMaxBlockingWait is the longest wait Consul honours (10m).
const consulMaxBlockingWait = 10 * time.Minute

// ConsulCAConfig configures NewConsulCA. Client and Service are required.
type ConsulCAConfig struct {
	// Client talks to the local Consul agent. Its token needs service:write
	// on Service (the leaf endpoint's ACL). Blocking queries wait up to
	// BlockingWait: its HTTP client must not time out sooner (the default
	// api.Config's does not time out).
	Client *api.Client
	// Service is the service's name; its SPIFFE ID is
	// spiffe://<trust domain>/ns/default/dc/<Datacenter>/svc/<Service>.
	Service string
	// Datacenter is the agent's datacenter. Default: read from
	// /v1/agent/self (which needs agent:read); set it when the token may not
	// read the agent.
	Datacenter string
	// RequestTimeout bounds each non-blocking request (default 10s).
	RequestTimeout time.Duration
	// BlockingWait is the wait of each blocking query (default 5m, at most
	// Consul's 10m).
	BlockingWait time.Duration
}

// NewConsulCA returns a Rotator whose SVIDs come from Consul's Connect CA
// through the local agent: the leaf is GET /v1/agent/connect/ca/leaf/<Service>
// and the trust bundle is every root of GET /v1/agent/connect/ca/roots (spec
// §2), in the trust domain Consul reports there (<cluster id>.consul).
//
// Unlike NewVault, the private key is not generated in the process: the
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
// (WithRootChangeWindow, default 30s, as Consul's own jitter) — the agent
// re-issues at once a leaf not signed by the active root — and roots Consul
// stops reporting stay trusted until the leaves seen under them expire.
//
// NewConsulCA reads the roots and issues the first SVID before it returns;
// errors say what is wrong (an unreachable agent, a token without
// service:write, a malformed response, a leaf for another identity...).
// Later failures are retried by the Rotator and show in its logs and
// metrics. Only the default admin partition and namespace are supported.
func NewConsulCA(ctx context.Context, cfg ConsulCAConfig, opts ...Option) (*Rotator, error) {
	c, err := newConsulIssuer(ctx, cfg, newConfig(opts))
	if err != nil {
		return nil, err
	}
	return NewRotator(ctx, c, opts...)
}

// consulIssuer is the Issuer (and BundleWatcher) of NewConsulCA.
type consulIssuer struct {
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

func newConsulIssuer(ctx context.Context, cfg ConsulCAConfig, rc config) (*consulIssuer, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("certs: consul: no Client in ConsulCAConfig")
	case cfg.RequestTimeout < 0 || cfg.BlockingWait < 0:
		return nil, errors.New("certs: consul: negative duration in ConsulCAConfig")
	}
	c := &consulIssuer{
		client:  cfg.Client,
		service: cfg.Service,
		dc:      cfg.Datacenter,
		timeout: cmpOrDuration(cfg.RequestTimeout, DefaultConsulRequestTimeout),
		wait:    min(cmpOrDuration(cfg.BlockingWait, DefaultConsulBlockingWait), consulMaxBlockingWait),
		log:     rc.logger,
		now:     time.Now,
	}
	// Validate the name before any request (the trust domain is not known
	// yet: any valid one will do).
	if err := ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("consul"), "dc", cfg.Service).Validate(); err != nil {
		return nil, fmt.Errorf("certs: consul: service %q: %w", cfg.Service, err)
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
		return nil, fmt.Errorf("certs: consul: service %q in datacenter %q: %w", c.service, c.dc, err)
	}
	c.id = id
	return c, nil
}

// agentDatacenter reads the agent's datacenter.
func (c *consulIssuer) agentDatacenter(ctx context.Context) (string, error) {
	var self struct {
		Config struct{ Datacenter string }
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.client.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return "", fmt.Errorf("certs: consul: reading the agent's datacenter (set ConsulCAConfig.Datacenter if the token may not read the agent): %w", c.describe(err))
	}
	if self.Config.Datacenter == "" {
		return "", errors.New("certs: consul: /v1/agent/self: malformed response: no Config.Datacenter")
	}
	return self.Config.Datacenter, nil
}

// consulLeaf is the body of /v1/agent/connect/ca/leaf/<service>.
type consulLeaf struct {
	SerialNumber  string
	CertPEM       string
	PrivateKeyPEM string
	ModifyIndex   uint64
}

// consulRootsBody is the body of /v1/agent/connect/ca/roots.
type consulRootsBody struct {
	ActiveRootID string
	TrustDomain  string
	Roots        []struct {
		ID                string
		RootCert          string
		IntermediateCerts []string
		Active            bool
	}
}

// consulRoots is a parsed and checked roots response.
type consulRoots struct {
	td            spiffeid.TrustDomain
	roots         []*x509.Certificate // every root, active or not
	active        *x509.Certificate
	intermediates []*x509.Certificate // the active root's, in order
}

// Issue implements Issuer.
func (c *consulIssuer) Issue(ctx context.Context) (*Identity, error) {
	leaf, index, err := c.fetchLeaf(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	// The roots after the leaf: they include the leaf's root even if the CA
	// rotated in between.
	roots, _, err := c.fetchRoots(ctx, 0)
	if err != nil {
		return nil, err
	}
	svid, err := c.parseLeaf(leaf, roots)
	if err != nil {
		return nil, err
	}
	if leaf.SerialNumber == c.lastSerial {
		// The agent still has the leaf we have. Early in its life (a forced
		// renewal, a retry) that is the answer. Past 60% of it, or if it is
		// not from the active root, the agent is due to renew it: wait for
		// that rather than install the same leaf again.
		l := svid.Certificates[0]
		life := l.NotAfter.Sub(l.NotBefore)
		current := chainsTo(svid.Certificates, roots.active)
		if now := c.now(); current && now.Before(l.NotBefore.Add(life*6/10)) {
			return c.identity(svid, roots), nil
		}
		if leaf, err = c.awaitRenewal(ctx, leaf, svid, index, current); err != nil {
			return nil, err
		}
		if roots, _, err = c.fetchRoots(ctx, 0); err != nil {
			return nil, err
		}
		if svid, err = c.parseLeaf(leaf, roots); err != nil {
			return nil, err
		}
	}
	c.lastSerial = leaf.SerialNumber
	return c.identity(svid, roots), nil
}

func (c *consulIssuer) identity(svid *x509svid.SVID, roots *consulRoots) *Identity {
	return &Identity{
		SVID:    svid,
		Bundles: []*x509bundle.Bundle{x509bundle.FromX509Authorities(c.td, roots.roots)},
	}
}

// awaitRenewal waits for the agent to replace cur (fetched at index, parsed
// as svid), which the Rotator already has.
//
// If cur is from the active root (current), the agent renews it at a random
// moment of its own renewal window, at the latest at 90% of the leaf's
// life: awaitRenewal waits for that with blocking queries. If it is not,
// the agent had not seen the root change yet when it answered; a
// non-blocking query re-issues the leaf as soon as it has (a blocking one
// would add the agent's own 0-30s jitter to the Rotator's root change
// window), so awaitRenewal polls, backing off from 250ms to 5s.
//
// If the agent has not renewed the leaf by 90% of its life plus a minute
// (or, not current, 90s from now), awaitRenewal gives up with an error; the
// Rotator's retry then fetches without blocking, which makes the agent
// re-issue a leaf past 90% of its life or not from the active root.
func (c *consulIssuer) awaitRenewal(ctx context.Context, cur *consulLeaf, svid *x509svid.SVID, index uint64, current bool) (*consulLeaf, error) {
	l := svid.Certificates[0]
	deadline := l.NotBefore.Add(l.NotAfter.Sub(l.NotBefore) * 9 / 10).Add(time.Minute)
	if !current {
		deadline = c.now().Add(90 * time.Second)
	}
	if deadline.After(l.NotAfter) {
		deadline = l.NotAfter
	}
	c.log.Debug("certs: consul: the agent still has the current leaf; waiting for its renewal",
		"service", c.service, "serial", cur.SerialNumber, "from_active_root", current, "until", deadline)
	pause := 250 * time.Millisecond
	for {
		left := deadline.Sub(c.now())
		if left <= 0 {
			return nil, fmt.Errorf("certs: consul: the agent has not renewed the leaf of %q (serial %s, expires %s) in time",
				c.service, cur.SerialNumber, l.NotAfter.Format(time.RFC3339))
		}
		var (
			next      *consulLeaf
			nextIndex uint64
			err       error
		)
		if current {
			next, nextIndex, err = c.fetchLeaf(ctx, index, max(min(c.wait, left), time.Second))
		} else {
			t := time.NewTimer(min(pause, left))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			pause = min(2*pause, 5*time.Second)
			next, nextIndex, err = c.fetchLeaf(ctx, 0, 0)
		}
		if err != nil {
			return nil, err
		}
		if next.SerialNumber != cur.SerialNumber {
			return next, nil
		}
		index = consulx.NextIndex(index, nextIndex)
	}
}

// fetchLeaf gets the service's leaf; a non-zero index makes it a blocking
// query that returns once the leaf's index passes index or wait is over.
func (c *consulIssuer) fetchLeaf(ctx context.Context, index uint64, wait time.Duration) (*consulLeaf, uint64, error) {
	var leaf consulLeaf
	meta, err := c.query(ctx, "/v1/agent/connect/ca/leaf/"+url.PathEscape(c.service), &leaf, index, wait)
	if err != nil {
		return nil, 0, fmt.Errorf("certs: consul: leaf certificate of %q: %w", c.service, c.describe(err))
	}
	if leaf.SerialNumber == "" || leaf.CertPEM == "" || leaf.PrivateKeyPEM == "" {
		return nil, 0, c.malformedLeaf("missing SerialNumber, CertPEM or PrivateKeyPEM")
	}
	idx := meta.LastIndex
	if idx == 0 {
		idx = leaf.ModifyIndex
	}
	return &leaf, idx, nil
}

// fetchRoots gets the roots, blocking as fetchLeaf does.
func (c *consulIssuer) fetchRoots(ctx context.Context, index uint64) (*consulRoots, uint64, error) {
	var body consulRootsBody
	meta, err := c.query(ctx, "/v1/agent/connect/ca/roots", &body, index, c.wait)
	if err != nil {
		return nil, 0, fmt.Errorf("certs: consul: CA roots: %w", c.describe(err))
	}
	roots, err := parseConsulRoots(&body)
	if err != nil {
		return nil, 0, fmt.Errorf("certs: consul: CA roots: malformed response: %w", err)
	}
	if !c.td.IsZero() && roots.td != c.td {
		return nil, 0, fmt.Errorf("certs: consul: CA roots: the trust domain changed from %s to %s (a new cluster ID?); restart to follow it", c.td, roots.td)
	}
	return roots, meta.LastIndex, nil
}

// query sends a GET; with index > 0 it is a blocking query waiting up to
// wait.
func (c *consulIssuer) query(ctx context.Context, path string, out any, index uint64, wait time.Duration) (*api.QueryMeta, error) {
	timeout := c.timeout
	q := &api.QueryOptions{}
	if index > 0 {
		q.WaitIndex, q.WaitTime = index, wait
		timeout = wait + wait/16 + c.timeout // Consul adds up to wait/16 of jitter
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.client.Raw().Query(path, out, q.WithContext(ctx))
}

// parseConsulRoots checks a roots response: a valid trust domain, at least
// one root, every RootCert exactly one CA certificate, the active root
// among them, and its intermediates parseable.
func parseConsulRoots(body *consulRootsBody) (*consulRoots, error) {
	td, err := spiffeid.TrustDomainFromString(strings.ToLower(body.TrustDomain))
	if err != nil || body.TrustDomain == "" {
		return nil, fmt.Errorf("TrustDomain %q: %v", body.TrustDomain, errOrString(err, "empty"))
	}
	if len(body.Roots) == 0 {
		return nil, errors.New("no roots")
	}
	out := &consulRoots{td: td}
	active := false
	for i, r := range body.Roots {
		certs, err := pemCertificates([]byte(r.RootCert), false)
		switch {
		case err != nil:
			return nil, fmt.Errorf("Roots[%d] (%s): RootCert: %v", i, r.ID, err)
		case len(certs) != 1:
			return nil, fmt.Errorf("Roots[%d] (%s): RootCert: %d certificates, want 1", i, r.ID, len(certs))
		case !certs[0].IsCA:
			return nil, fmt.Errorf("Roots[%d] (%s): RootCert is not a CA certificate", i, r.ID)
		}
		if !containsCert(out.roots, certs[0]) {
			out.roots = append(out.roots, certs[0])
		}
		isActive := r.ID == body.ActiveRootID
		if isActive != r.Active && body.ActiveRootID != "" {
			return nil, fmt.Errorf("Roots[%d] (%s): Active is %v but ActiveRootID is %q", i, r.ID, r.Active, body.ActiveRootID)
		}
		if !r.Active {
			continue
		}
		if active {
			return nil, fmt.Errorf("Roots[%d] (%s): a second active root", i, r.ID)
		}
		active = true
		out.active = certs[0]
		for j, p := range r.IntermediateCerts {
			ics, err := pemCertificates([]byte(p), false)
			if err != nil {
				return nil, fmt.Errorf("Roots[%d] (%s): IntermediateCerts[%d]: %v", i, r.ID, j, err)
			}
			out.intermediates = append(out.intermediates, ics...)
		}
	}
	if !active {
		return nil, fmt.Errorf("no active root (ActiveRootID %q)", body.ActiveRootID)
	}
	return out, nil
}

// parseLeaf checks a leaf response and returns the SVID: the chain is the
// leaf's CertPEM (the leaf, then the active root's intermediates), with any
// intermediate of the active root it lacks appended.
func (c *consulIssuer) parseLeaf(leaf *consulLeaf, roots *consulRoots) (*x509svid.SVID, error) {
	chain, err := pemCertificates([]byte(leaf.CertPEM), false)
	if err != nil {
		return nil, c.malformedLeaf("CertPEM: %v", err)
	}
	key, err := pemPrivateKey([]byte(leaf.PrivateKeyPEM), false)
	if err != nil {
		return nil, c.malformedLeaf("PrivateKeyPEM: %v", err)
	}
	for _, ic := range roots.intermediates {
		if !containsCert(chain, ic) {
			chain = append(chain, ic)
		}
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("certs: consul: refusing the leaf certificate the agent returned for %q (serial %s): %s",
			c.service, leaf.SerialNumber, fmt.Sprintf(format, args...))
	}
	id, err := checkSVIDChain(chain, key)
	if err != nil {
		return nil, refuse("%v", err)
	}
	l := chain[0]
	switch {
	case id != c.id:
		return nil, refuse("its SPIFFE ID is %s, want %s", id, c.id)
	case len(l.DNSNames)+len(l.IPAddresses)+len(l.EmailAddresses) > 0:
		return nil, refuse("it has DNS, IP or email SANs besides the SPIFFE ID")
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

func (c *consulIssuer) malformedLeaf(format string, args ...any) error {
	return fmt.Errorf("certs: consul: leaf certificate of %q: malformed response: %s", c.service, fmt.Sprintf(format, args...))
}

// WatchBundles implements BundleWatcher: it follows the agent's roots with
// blocking queries and reports them when they change. Errors (an
// unreachable agent, a malformed response) are returned to the Rotator,
// which logs them and calls again after a backoff; the last good roots stay
// in use meanwhile.
func (c *consulIssuer) WatchBundles(ctx context.Context, update func([]*x509bundle.Bundle)) error {
	var (
		index uint64
		last  []*x509.Certificate
		// At most one request a second on average (bursts of 2), so an
		// agent answering at once (a flapping index) cannot make it spin.
		pace = rate.NewLimiter(rate.Every(time.Second), 2)
	)
	for first := true; ; first = false {
		if err := pace.Wait(ctx); err != nil {
			return err
		}
		roots, next, err := c.fetchRoots(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if first || !sameCertSet(roots.roots, last) {
			last = roots.roots
			update([]*x509bundle.Bundle{x509bundle.FromX509Authorities(c.td, roots.roots)})
		}
		index = consulx.NextIndex(index, next)
	}
}

// describe makes a Consul API error one readable line.
func (c *consulIssuer) describe(err error) error {
	var se api.StatusError
	if errors.As(err, &se) {
		body := strings.TrimSpace(se.Body)
		switch {
		case se.Code == 403:
			return fmt.Errorf("permission denied (the token needs service:write on %q): %s", c.service, body)
		case se.Code == 404 && strings.Contains(body, "CA"):
			return fmt.Errorf("Connect is not enabled on the agent: %s", body)
		}
		return fmt.Errorf("HTTP %d: %s", se.Code, body)
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	if errors.As(err, &syntax) || errors.As(err, &typ) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("malformed response: %w", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach the Consul agent: %w", ue.Err)
	}
	return err
}

func errOrString(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}
