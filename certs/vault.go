package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/internal/plainhttp"
)

// Defaults of VaultConfig.
const (
	DefaultVaultMount          = "pki"
	DefaultVaultBundleRefresh  = time.Minute
	DefaultVaultRequestTimeout = 10 * time.Second
	// DefaultVaultRootRetention is how long a root that left the mount stays
	// trusted when the role's max_ttl cannot be read.
	DefaultVaultRootRetention = 24 * time.Hour
)

// VaultConfig configures NewVault. Service and TrustDomain are required;
// everything else has a default.
type VaultConfig struct {
	// Service is the service's name; its SPIFFE ID is
	// spiffe://<TrustDomain>/ns/default/dc/<Datacenter>/svc/<Service>.
	Service     string
	TrustDomain spiffeid.TrustDomain
	// Datacenter defaults to "dc1".
	Datacenter string

	// Address is Vault's URL. Default: VAULT_ADDR, else vault/api's default
	// (https://127.0.0.1:8200). Likewise the TLS settings default to
	// VAULT_CACERT, VAULT_CLIENT_CERT, ... (vault/api's own environment).
	Address string
	// AllowHTTP lets Address be a plain http:// URL to a host other than
	// this machine. Without it NewVault refuses one: over plain HTTP anyone
	// on the path can read the Vault token and inject a root into the trust
	// bundle. Loopback addresses (a dev server) need no permission.
	AllowHTTP bool
	// TLS, if not nil, replaces the TLS settings from the environment.
	TLS *api.TLSConfig
	// Namespace is the Vault Enterprise namespace (default VAULT_NAMESPACE).
	Namespace string
	// Auth is how to log in. Default: VaultToken with VAULT_TOKEN.
	Auth VaultAuth
	// RequestTimeout bounds each request to Vault (default 10s). Failed
	// requests are not retried by the client: the Rotator retries the
	// issuance with backoff.
	RequestTimeout time.Duration

	// Mount is the PKI secrets engine's path (default "pki").
	Mount string
	// Role is the PKI role that signs (default: Service). It must allow
	// exactly this service's SPIFFE ID as a URI SAN (see BootstrapVault).
	Role string
	// TTL is the lifetime asked for each certificate (default: the role's
	// ttl). Vault caps it at the role's max_ttl.
	TTL time.Duration

	// BundleRefresh is how often the mount's issuers are read for the trust
	// bundle (default 1m). The bundle is also read after every issuance.
	BundleRefresh time.Duration
	// RootRetention is how long a root that no longer appears in the mount's
	// issuers is still trusted, so that peers' leaves issued under it keep
	// verifying until they expire (spec: drop an old root only max_ttl after
	// the switch). Default: the role's max_ttl if the token may read the role,
	// else 24h; never past the root's own NotAfter. Roots of revoked issuers
	// are dropped at once.
	RootRetention time.Duration
}

// NewVault returns a Rotator whose SVIDs are signed by Vault's PKI secrets
// engine: each issuance generates an ECDSA P-256 key in the process and sends
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
// within the root change window (WithRootChangeWindow, 30s by default).
//
// NewVault logs in, checks the mount and issues the first SVID before it
// returns; errors name what is wrong (an unreachable Vault, a rejected token,
// a missing mount or role, a role that refuses the SPIFFE ID, ...). Later
// failures are retried by the Rotator and show in its logs and metrics. The
// Vault token is renewed with vault/api's LifetimeWatcher and replaced by a
// new login when it cannot be renewed any more or Vault rejects it. Close the
// Rotator to stop everything.
func NewVault(ctx context.Context, cfg VaultConfig, opts ...Option) (*Rotator, error) {
	v, err := newVaultIssuer(ctx, cfg, newConfig(opts))
	if err != nil {
		return nil, err
	}
	r, err := NewRotator(ctx, v, opts...)
	if err != nil {
		return nil, err
	}
	v.rotator.Store(r)
	return r, nil
}

