package ztnenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	ztnconsul "github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/internal/plainhttp"
	"github.com/ztnlabs/ztn/ztnet"
)

// Environment variables read by New and the package-level Listen and Dial.
const (
	EnvDev         = "ZTN_DEV"          // "1": the embedded dev mesh (in-process only)
	EnvService     = "ZTN_SERVICE"      // the name this process dials as
	EnvIntentions  = "ZTN_INTENTIONS"   // dev mesh: a service-intentions JSON file
	EnvTrustDomain = "ZTN_TRUST_DOMAIN" // the SPIFFE trust domain (mesh: required; dev: default ztn.dev)
	EnvDatacenter  = "ZTN_DATACENTER"   // the datacenter in SPIFFE IDs (mesh: required; dev: default dc1)
	EnvCertTTL     = "ZTN_CERT_TTL"     // certificate lifetime, a Go duration (mesh: default the role's ttl; dev: 1h)
	EnvAllowHTTP   = "ZTN_ALLOW_HTTP"   // "1": allow plain http:// to a Consul or Vault that is not on this machine
	EnvPKIMount    = "ZTN_PKI_MOUNT"    // mesh: the Vault PKI mount that signs service certificates
	EnvPKIRole     = "ZTN_PKI_ROLE"     // mesh: the PKI role that signs; "{service}" stands for the service name

	// The variables of Consul's and Vault's own clients that mesh mode
	// reads. Their TLS settings (CONSUL_CACERT, CONSUL_HTTP_SSL,
	// VAULT_CACERT, VAULT_SKIP_VERIFY, ...) are read by consul/api and
	// vault/api themselves, from the process environment.
	EnvConsulAddr      = consul.HTTPAddrEnvName      // CONSUL_HTTP_ADDR: the Consul agent's HTTP API
	EnvConsulToken     = consul.HTTPTokenEnvName     // CONSUL_HTTP_TOKEN: its ACL token (optional)
	EnvConsulTokenFile = consul.HTTPTokenFileEnvName // CONSUL_HTTP_TOKEN_FILE: a file holding it (optional)
	EnvVaultAddr       = "VAULT_ADDR"                // Vault's URL
	EnvVaultToken      = "VAULT_TOKEN"               // a token allowed to sign with the PKI roles
	EnvVaultNamespace  = "VAULT_NAMESPACE"           // Vault Enterprise namespace (optional)
)

// roleService is the placeholder for the service name in ZTN_PKI_ROLE.
const roleService = "{service}"

// envSetupTimeout bounds the setup of a ztnet.Service (its first certificate from
// Vault, its first intentions from Consul) when the caller's context has no
// earlier deadline, so a mesh that cannot be reached gives an error instead
// of a hang.
const envSetupTimeout = 30 * time.Second

// What each required setting is, for the errors that ask for it.
var envHelp = map[string]string{
	EnvConsulAddr:  "the Consul agent's HTTP API, e.g. 127.0.0.1:8500",
	EnvVaultAddr:   "Vault's address, e.g. https://vault.example.com:8200 (plain http:// only to this machine)",
	EnvVaultToken:  "a Vault token allowed to sign with the services' PKI roles",
	EnvPKIMount:    "the Vault PKI mount that signs service certificates, e.g. pki",
	EnvPKIRole:     "the PKI role that signs, " + roleService + " standing for the service name; vault-bootstrap names each role after its service: " + roleService,
	EnvTrustDomain: "the SPIFFE trust domain of the PKI, e.g. example.org",
	EnvDatacenter:  "the datacenter in the services' SPIFFE IDs, as given to vault-bootstrap, e.g. dc1",
}

// Error is New's error when settings are missing or invalid. It lists
// them all at once.
type Error struct {
	Missing []string // variables to set
	Invalid []string // "VAR=value: why" for variables set to something unusable
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ztnenv: environment:")
	if len(e.Missing) > 0 {
		b.WriteString(" set ")
		for i, v := range e.Missing {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v)
			if h := envHelp[v]; h != "" {
				b.WriteString(" (" + h + ")")
			}
		}
	}
	if len(e.Invalid) > 0 {
		if len(e.Missing) > 0 {
			b.WriteString(";")
		}
		b.WriteString(" fix ")
		b.WriteString(strings.Join(e.Invalid, "; "))
	}
	b.WriteString("; or set " + EnvDev + "=1 for the embedded dev mesh")
	return b.String()
}

// Env is a mesh configured from environment variables, with one ztnet.Service per
// name used. The package-level Listen and Dial use one, made on first use.
type Env struct {
	dev     *ztnet.Dev
	mesh    *meshEnv
	self    string
	logger  *slog.Logger
	svcOpts []ztnet.Option // WithServiceOptions

	ctx    context.Context // canceled by Close: aborts Services being set up
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	services map[string]*envService
}

