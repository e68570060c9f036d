package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	ztnconsul "github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// meshConfig configures one component in mesh mode.
type meshConfig struct {
	// Mode is gateway, ui or appserver.
	Mode string
	// Addr is where it listens (gateway: the public plain-HTTP address).
	Addr string
	// Hostname is the app server's answer to /api/hostname.
	Hostname string
	// Postgres and Redis are the app server's stores (host:port).
	Postgres, Redis string
	// Peer is the federated trust domain, NAME=TRUST_DOMAIN@MOUNT (ui and
	// appserver).
	Peer string
	// DBPKI is where the app server's identity for Postgres and Redis
	// comes from, TRUST_DOMAIN@MOUNT: a Vault PKI mount of the databases'
	// own, whose CA is the only one they trust (see newDBIdentity).
	DBPKI string
	// HTTPSRole, if set, makes the gateway serve HTTPS with a certificate
	// for HTTPSName (default: Addr's host) signed by this role of the
	// gateway's PKI mount.
	HTTPSRole, HTTPSName string
	// Getenv reads the environment (ztnenv's variables).
	Getenv func(string) string
	Logger *slog.Logger
	// PeerRefresh is how often the peer's roots are read again (default 1m).
	PeerRefresh time.Duration
}

// meshEnv is the environment mesh mode reads: ztnenv's variables, with
// their meaning there. ztnenv itself has no federation, so the service is
// built here from the same parts (vault.New, consul.NewIntentions,
// consul.NewCatalog) plus the federated peer.
type meshEnv struct {
	consulAddr, consulToken string
	vaultAddr, vaultToken   string
	mount, role, datacenter string
	td                      spiffeid.TrustDomain
	allowHTTP               bool // ZTN_ALLOW_HTTP=1
}

func readMeshEnv(getenv func(string) string) (meshEnv, error) {
	e := meshEnv{
		consulAddr: getenv(ztnenv.EnvConsulAddr), consulToken: getenv(ztnenv.EnvConsulToken),
		vaultAddr: getenv(ztnenv.EnvVaultAddr), vaultToken: getenv(ztnenv.EnvVaultToken),
		mount: getenv(ztnenv.EnvPKIMount), role: getenv(ztnenv.EnvPKIRole), datacenter: getenv(ztnenv.EnvDatacenter),
	}
	var missing, invalid []string
	for _, v := range []struct{ name, val string }{
		{ztnenv.EnvConsulAddr, e.consulAddr}, {ztnenv.EnvVaultAddr, e.vaultAddr}, {ztnenv.EnvVaultToken, e.vaultToken},
		{ztnenv.EnvPKIMount, e.mount}, {ztnenv.EnvPKIRole, e.role}, {ztnenv.EnvTrustDomain, getenv(ztnenv.EnvTrustDomain)},
		{ztnenv.EnvDatacenter, e.datacenter},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if td := getenv(ztnenv.EnvTrustDomain); td != "" {
		t, err := spiffeid.TrustDomainFromString(td)
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("%s=%s: %v", ztnenv.EnvTrustDomain, td, err))
		}
		e.td = t
	}
	// As ztnenv: plain HTTP only to this machine, unless ZTN_ALLOW_HTTP=1
	// (anyone on the path could forge trust roots and intentions).
	e.allowHTTP = getenv(ztnenv.EnvAllowHTTP) == "1"
	for _, v := range []struct{ name, val string }{{ztnenv.EnvConsulAddr, e.consulAddr}, {ztnenv.EnvVaultAddr, e.vaultAddr}} {
		if v.val != "" && !e.allowHTTP && !safeAddr(v.val, getenv("CONSUL_HTTP_SSL") == "true" && v.name == ztnenv.EnvConsulAddr) {
			invalid = append(invalid, fmt.Sprintf("%s=%s: plain HTTP to another machine (use https://, or %s=1 for a lab)", v.name, v.val, ztnenv.EnvAllowHTTP))
		}
	}
	if len(missing)+len(invalid) > 0 {
		return e, &ztnenv.Error{Missing: missing, Invalid: invalid}
	}
	return e, nil
}