// vaultIssuer is the Issuer (and BundleWatcher) of NewVault.
type vaultIssuer struct {
	id        spiffeid.ID
	td        spiffeid.TrustDomain
	mount     string
	role      string
	ttl       time.Duration
	refresh   time.Duration
	retention time.Duration
	timeout   time.Duration
	client    *api.Client
	keeper    *tokenKeeper
	log       *slog.Logger
	window    time.Duration           // the Rotator's root change window
	rotator   atomic.Pointer[Rotator] // set once NewRotator returns

	mu          sync.Mutex
	roots       map[[sha256.Size]byte]*vaultRoot
	leafIssuer  []byte // raw issuing CA of the current leaf
	renewForDef string // default issuer for which a re-issue was asked
}

type vaultRoot struct {
	cert     *x509.Certificate
	lastSeen time.Time
}

func newVaultIssuer(ctx context.Context, cfg VaultConfig, rc config) (*vaultIssuer, error) {
	if cfg.Datacenter == "" {
		cfg.Datacenter = "dc1"
	}
	id, err := ztn.NewServiceID(cfg.TrustDomain, cfg.Datacenter, cfg.Service).SPIFFEID()
	if err != nil {
		return nil, fmt.Errorf("certs: vault: service %q: %w", cfg.Service, err)
	}
	mount := strings.Trim(cfg.Mount, "/")
	if mount == "" {
		mount = DefaultVaultMount
	}
	role := cfg.Role
	if role == "" {
		role = cfg.Service
	}
	if strings.ContainsAny(role, "/?#") {
		return nil, fmt.Errorf("certs: vault: invalid role name %q", role)
	}
	if cfg.TTL < 0 || cfg.BundleRefresh < 0 || cfg.RootRetention < 0 || cfg.RequestTimeout < 0 {
		return nil, errors.New("certs: vault: negative duration in VaultConfig")
	}
	timeout := cmpOr(cfg.RequestTimeout, DefaultVaultRequestTimeout)

	ac := api.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("certs: vault: configuration from the environment: %w", ac.Error)
	}
	if cfg.Address != "" {
		ac.Address = cfg.Address
	}
	if err := plainhttp.Check(ac.Address, false, cfg.AllowHTTP, "VaultConfig.Address", "set VaultConfig.AllowHTTP"); err != nil {
		return nil, fmt.Errorf("certs: vault: %w", err)
	}
	if cfg.TLS != nil {
		if err := ac.ConfigureTLS(cfg.TLS); err != nil {
			return nil, fmt.Errorf("certs: vault: TLS configuration: %w", err)
		}
	}
	ac.Timeout = timeout
	ac.MaxRetries = 0 // the Rotator retries, with backoff
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("certs: vault: client for %s: %w", ac.Address, err)
	}
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	auth := cfg.Auth
	if auth == nil {
		token := client.Token() // VAULT_TOKEN
		if token == "" {
			return nil, errors.New("certs: vault: no Auth in VaultConfig and VAULT_TOKEN is not set")
		}
		auth = VaultToken(token)
	}
	client.ClearToken()

	v := &vaultIssuer{
		id: id, td: cfg.TrustDomain, mount: mount, role: role, ttl: cfg.TTL,
		refresh:   cmpOr(cfg.BundleRefresh, DefaultVaultBundleRefresh),
		retention: cfg.RootRetention,
		timeout:   timeout,
		client:    client,
		log:       rc.logger,
		window:    rc.rootChangeWindow,
		roots:     make(map[[sha256.Size]byte]*vaultRoot),
	}
	v.keeper, err = newTokenKeeper(client, auth, rc.logger, rc.minBackoff, rc.maxBackoff)
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
func (v *vaultIssuer) roleMaxTTL(ctx context.Context) time.Duration {
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
		err = describeVaultError(v.client.Address(), err)
	}
	v.log.Info("certs: vault: no max_ttl read from the role; a root that leaves the mount stays trusted for the default retention",
		"role", v.role, "mount", v.mount, "retention", DefaultVaultRootRetention, "reason", err.Error())
	return DefaultVaultRootRetention
}

// signResponse is the data of <mount>/sign/<role> with format=pem.
type signResponse struct {
	Certificate string   `json:"certificate"`
	IssuingCA   string   `json:"issuing_ca"`
	CAChain     []string `json:"ca_chain"`
}