// envService is a ztnet.Service being set up or ready.
type envService struct {
	ready chan struct{} // closed once svc or err is set
	svc   *ztnet.Service
	owned *owned // mesh mode: what Env made for the Service and closes after it
	err   error
}

// owned is what Env makes for a mesh-mode Service: its authorizer and its
// certificate source, closed after the Service.
type owned struct {
	az  *ztnconsul.Intentions
	src certs.Source
}

func (o *owned) Close() error { return errors.Join(o.az.Close(), o.src.Close()) }

// meshEnv is mesh mode's shared part: one Consul client and one
// consul.Catalog (Resolver, Registrar and Picker) for every Service.
type meshEnv struct {
	transport *http.Transport
	addr      string // CONSUL_HTTP_ADDR
	consul    *consul.Client
	disc      *ztnconsul.Catalog
	vault     vault.Config // without ztnet.Service and Role
	role      string       // may hold roleService
}

// Option configures New.
type Option interface{ applyEnv(*envConfig) }

type envOption func(*envConfig)

func (o envOption) applyEnv(c *envConfig) { o(c) }

type envConfig struct {
	logger  *slog.Logger
	svcOpts []ztnet.Option
}

// WithLogger sets the logger of the mesh and its services
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return envOption(func(c *envConfig) { c.logger = l }) }

// WithServiceOptions adds opts to every ztnet.Service the Env makes, after
// its own (so they win): a program's tracer and meter providers
// (ztnet.WithTracerProvider, ztnet.WithMeterProvider), handshake limits,
// and so on. The identity, intentions and discovery options are the Env's
// to set; giving them here replaces what the environment configures.
func WithServiceOptions(opts ...ztnet.Option) Option {
	return envOption(func(c *envConfig) { c.svcOpts = append(c.svcOpts, opts...) })
}