// safeAddr reports whether addr (a URL, or Consul's host:port) is HTTPS or
// on this machine.
func safeAddr(addr string, tls bool) bool {
	if strings.HasPrefix(addr, "https://") || tls {
		return true
	}
	hostport := strings.TrimPrefix(addr, "http://")
	hostport, _, _ = strings.Cut(hostport, "/")
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// meshService is one component's ztnet.Service and what it is made of.
type meshService struct {
	svc     *ztnet.Service
	src     *certs.Rotator
	closers []func() error
}

func (m *meshService) close() error {
	var errs []error
	if m.svc != nil {
		errs = append(errs, m.svc.Close())
	}
	for _, c := range slices.Backward(m.closers) {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// newMeshService sets up the service name: its identity from Vault (with
// the common name cn, if set), the bundle of the federated peer, if any,
// its intentions and the catalog from Consul.
func newMeshService(ctx context.Context, env meshEnv, name, cn string, peer *peerSpec, cfg meshConfig) (ms *meshService, err error) {
	ms = &meshService{}
	defer func() {
		if err != nil {
			_ = ms.close()
			ms = nil
		}
	}()
	src, err := vaultIdentity(ctx, env, env.td, env.mount, name, cn, cfg.Logger)
	if err != nil {
		return nil, err
	}
	ms.src = src
	ms.closers = append(ms.closers, src.Close)
	fed := federatedSource{Rotator: src}
	opts := []ztnet.Option{ztnet.WithLogger(cfg.Logger)}
	if peer != nil {
		pb, err := newPeerBundle(ctx, *peer, env.vaultAddr, cmpOr(cfg.PeerRefresh, time.Minute), cfg.Logger)
		if err != nil {
			return nil, err
		}
		ms.closers = append(ms.closers, pb.Close)
		fed.peer = pb
		opts = append(opts, ztnet.WithFederatedPeer(peer.Name, peer.TD))
	}
	opts = append(opts, ztnet.WithSource(fed))
	cc := consulapi.DefaultConfig()
	cc.Address, cc.Token = env.consulAddr, env.consulToken
	client, err := consulapi.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("yelb: consul client: %w", err)
	}
	zc := ztnconsul.Config{Client: client}
	az, err := ztnconsul.NewIntentions(zc, name, ztnconsul.WithLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	ms.closers = append(ms.closers, az.Close)
	if err := az.WaitSynced(ctx); err != nil {
		return nil, fmt.Errorf("yelb: %s: intentions from Consul at %s: %w", name, env.consulAddr, err)
	}
	cat, err := ztnconsul.NewCatalog(zc, ztnconsul.WithLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	ms.closers = append(ms.closers, cat.Close)
	opts = append(opts, ztnet.WithAuthorizer(az), ztnet.WithResolver(cat))
	if peer != nil && name == uiName {
		// The app servers live in the peer's trust domain.
		opts = append(opts, ztnet.WithRemoteService(appName, peer.TD))
	}
	ms.svc, err = ztnet.New(ctx, name, opts...)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// vaultIdentity is the rotating identity of the service name in the trust
// domain td, signed by the role env.role (its {service} replaced by name)
// of the Vault PKI mount, with the common name cn if set.
func vaultIdentity(ctx context.Context, env meshEnv, td spiffeid.TrustDomain, mount, name, cn string, logger *slog.Logger) (*certs.Rotator, error) {
	role := strings.ReplaceAll(env.role, "{service}", name)
	src, err := vault.New(ctx, vault.Config{
		Service: name, TrustDomain: td, Datacenter: env.datacenter, Address: env.vaultAddr,
		Auth: vault.Token(env.vaultToken), Mount: mount, Role: role, CommonName: cn, AllowHTTP: env.allowHTTP,
	}, certs.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("yelb: %s: identity from Vault (mount %s, role %s): %w", name, mount, role, err)
	}
	return src, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// runMesh runs one component in the mesh until ctx ends.
func runMesh(ctx context.Context, out io.Writer, cfg meshConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	env, err := readMeshEnv(cfg.Getenv)
	if err != nil {
		return err
	}
	var peer *peerSpec
	if cfg.Peer != "" {
		p, err := parsePeer(cfg.Peer)
		if err != nil {
			return err
		}
		peer = &p
	}
	name, cn := map[string]string{"gateway": gatewayName, "ui": uiName, "appserver": appName}[cfg.Mode], ""
	if name == appName {
		cn = appName // the database user
		if cfg.Postgres == "" || cfg.Redis == "" || cfg.DBPKI == "" {
			return errors.New("yelb: appserver: -postgres, -redis and -db-pki are required")
		}
		if _, _, err := parseTDMount(cfg.DBPKI); err != nil {
			return fmt.Errorf("yelb: appserver: -db-pki %q: %w", cfg.DBPKI, err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ms, err := newMeshService(sctx, env, name, cn, peer, cfg)
	if err != nil {
		return err
	}
	defer ms.close()

	var srv *server
	switch cfg.Mode {
	case "gateway":
		gw, err := newGateway(ms.svc)
		if err != nil {
			return err
		}
		addr := or(cfg.Addr, "127.0.0.1:8080")
		scheme, getCert := "http", (func(*tls.ClientHelloInfo) (*tls.Certificate, error))(nil)
		if cfg.HTTPSRole != "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("yelb: gateway: -addr %q: %w", addr, err)
			}
			wc, err := newWebCert(sctx, env.vaultAddr, env.vaultToken, env.mount, cfg.HTTPSRole, or(cfg.HTTPSName, host), cfg.Logger)
			if err != nil {
				return err
			}
			defer wc.Close()
			scheme, getCert = "https", wc.GetCertificate
		}
		if srv, err = servePublic(sctx, addr, gw, getCert, cfg.Logger); err != nil {
			return err
		}
		fmt.Fprintf(out, "yelb: gateway %s: open %s://%s/\n", ms.svc.ID(), scheme, srv.Addr())
	case "ui":
		ui, err := newUIHandler(ms.svc, cfg.Logger)
		if err != nil {
			return err
		}
		if srv, err = serveMesh(sctx, ms.svc, or(cfg.Addr, "127.0.0.1:0"), ui); err != nil {
			return err
		}
		fmt.Fprintf(out, "yelb: ui %s serving on %s\n", ms.svc.ID(), srv.Addr())
	case "appserver":
		db, err := newDBIdentity(sctx, env, cfg.DBPKI, cfg.Logger)
		if err != nil {
			return err
		}
		defer db.Close()
		tc := storeTLS(db)
		votes, err := yelb.NewPostgres(cfg.Postgres, appName, tc)
		if err != nil {
			return err
		}
		defer votes.Close()
		views, err := yelb.NewRedis(cfg.Redis, tc)
		if err != nil {
			return err
		}
		defer views.Close()
		hostname := cfg.Hostname
		if hostname == "" {
			hostname, _ = os.Hostname()
		}
		app, err := yelb.NewAppServer(votes, views, hostname, yelb.WithLogger(cfg.Logger))
		if err != nil {
			return err
		}
		if srv, err = serveMesh(sctx, ms.svc, or(cfg.Addr, "127.0.0.1:0"), app); err != nil {
			return err
		}
		fmt.Fprintf(out, "yelb: appserver %s (%s) serving on %s\n", ms.svc.ID(), app.Hostname(), srv.Addr())
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.stop(stopCtx)
	fmt.Fprintf(out, "yelb: %s stopped\n", cfg.Mode)
	return err
}