// Issue implements Issuer.
func (v *vaultIssuer) Issue(ctx context.Context) (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: vault: generate key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{v.id.URL()}}, key)
	if err != nil {
		return nil, fmt.Errorf("certs: vault: CSR: %w", err)
	}
	body := map[string]any{
		"csr":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		"format": "pem",
	}
	if v.ttl > 0 {
		body["ttl"] = fmt.Sprintf("%ds", int64((v.ttl+time.Second-1)/time.Second))
	}
	start := time.Now()
	var resp signResponse
	warnings, err := v.doWarn(ctx, http.MethodPost, v.mount+"/sign/"+v.role, body, &resp)
	latency := time.Since(start)
	if err != nil {
		return nil, v.signError(err)
	}
	chain, issuingCA, responseRoots, err := v.parseSigned(&resp, key)
	if err != nil {
		return nil, err
	}
	leaf := chain[0]
	v.log.Debug("certs: vault: certificate signed",
		"spiffe_id", v.id.String(), "role", v.role, "mount", v.mount,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter,
		"latency", latency, "warnings", warnings)

	v.mu.Lock()
	v.leafIssuer = issuingCA
	v.mu.Unlock()
	roots, err := v.refreshRoots(ctx)
	if err != nil {
		// The certificate is good; the bundle read failed. Keep what we
		// know, plus the roots Vault just returned with the certificate.
		v.log.Warn("certs: vault: reading the trust bundle after issuance failed; using the last one", "error", err)
		roots = v.addRoots(time.Now(), responseRoots)
	}
	return &Identity{
		SVID:    &x509svid.SVID{ID: v.id, Certificates: chain, PrivateKey: key},
		Bundles: []*x509bundle.Bundle{x509bundle.FromX509Authorities(v.td, roots)},
	}, nil
}

// parseSigned checks a signing response: the leaf must name exactly our
// SPIFFE ID, carry our key and be usable for mTLS. It returns the chain to
// serve (leaf, then intermediates, no self-signed root), the raw issuing CA
// and the self-signed roots of ca_chain.
func (v *vaultIssuer) parseSigned(resp *signResponse, key *ecdsa.PrivateKey) (chain []*x509.Certificate, issuingCA []byte, roots []*x509.Certificate, err error) {
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("certs: vault: sign with role %q at %s/: malformed response: %s", v.role, v.mount, fmt.Sprintf(format, args...))
	}
	leaves, err := parseCertsPEM(resp.Certificate)
	if err != nil {
		return nil, nil, nil, malformed("certificate: %v", err)
	}
	if len(leaves) != 1 {
		return nil, nil, nil, malformed("certificate: %d certificates, want 1", len(leaves))
	}
	leaf := leaves[0]
	if err := checkLeaf(leaf, key, v.id); err != nil {
		return nil, nil, nil, fmt.Errorf("certs: vault: sign with role %q at %s/: refusing the certificate Vault returned: %w", v.role, v.mount, err)
	}
	cas := resp.CAChain
	if len(cas) == 0 && resp.IssuingCA != "" {
		cas = []string{resp.IssuingCA}
	}
	if len(cas) == 0 {
		return nil, nil, nil, malformed("no issuing_ca or ca_chain")
	}
	chain = []*x509.Certificate{leaf}
	for i, p := range cas {
		certs, err := parseCertsPEM(p)
		if err != nil {
			return nil, nil, nil, malformed("ca_chain[%d]: %v", i, err)
		}
		for _, c := range certs {
			switch {
			case isSelfSigned(c):
				if !containsCert(roots, c) {
					roots = append(roots, c)
				}
			case !containsCert(chain, c):
				chain = append(chain, c)
			}
		}
	}
	if len(chain) > 1 {
		issuingCA = chain[1].Raw
	} else if len(roots) > 0 {
		issuingCA = roots[0].Raw
	}
	return chain, issuingCA, roots, nil
}