// New configures a mesh from the variables getenv returns (os.Getenv when
// nil). Missing or invalid settings give an error naming every one to set or
// fix (an *Error for Consul and Vault); there is no silent fallback.
//
// ZTN_DEV=1 selects the embedded dev mesh (see ztnet.NewDev): everything in this
// process, intentions from the file ZTN_INTENTIONS names, ZTN_TRUST_DOMAIN
// (default ztn.dev), ZTN_DATACENTER (default dc1) and ZTN_CERT_TTL (default
// 1h) optional.
//
// Otherwise (ZTN_DEV unset or 0) the mesh is Consul and Vault, and these are
// required:
//
//	CONSUL_HTTP_ADDR  the Consul agent (CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE: its ACL token, if any)
//	VAULT_ADDR        Vault
//	VAULT_TOKEN       a Vault token allowed to sign with the roles below
//	ZTN_PKI_MOUNT     the PKI mount that signs service certificates
//	ZTN_PKI_ROLE      the role that signs, "{service}" standing for the service name
//	ZTN_TRUST_DOMAIN  the SPIFFE trust domain of the PKI
//	ZTN_DATACENTER    the datacenter in the services' SPIFFE IDs
//
// ZTN_CERT_TTL (default: the role's ttl) and VAULT_NAMESPACE are optional.
// Plain http:// (or, for Consul, an address without https:// and without
// CONSUL_HTTP_SSL=true) is accepted only to this machine (localhost, a
// loopback IP): elsewhere anyone on the path could forge trust roots and
// intentions. ZTN_ALLOW_HTTP=1 allows it anyway, for a test lab.
// The datacenter is not taken from the Consul agent: it must match the
// SPIFFE IDs the PKI roles allow (vault-bootstrap -datacenter), and reading
// the agent's needs an ACL permission (agent:read) services seldom have.
// Each ztnet.Service gets certificates from vault.New with the role for its
// name, intentions for its name from consul.NewIntentions, and shares one
// consul.Catalog, which finds other services and registers listeners with
// a TTL health check.
//
// In both modes ZTN_SERVICE names the service Dial calls as; it is needed
// only to Dial. New itself makes no request: each ztnet.Service is set up, and
// any problem with Consul or Vault reported, on first use.
func New(getenv func(string) string, opts ...Option) (*Env, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var cfg envConfig
	for _, o := range opts {
		o.applyEnv(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	e := &Env{self: getenv(EnvService), logger: cfg.logger, svcOpts: cfg.svcOpts, services: make(map[string]*envService)}
	var invalid []string
	if e.self != "" {
		if err := validServiceName(e.self); err != nil {
			invalid = append(invalid, fmt.Sprintf("%s=%q: %v", EnvService, e.self, err))
		}
	}
	var err error
	switch dev := getenv(EnvDev); dev {
	case "1":
		e.dev, err = newDevFromEnv(getenv, cfg, invalid)
	case "", "0":
		e.mesh, err = newMeshFromEnv(getenv, cfg, invalid)
	default:
		return nil, fmt.Errorf("ztnenv: %s=%q: set it to 1 for the embedded dev mesh, or unset it for Consul and Vault", EnvDev, dev)
	}
	if err != nil {
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

func newDevFromEnv(getenv func(string) string, cfg envConfig, invalid []string) (*ztnet.Dev, error) {
	opts := []ztnet.DevOption{ztnet.WithLogger(cfg.logger)}
	if td := getenv(EnvTrustDomain); td != "" {
		opts = append(opts, ztnet.WithDevTrustDomain(td))
	}
	if dc := getenv(EnvDatacenter); dc != "" {
		opts = append(opts, ztnet.WithDevDatacenter(dc))
	}
	if v := getenv(EnvCertTTL); v != "" {
		ttl, err := parseTTL(v)
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("%s=%q: %v", EnvCertTTL, v, err))
		}
		opts = append(opts, ztnet.WithDevCertTTL(ttl))
	}
	if len(invalid) > 0 {
		return nil, fmt.Errorf("ztnenv: fix %s", strings.Join(invalid, "; "))
	}
	var ignored []string
	for _, v := range []string{EnvConsulAddr, EnvVaultAddr, EnvPKIMount, EnvPKIRole} {
		if getenv(v) != "" {
			ignored = append(ignored, v)
		}
	}
	if len(ignored) > 0 {
		cfg.logger.Warn("ztn: "+EnvDev+"=1: the embedded dev mesh ignores the Consul and Vault settings", "ignored", strings.Join(ignored, ","))
	}
	dev, err := ztnet.NewDev(opts...)
	if err != nil {
		return nil, err // "ztnenv: dev mesh: ..."
	}
	if f := getenv(EnvIntentions); f != "" {
		if err := dev.Policy().LoadFile(f); err != nil {
			return nil, fmt.Errorf("ztnenv: %s: %w", EnvIntentions, err)
		}
	} else {
		cfg.logger.Warn("ztn dev mesh has no intentions, so every connection is denied; set " + EnvIntentions + " to a service-intentions JSON file")
		if err := dev.Policy().Set(); err != nil {
			return nil, err
		}
	}
	return dev, nil
}

func newMeshFromEnv(getenv func(string) string, cfg envConfig, invalid []string) (*meshEnv, error) {
	var missing []string
	need := func(name string) string {
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	consulAddr := need(EnvConsulAddr)
	vaultAddr := need(EnvVaultAddr)
	vaultToken := need(EnvVaultToken)
	mount := strings.Trim(need(EnvPKIMount), "/")
	role := need(EnvPKIRole)
	tdName := need(EnvTrustDomain)
	dc := need(EnvDatacenter)

	if getenv(EnvPKIMount) != "" && mount == "" {
		invalid = append(invalid, fmt.Sprintf("%s=%q: not a mount path", EnvPKIMount, getenv(EnvPKIMount)))
	}
	if role != "" {
		if r := strings.ReplaceAll(role, roleService, "x"); strings.ContainsAny(r, "/?#{} \t") {
			invalid = append(invalid, fmt.Sprintf("%s=%q: a role name, with %s for the service name", EnvPKIRole, role, roleService))
		}
	}
	var td spiffeid.TrustDomain
	if tdName != "" {
		var err error
		if td, err = spiffeid.TrustDomainFromString(tdName); err != nil {
			invalid = append(invalid, fmt.Sprintf("%s=%q: %v", EnvTrustDomain, tdName, err))
		}
	}
	if dc != "" {
		if err := validDatacenter(dc); err != nil {
			invalid = append(invalid, fmt.Sprintf("%s=%q: %v", EnvDatacenter, dc, err))
		}
	}
	var ttl time.Duration
	if v := getenv(EnvCertTTL); v != "" {
		var err error
		if ttl, err = parseTTL(v); err != nil {
			invalid = append(invalid, fmt.Sprintf("%s=%q: %v", EnvCertTTL, v, err))
		}
	}
	allowHTTP := getenv(EnvAllowHTTP) == "1"
	for _, a := range []struct {
		name, addr   string
		tlsByDefault bool
	}{
		{EnvConsulAddr, consulAddr, strings.EqualFold(getenv(consul.HTTPSSLEnvName), "true") || getenv(consul.HTTPSSLEnvName) == "1"},
		{EnvVaultAddr, vaultAddr, false},
	} {
		if a.addr == "" {
			continue
		}
		if err := plainhttp.Check(a.addr, a.tlsByDefault, allowHTTP, a.name, "set "+EnvAllowHTTP+"=1"); err != nil {
			invalid = append(invalid, err.Error())
		}
	}
	if f := getenv(EnvIntentions); f != "" {
		invalid = append(invalid, fmt.Sprintf("%s=%q: only the dev mesh reads intentions from a file; with Consul they come from Consul (unset it)", EnvIntentions, f))
	}
	if len(missing) > 0 || len(invalid) > 0 {
		return nil, &Error{Missing: missing, Invalid: invalid}
	}

	// The Consul client: address and token as given; consul/api reads its TLS
	// settings from the process environment.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = runtime.GOMAXPROCS(0) + 1 // as consul/api's pooled transport
	client, err := consul.NewClient(&consul.Config{
		Address:   consulAddr,
		Token:     getenv(EnvConsulToken),
		TokenFile: getenv(EnvConsulTokenFile),
		Transport: tr,
	})
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("ztnenv: %s=%q: %w", EnvConsulAddr, consulAddr, err)
	}
	disc, err := ztnconsul.NewCatalog(ztnconsul.Config{Client: client}, ztnconsul.WithLogger(cfg.logger))
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("ztnenv: %w", err)
	}
	return &meshEnv{
		transport: tr,
		addr:      consulAddr,
		consul:    client,
		disc:      disc,
		vault: vault.Config{
			TrustDomain: td,
			Datacenter:  dc,
			Address:     vaultAddr,
			AllowHTTP:   allowHTTP,
			Namespace:   getenv(EnvVaultNamespace),
			Auth:        vault.Token(vaultToken),
			Mount:       mount,
			TTL:         ttl,
		},
		role: role,
	}, nil
}

func parseTTL(v string) (time.Duration, error) {
	ttl, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a Go duration such as 1h or 90s")
	}
	if ttl <= 0 {
		return 0, errors.New("must be positive")
	}
	return ttl, nil
}

