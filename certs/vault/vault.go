package vault

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
	"github.com/ztnlabs/ztn/internal/plainhttp"
)

// New returns a [certs.Rotator] whose SVIDs are signed by Vault's PKI
// secrets engine: each issuance generates an ECDSA P-256 key in the process and sends
// a CSR carrying only the service's SPIFFE ID (URI SAN) to
// <Mount>/sign/<Role>; the private key never leaves the process and never
// touches disk. The returned certificate is accepted only if it has exactly
// that URI SAN, no other SAN, and our public key. The SVID's chain is the
// leaf and the intermediates Vault returns.
//
// The trust bundle is every self-signed certificate in the ca_chain of every
// issuer of the mount (LIST <Mount>/issuers, then <Mount>/issuer/<id>/json),
// read after each issuance and every BundleRefresh. When the mount's default
// issuer changes and the current leaf is not from it, the SVID is re-issued
// within the root change window ([certs.WithRootChangeWindow], 30s by
// default). opts configure the Rotator, and the logger and backoff serve
// the Vault client too.
//
// New logs in, checks the mount and issues the first SVID before it
// returns; errors name what is wrong (an unreachable Vault, a rejected token,
// a missing mount or role, a role that refuses the SPIFFE ID, ...). Later
// failures are retried by the Rotator and show in its logs and metrics. The
// Vault token is renewed with vault/api's LifetimeWatcher and replaced by a
// new login when it cannot be renewed any more or Vault rejects it. Close the
// Rotator to stop everything.
func New(ctx context.Context, cfg Config, opts ...certs.Option) (*certs.Rotator, error) {
	r, _, err := start(ctx, cfg, opts)
	return r, err
}

// start is New; it also returns the Rotator's issuer.
func start(ctx context.Context, cfg Config, opts []certs.Option) (*certs.Rotator, *issuer, error) {
	v, err := newIssuer(ctx, cfg, certsx.NewConfig(opts))
	if err != nil {
		return nil, nil, err
	}
	r, err := certs.NewRotator(ctx, v, opts...)
	if err != nil {
		return nil, nil, err
	}
	v.rotator.Store(r)
	return r, v, nil
}

// issuer is the certs.Issuer (and certs.BundleWatcher) of New.
type issuer struct {
	id        spiffeid.ID
	td        spiffeid.TrustDomain
	mount     string
	role      string
	cn        string // subject common name asked for, or ""
	ttl       time.Duration
	refresh   time.Duration
	retention time.Duration
	timeout   time.Duration
	client    *api.Client
	keeper    *tokenKeeper
	log       *slog.Logger
	window    time.Duration                 // the Rotator's root change window
	rotator   atomic.Pointer[certs.Rotator] // set once NewRotator returns

	mu          sync.Mutex
	roots       map[[sha256.Size]byte]*keptRoot
	leafIssuer  []byte // raw issuing CA of the current leaf
	renewForDef string // default issuer for which a re-issue was asked
}

type keptRoot struct {
	cert     *x509.Certificate
	lastSeen time.Time
}

func newIssuer(ctx context.Context, cfg Config, rc certsx.Config) (*issuer, error) {
	if cfg.Datacenter == "" {
		cfg.Datacenter = "dc1"
	}
	id, err := ztn.NewServiceID(cfg.TrustDomain, cfg.Datacenter, cfg.Service).SPIFFEID()
	if err != nil {
		return nil, fmt.Errorf("vault: service %q: %w", cfg.Service, err)
	}
	mount := strings.Trim(cfg.Mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	role := cfg.Role
	if role == "" {
		role = cfg.Service
	}
	if strings.ContainsAny(role, "/?#") {
		return nil, fmt.Errorf("vault: invalid role name %q", role)
	}
	if cfg.TTL < 0 || cfg.BundleRefresh < 0 || cfg.RootRetention < 0 || cfg.RequestTimeout < 0 {
		return nil, errors.New("vault: negative duration in Config")
	}
	timeout := cmpOr(cfg.RequestTimeout, DefaultRequestTimeout)

	ac := api.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("vault: configuration from the environment: %w", ac.Error)
	}
	if cfg.Address != "" {
		ac.Address = cfg.Address
	}
	if err := plainhttp.Check(ac.Address, false, cfg.AllowHTTP, "Config.Address", "set Config.AllowHTTP"); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if cfg.TLS != nil {
		if err := ac.ConfigureTLS(cfg.TLS); err != nil {
			return nil, fmt.Errorf("vault: TLS configuration: %w", err)
		}
	}
	ac.Timeout = timeout
	ac.MaxRetries = 0 // the Rotator retries, with backoff
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vault: client for %s: %w", ac.Address, err)
	}
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	auth := cfg.Auth
	if auth == nil {
		token := client.Token() // VAULT_TOKEN
		if token == "" {
			return nil, errors.New("vault: no Auth in Config and VAULT_TOKEN is not set")
		}
		auth = Token(token)
	}
	client.ClearToken()

	v := &issuer{
		id: id, td: cfg.TrustDomain, mount: mount, role: role, cn: cfg.CommonName, ttl: cfg.TTL,
		refresh:   cmpOr(cfg.BundleRefresh, DefaultBundleRefresh),
		retention: cfg.RootRetention,
		timeout:   timeout,
		client:    client,
		log:       rc.Logger,
		window:    rc.RootChangeWindow,
		roots:     make(map[[sha256.Size]byte]*keptRoot),
	}
	v.keeper, err = newTokenKeeper(client, auth, rc.Logger, rc.MinBackoff, rc.MaxBackoff)
	if err != nil {
		return nil, err
	}
	// The mount first: its issuers are readable without a token, so a wrong
	// address or mount is told apart from a login problem.
	if _, err := v.refreshRoots(ctx); err != nil {
		return nil, err
	}
	if err := v.keeper.loginOnce(ctx); err != nil {
		return nil, err
	}
	if v.retention == 0 {
		v.retention = v.roleMaxTTL(ctx)
	}
	return v, nil
}

// roleMaxTTL reads the role's max_ttl (if the token may), for the default
// root retention.
func (v *issuer) roleMaxTTL(ctx context.Context) time.Duration {
	var role struct {
		MaxTTL json.Number `json:"max_ttl"`
	}
	err := v.do(ctx, http.MethodGet, v.mount+"/roles/"+v.role, nil, &role)
	if err == nil {
		s, perr := role.MaxTTL.Int64()
		if perr == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
		err = fmt.Errorf("max_ttl %q", role.MaxTTL)
	} else {
		err = describeError(v.client.Address(), err)
	}
	v.log.Info("vault: no max_ttl read from the role; a root that leaves the mount stays trusted for the default retention",
		"role", v.role, "mount", v.mount, "retention", DefaultRootRetention, "reason", err.Error())
	return DefaultRootRetention
}

// cmpOr returns d if it is positive, else def.
func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