// checkLeaf verifies that leaf is the certificate we asked for.
func checkLeaf(leaf *x509.Certificate, key *ecdsa.PrivateKey, id spiffeid.ID) error {
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		got := make([]string, len(leaf.URIs))
		for i, u := range leaf.URIs {
			got[i] = u.String()
		}
		return fmt.Errorf("its URI SANs are %q, want exactly [%s]", got, id)
	}
	if n := len(leaf.DNSNames) + len(leaf.IPAddresses) + len(leaf.EmailAddresses); n > 0 {
		return fmt.Errorf("it has %d DNS, IP or email SANs besides the SPIFFE ID (check the role: allow_any_name, allowed_domains, allow_ip_sans)", n)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("its public key is not the one of our CSR")
	}
	if leaf.IsCA {
		return errors.New("it is a CA certificate")
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return errors.New("it lacks the client or server auth extended key usage (set client_flag and server_flag on the role)")
	}
	return nil
}

// signError turns a failed <mount>/sign/<role> into an error that says what
// is wrong.
func (v *vaultIssuer) signError(err error) error {
	what := fmt.Sprintf("sign with role %q at %s/", v.role, v.mount)
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("certs: vault: %s: %w", what, describeVaultError(v.client.Address(), err))
	}
	msg := vaultMessages(re)
	switch {
	case re.StatusCode == http.StatusForbidden && strings.Contains(msg, "invalid token"):
		v.keeper.kick()
		return fmt.Errorf("certs: vault: %s: Vault rejects the token (expired or revoked; logging in again): %s", what, msg)
	case re.StatusCode == http.StatusForbidden:
		v.keeper.kick()
		return fmt.Errorf("certs: vault: %s: permission denied (check the token's policy): %s", what, msg)
	case strings.Contains(msg, "unknown role"):
		return fmt.Errorf("certs: vault: role %q not found at %s/", v.role, v.mount)
	case strings.Contains(msg, "no handler for route"):
		return fmt.Errorf("certs: vault: mount %q not found (or it is not a PKI engine): %s", v.mount, msg)
	case strings.Contains(msg, "not valid for this role"), strings.Contains(msg, "role requires"):
		return fmt.Errorf("certs: vault: role %q at %s/ refuses the CSR for %s: %s", v.role, v.mount, v.id, msg)
	}
	return fmt.Errorf("certs: vault: %s: %w", what, describeVaultError(v.client.Address(), err))
}