// validServiceName checks a name the way SPIFFE IDs of services need it.
func validServiceName(name string) error {
	_, err := ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("ztn.invalid"), "dc1", name).SPIFFEID()
	if err != nil {
		return errors.New("not a service name (letters, digits, '-', '_', '.')")
	}
	return nil
}

func validDatacenter(dc string) error {
	_, err := ztn.NewServiceID(spiffeid.RequireTrustDomainFromString("ztn.invalid"), dc, "x").SPIFFEID()
	if err != nil {
		return errors.New("not a datacenter name (letters, digits, '-', '_', '.')")
	}
	return nil
}

// ztnet.Dev returns the embedded dev mesh, or nil in mesh mode.
func (e *Env) Dev() *ztnet.Dev { return e.dev }

// made reports whether e was made by New, and if not, why its methods
// fail.
func (e *Env) made() error {
	if e == nil || e.cancel == nil {
		return errors.New("ztnenv: Env not created with New")
	}
	return nil
}

// Consul returns mesh mode's Consul client, or nil for the dev mesh.
func (e *Env) Consul() *consul.Client {
	if e.mesh == nil {
		return nil
	}
	return e.mesh.consul
}

// ztnet.Service returns the ztnet.Service called name, setting it up on first use. In
// mesh mode that takes its first certificate from Vault and its first
// intentions from Consul, within ctx (at most 30s when ctx has no earlier
// deadline); a failure is returned, and the next call tries again.
func (e *Env) Service(ctx context.Context, name string) (*ztnet.Service, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, fmt.Errorf("ztnenv: service %s: environment closed", name)
		}
		es := e.services[name]
		mine := es == nil
		if mine {
			es = &envService{ready: make(chan struct{})}
			e.services[name] = es
		}
		e.mu.Unlock()
		if mine {
			es.svc, es.owned, es.err = e.newService(ctx, name)
			if es.err != nil {
				e.mu.Lock()
				delete(e.services, name)
				e.mu.Unlock()
			}
			close(es.ready)
			return es.svc, es.err
		}
		select {
		case <-es.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("ztnenv: service %s: %w", name, ctx.Err())
		}
		if es.err == nil {
			return es.svc, nil
		}
		// Its setup failed (perhaps for the other caller's context): try
		// again with ours.
	}
}

func (e *Env) newService(ctx context.Context, name string) (*ztnet.Service, *owned, error) {
	if e.dev != nil {
		s, err := e.dev.Service(ctx, name, e.svcOpts...)
		return s, nil, err
	}
	if err := validServiceName(name); err != nil {
		return nil, nil, fmt.Errorf("ztnenv: service %q: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, envSetupTimeout)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel) // Close aborts the setup
	defer stop()

	m := e.mesh
	vc := m.vault
	vc.Service = name
	vc.Role = strings.ReplaceAll(m.role, roleService, name)
	src, err := vault.New(ctx, vc, certs.WithLogger(e.logger))
	if err != nil {
		return nil, nil, fmt.Errorf("ztnenv: service %s: identity from Vault (%s=%s, %s=%s, role %s): %w",
			name, EnvVaultAddr, vc.Address, EnvPKIMount, vc.Mount, vc.Role, err)
	}
	az, err := ztnconsul.NewIntentions(ztnconsul.Config{Client: m.consul}, name, ztnconsul.WithLogger(e.logger))
	if err != nil {
		_ = src.Close()
		return nil, nil, fmt.Errorf("ztnenv: service %s: %w", name, err)
	}
	// Listeners admit callers from the start only if the intentions are
	// known: wait for them.
	if err := az.WaitSynced(ctx); err != nil {
		_ = az.Close()
		_ = src.Close()
		return nil, nil, fmt.Errorf("ztnenv: service %s: intentions from Consul (%s=%s): %w", name, EnvConsulAddr, m.addr, err)
	}
	s, err := ztnet.New(ctx, name, append([]ztnet.Option{ztnet.WithSource(src), ztnet.WithAuthorizer(az),
		ztnet.WithResolver(m.disc), ztnet.WithLogger(e.logger)}, e.svcOpts...)...)
	if err != nil {
		_ = az.Close()
		_ = src.Close()
		return nil, nil, err
	}
	return s, &owned{az: az, src: src}, nil
}

// Listen serves the service named by ZTN_SERVICE on addr, as
// (*ztnet.Service).Listen does (same arguments, same meaning). In mesh mode
// the listener is registered in Consul as an instance of the service, with
// a TTL health check, until it is closed.
func (e *Env) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	if e.self == "" {
		return nil, fmt.Errorf("ztnenv: listen %s: set %s to the name of the service", addr, EnvService)
	}
	s, err := e.Service(ctx, e.self)
	if err != nil {
		return nil, err
	}
	return s.Listen(ctx, network, addr)
}

// Dial connects to service as the service named by ZTN_SERVICE.
func (e *Env) Dial(ctx context.Context, service string) (*ztnet.Conn, error) {
	if err := e.made(); err != nil {
		return nil, err
	}
	if e.self == "" {
		return nil, fmt.Errorf("ztnenv: dial %s: set %s to the name of the calling service", service, EnvService)
	}
	s, err := e.Service(ctx, e.self)
	if err != nil {
		return nil, err
	}
	return s.Dial(ctx, service)
}

// Close closes every ztnet.Service of the environment (which deregisters their
// listeners) and, in mesh mode, stops watching Consul.
func (e *Env) Close() error {
	if err := e.made(); err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	services := e.services
	e.services = nil
	e.mu.Unlock()
	e.cancel()
	var errs []error
	for _, es := range services {
		<-es.ready
		if es.svc != nil {
			errs = append(errs, es.svc.Close())
		}
		if es.owned != nil {
			errs = append(errs, es.owned.Close())
		}
	}
	if e.mesh != nil {
		errs = append(errs, e.mesh.disc.Close())
		e.mesh.transport.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// The package-level functions share one Env, configured from the process
// environment on first use, like http.DefaultClient. Programs that want
// several meshes, or none of this, use Env, ztnet.Dev or ztnet.New directly.
var defaultEnv struct {
	once sync.Once
	env  *Env
	err  error
}

func environment() (*Env, error) {
	defaultEnv.once.Do(func() { defaultEnv.env, defaultEnv.err = New(nil) })
	return defaultEnv.env, defaultEnv.err
}

// Listen serves the service named by ZTN_SERVICE on addr through the mesh
// configured by the environment (see New), with the arguments of
// (*ztnet.Service).Listen: ztnenv.Listen(ctx, "tcp", ":8181").
func Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	e, err := environment()
	if err != nil {
		return nil, err
	}
	return e.Listen(ctx, network, addr)
}

// Dial connects to service through the mesh configured by the environment,
// as the service named by ZTN_SERVICE: ztnenv.Dial(ctx, "fortune").
func Dial(ctx context.Context, service string) (*ztnet.Conn, error) {
	e, err := environment()
	if err != nil {
		return nil, err
	}
	return e.Dial(ctx, service)
}