// WatchBundles implements BundleWatcher: it reads the mount's issuers every
// BundleRefresh and reports the roots when they change. It also runs the
// token keeper, so that both end with the Rotator.
func (v *vaultIssuer) WatchBundles(ctx context.Context, update func([]*x509bundle.Bundle)) error {
	var wg sync.WaitGroup
	wg.Go(func() { v.keeper.run(ctx) })
	defer wg.Wait()

	ticker := time.NewTicker(v.refresh)
	defer ticker.Stop()
	var last []*x509.Certificate
	failing := false
	for first := true; ; first = false {
		roots, err := v.refreshRoots(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				v.log.Warn("certs: vault: reading the trust bundle failed; keeping the last one, retrying every refresh",
					"error", err, "refresh", v.refresh)
			}
			failing = true
		case err == nil:
			if failing {
				v.log.Info("certs: vault: reading the trust bundle works again")
			}
			failing = false
			if first || !sameCerts(roots, last) {
				last = roots
				update([]*x509bundle.Bundle{x509bundle.FromX509Authorities(v.td, roots)})
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// issuerJSON is the data of <mount>/issuer/<id>/json.
type issuerJSON struct {
	Certificate string   `json:"certificate"`
	CAChain     []string `json:"ca_chain"`
	Revoked     bool     `json:"revoked"`
}

// refreshRoots reads the mount's issuers and returns the roots to trust: the
// self-signed certificates of every unrevoked issuer's ca_chain, plus those
// that left the mount less than the retention ago. It also notices a change
// of default issuer and asks the Rotator for a new SVID.
func (v *vaultIssuer) refreshRoots(ctx context.Context) ([]*x509.Certificate, error) {
	var list struct {
		Keys    []string `json:"keys"`
		KeyInfo map[string]struct {
			IsDefault bool `json:"is_default"`
		} `json:"key_info"`
	}
	err := v.do(ctx, "LIST", v.mount+"/issuers", nil, &list)
	var re *api.ResponseError
	if errors.As(err, &re) {
		// LIST <pki>/issuers needs no token: a 403 means that there is no
		// PKI engine at the mount (Vault then applies the token's policy
		// to an unknown path), as does a 404 "no handler for route".
		msg := vaultMessages(re)
		switch {
		case re.StatusCode == http.StatusForbidden,
			re.StatusCode == http.StatusNotFound && strings.Contains(msg, "no handler for route"),
			re.StatusCode == http.StatusNotFound && strings.Contains(msg, "unsupported path"):
			return nil, fmt.Errorf("certs: vault: mount %q not found (or it is not a PKI engine): %s", v.mount, msg)
		case re.StatusCode == http.StatusNotFound:
			return nil, fmt.Errorf("certs: vault: mount %q has no issuers (set up a CA, e.g. with BootstrapVault)", v.mount)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("certs: vault: list issuers at %s/: %w", v.mount, describeVaultError(v.client.Address(), err))
	}
	if len(list.Keys) == 0 {
		return nil, fmt.Errorf("certs: vault: mount %q has no issuers (set up a CA, e.g. with BootstrapVault)", v.mount)
	}
	for _, id := range list.Keys {
		if id == "" || strings.ContainsAny(id, "/?#") {
			return nil, fmt.Errorf("certs: vault: list issuers at %s/: malformed response: issuer id %q", v.mount, id)
		}
	}
	// The issuers are read in parallel: this is on the issuance path.
	issuers := make([]issuerJSON, len(list.Keys))
	errs := make([]error, len(list.Keys))
	var wg sync.WaitGroup
	for i, id := range list.Keys {
		wg.Go(func() { errs[i] = v.do(ctx, http.MethodGet, v.mount+"/issuer/"+id+"/json", nil, &issuers[i]) })
	}
	wg.Wait()
	var current, revoked []*x509.Certificate
	var defaultCert []byte
	defaultID := ""
	for i, id := range list.Keys {
		if err := errs[i]; err != nil {
			return nil, fmt.Errorf("certs: vault: read issuer %s at %s/: %w", id, v.mount, describeVaultError(v.client.Address(), err))
		}
		is := &issuers[i]
		own, err := parseCertsPEM(is.Certificate)
		if err != nil || len(own) != 1 {
			return nil, fmt.Errorf("certs: vault: read issuer %s at %s/: malformed response: certificate: %v", id, v.mount, errOr(err, "want exactly one"))
		}
		if list.KeyInfo[id].IsDefault {
			defaultID, defaultCert = id, own[0].Raw
		}
		if is.Revoked {
			revoked = append(revoked, own[0])
			continue
		}
		for i, p := range is.CAChain {
			certs, err := parseCertsPEM(p)
			if err != nil {
				return nil, fmt.Errorf("certs: vault: read issuer %s at %s/: malformed response: ca_chain[%d]: %v", id, v.mount, i, err)
			}
			for _, c := range certs {
				if isSelfSigned(c) && !containsCert(current, c) {
					current = append(current, c)
				}
			}
		}
	}
	current = slices.DeleteFunc(current, func(c *x509.Certificate) bool { return containsCert(revoked, c) })
	if len(current) == 0 {
		return nil, fmt.Errorf("certs: vault: no root certificate in the ca_chain of any issuer at %s/ (import the root into the mount)", v.mount)
	}

	now := time.Now()
	v.mu.Lock()
	for _, c := range revoked {
		delete(v.roots, sha256.Sum256(c.Raw))
	}
	v.mu.Unlock()
	roots := v.addRoots(now, current)
	v.noticeDefault(defaultID, defaultCert)
	return roots, nil
}

// addRoots records that the mount reports current now and returns the
// roots to trust.
func (v *vaultIssuer) addRoots(now time.Time, current []*x509.Certificate) []*x509.Certificate {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range current {
		k := sha256.Sum256(c.Raw)
		if r := v.roots[k]; r != nil {
			r.lastSeen = now
		} else {
			v.roots[k] = &vaultRoot{cert: c, lastSeen: now}
		}
	}
	out := make([]*x509.Certificate, 0, len(v.roots))
	for k, r := range v.roots {
		if now.Sub(r.lastSeen) > v.retention || now.After(r.cert.NotAfter) {
			delete(v.roots, k)
			continue
		}
		out = append(out, r.cert)
	}
	// A stable order: oldest root first.
	slices.SortFunc(out, func(a, b *x509.Certificate) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
	return out
}

// noticeDefault asks for a new SVID, once per default issuer, when the
// mount's default issuer is not the one that signed the current leaf.
func (v *vaultIssuer) noticeDefault(id string, cert []byte) {
	r := v.rotator.Load()
	if id == "" || r == nil {
		return
	}
	v.mu.Lock()
	ask := v.leafIssuer != nil && !bytes.Equal(v.leafIssuer, cert) && v.renewForDef != id
	if ask {
		v.renewForDef = id
	}
	v.mu.Unlock()
	if ask {
		v.log.Info("certs: vault: the mount's default issuer changed; re-issuing soon",
			"mount", v.mount, "issuer", id, "within", v.window)
		r.RenewSoon(v.window)
	}
}

// vaultEnvelope is Vault's response body.
type vaultEnvelope struct {
	Data     json.RawMessage `json:"data"`
	Warnings []string        `json:"warnings"`
}

// do sends a request to /v1/<path> and decodes the response's data into out.
func (v *vaultIssuer) do(ctx context.Context, method, path string, in, out any) error {
	_, err := v.doWarn(ctx, method, path, in, out)
	return err
}

func (v *vaultIssuer) doWarn(ctx context.Context, method, path string, in, out any) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	r := v.client.NewRequest(method, "/v1/"+path)
	if method == "LIST" {
		r.Method = http.MethodGet
		r.Params.Set("list", "true")
	}
	if in != nil {
		if err := r.SetJSONBody(in); err != nil {
			return nil, err
		}
	}
	resp, err := v.client.RawRequestWithContext(ctx, r)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	var env vaultEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("malformed response (HTTP %d): %v", resp.StatusCode, err)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return env.Warnings, fmt.Errorf("malformed response (HTTP %d): no data", resp.StatusCode)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return env.Warnings, fmt.Errorf("malformed response (HTTP %d): %v", resp.StatusCode, err)
	}
	return env.Warnings, nil
}

// describeVaultError makes a vault/api error one readable line.
func describeVaultError(addr string, err error) error {
	var re *api.ResponseError
	switch {
	case errors.As(err, &re):
		msg := vaultMessages(re)
		switch {
		case re.StatusCode == http.StatusForbidden && strings.Contains(msg, "invalid token"):
			return fmt.Errorf("Vault rejects the token (invalid, expired or revoked): %s", msg)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("permission denied (check the token's policy): %s", msg)
		case re.StatusCode == http.StatusServiceUnavailable:
			return fmt.Errorf("Vault is unavailable (sealed or in standby?): %s", msg)
		}
		return fmt.Errorf("HTTP %d: %s", re.StatusCode, msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach Vault at %s: %w", addr, ue.Err)
	}
	return err
}

// vaultMessages returns the errors of a Vault response on one line. Vault
// nests multi-errors as "2 errors occurred:\n\t* a\n\t* b".
func vaultMessages(re *api.ResponseError) string {
	var out []string
	for _, e := range re.Errors {
		for _, line := range strings.Split(e, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
			if line == "" || strings.HasSuffix(line, "occurred:") || slices.Contains(out, line) {
				continue
			}
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return http.StatusText(re.StatusCode)
	}
	return strings.Join(out, "; ")
}

// parseCertsPEM parses one or more PEM CERTIFICATE blocks and nothing else.
func parseCertsPEM(s string) ([]*x509.Certificate, error) {
	rest := []byte(strings.TrimSpace(s))
	if len(rest) == 0 {
		return nil, errors.New("empty")
	}
	var out []*x509.Certificate
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("not PEM")
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block of type %q, want CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		rest = bytes.TrimSpace(rest)
	}
	return out, nil
}

// isSelfSigned reports whether c is a self-signed CA certificate (a root).
func isSelfSigned(c *x509.Certificate) bool {
	return c.IsCA && bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

func sameCerts(a, b []*x509.Certificate) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(c *x509.Certificate) bool { return !containsCert(b, c) })
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func errOr(err error, msg string) any {
	if err != nil {
		return err
	}
	return msg
}
