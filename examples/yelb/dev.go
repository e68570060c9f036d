package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/examples/internal/localdb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/ztnet"
)

// devIntentions: gateway → ui; ui → appserver, GET /api/... only; nothing
// else (the default denies).
//
//go:embed intentions.json
var devIntentions []byte

// devConfig configures the whole app in one process.
type devConfig struct {
	// Addr is the gateway's public address (plain HTTP).
	Addr string
	// Hostnames name the app server instances, one each (default
	// appserver-1, appserver-2).
	Hostnames []string
	// Memory forces the in-memory store even when Postgres and Redis are
	// installed.
	Memory bool
	// Logger receives the app's and ztn's records (default: discarded).
	Logger *slog.Logger
}

func (c devConfig) hostnames() []string {
	if len(c.Hostnames) == 0 {
		return []string{"appserver-1", "appserver-2"}
	}
	return c.Hostnames
}

// devApp is the whole app running in this process on ztn's embedded dev mesh.
type devApp struct {
	// URL is the page, through the gateway.
	URL string
	// Store says what holds the votes and page views.
	Store string

	mesh    *ztnet.Dev
	votes   yelb.VoteStore
	views   yelb.PageViewCounter
	servers []*server
	closers []func() error
}

// startDev starts the whole app on the embedded dev mesh: the gateway in
// plain HTTP on cfg.Addr, the ui, and the app servers, on real Postgres and
// Redis started for the occasion when they are installed, else on an
// in-memory store. ctx bounds the start only.
func startDev(ctx context.Context, cfg devConfig) (app *devApp, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Hostnames = cfg.hostnames()
	mesh, err := ztnet.NewDev(ztnet.WithLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	app = &devApp{mesh: mesh}
	defer func() {
		if err != nil {
			_ = app.close(context.Background())
			app = nil
		}
	}()
	entries, err := authz.ParseConfigEntries(devIntentions)
	if err != nil {
		return nil, fmt.Errorf("yelb: intentions: %w", err)
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		return nil, fmt.Errorf("yelb: intentions: %w", err)
	}

	votes, views, err := app.devStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	app.votes, app.views = votes, views
	appSvc, err := mesh.Service(ctx, appName)
	if err != nil {
		return nil, err
	}
	for _, h := range cfg.Hostnames {
		api, err := yelb.NewAppServer(votes, views, h, yelb.WithLogger(cfg.Logger))
		if err != nil {
			return nil, err
		}
		if err := app.serveMesh(ctx, appSvc, api); err != nil {
			return nil, err
		}
	}
	uiSvc, err := mesh.Service(ctx, uiName)
	if err != nil {
		return nil, err
	}
	ui, err := newUIHandler(uiSvc, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if err := app.serveMesh(ctx, uiSvc, ui); err != nil {
		return nil, err
	}
	gwSvc, err := mesh.Service(ctx, gatewayName)
	if err != nil {
		return nil, err
	}
	gw, err := newGateway(gwSvc)
	if err != nil {
		return nil, err
	}
	pub, err := servePublic(ctx, cfg.Addr, gw, nil, cfg.Logger)
	if err != nil {
		return nil, err
	}
	app.servers = append(app.servers, pub)
	app.URL = "http://" + pub.Addr() + "/"
	return app, nil
}

func (a *devApp) serveMesh(ctx context.Context, svc *ztnet.Service, h http.Handler) error {
	s, err := serveMesh(ctx, svc, "127.0.0.1:0", h)
	if err != nil {
		return err
	}
	a.servers = append(a.servers, s)
	return nil
}

// devStores returns the stores of the app servers: Postgres and Redis of
// the app's own when installed (and not cfg.Memory), else one in-memory
// store.
func (a *devApp) devStores(ctx context.Context, cfg devConfig) (yelb.VoteStore, yelb.PageViewCounter, error) {
	bins := localdb.Find()
	if cfg.Memory || bins.Missing() != "" {
		why := "-memory"
		if !cfg.Memory {
			why = "not installed: " + bins.Missing()
		}
		a.Store = "IN-MEMORY STORE (" + why + "): votes and page views are lost when the program stops"
		m := yelb.NewMemory()
		return m, m, nil
	}
	id, srvTLS, err := devStoreIdentity(ctx, a.mesh, cfg.Logger)
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, id.Close)
	pg, err := localdb.StartPostgres(ctx, bins, srvTLS, yelb.Database, appName)
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, pg.Stop)
	rd, err := localdb.StartRedis(ctx, bins, srvTLS)
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, rd.Stop)
	tc := storeTLS(id)
	votes, err := yelb.NewPostgres(pg.Addr, appName, tc)
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, func() error { votes.Close(); return nil })
	views, err := yelb.NewRedis(rd.Addr, tc)
	if err != nil {
		return nil, nil, err
	}
	a.closers = append(a.closers, views.Close)
	a.Store = fmt.Sprintf("Postgres on %s (votes), Redis on %s (page views): TLS, the app server's client certificate, no password", pg.Addr, rd.Addr)
	return votes, views, nil
}

// storeIssuer issues, with the dev mesh's CA, the app server's certificate
// for Postgres and Redis: its SPIFFE ID and the common name yelb-appserver
// (the database user), valid for an hour; a certs.Rotator renews it, as the
// mesh mode's Vault source does.
type storeIssuer struct {
	ca *certs.DevCA
	id spiffeid.ID
}

// Issue implements certs.Issuer.
func (i storeIssuer) Issue(context.Context) (*certs.Identity, error) {
	cert, key, err := signDev(i.ca, &x509.Certificate{
		Subject: pkix.Name{CommonName: appName}, URIs: []*url.URL{i.id.URL()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}, time.Hour)
	if err != nil {
		return nil, fmt.Errorf("yelb: the app server's store certificate: %w", err)
	}
	return &certs.Identity{
		SVID:    &x509svid.SVID{ID: i.id, Certificates: []*x509.Certificate{cert}, PrivateKey: key},
		Bundles: []*x509bundle.Bundle{i.ca.Bundle()},
	}, nil
}

// signDev signs tmpl with the dev mesh's CA for a new key, valid for ttl.
func signDev(ca *certs.DevCA, tmpl *x509.Certificate, ttl time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	tmpl.NotAfter = time.Now().Add(ttl)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	cert, err := ca.SignCertificate(tmpl, key.Public())
	return cert, key, err
}

// devStoreIdentity returns the app server's rotating identity for Postgres
// and Redis (see storeIssuer), and the servers' TLS files: a certificate for
// 127.0.0.1 from the dev mesh's CA, valid for 30 days (the servers read
// their key from their private directory), trusting the mesh's roots.
func devStoreIdentity(ctx context.Context, mesh *ztnet.Dev, logger *slog.Logger) (*certs.Rotator, localdb.TLS, error) {
	ca := mesh.CA()
	id, err := ztn.NewServiceID(ca.TrustDomain(), "dc1", appName).SPIFFEID()
	if err != nil {
		return nil, localdb.TLS{}, fmt.Errorf("yelb: %w", err)
	}
	srv, srvKey, err := signDev(ca, &x509.Certificate{
		Subject: pkix.Name{CommonName: "yelb stores"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, 30*24*time.Hour)
	if err != nil {
		return nil, localdb.TLS{}, fmt.Errorf("yelb: the stores' server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return nil, localdb.TLS{}, fmt.Errorf("yelb: %w", err)
	}
	var roots []byte
	for _, r := range ca.Bundle().X509Authorities() {
		roots = append(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	rot, err := certs.NewRotator(ctx, storeIssuer{ca: ca, id: id}, certs.WithLogger(logger))
	if err != nil {
		return nil, localdb.TLS{}, err
	}
	return rot, localdb.TLS{
		Cert:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Raw}),
		Key:       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		ClientCAs: roots,
	}, nil
}

// close stops the servers (letting requests in flight finish within
// ctx), the stores and the mesh.
func (a *devApp) close(ctx context.Context) error {
	var errs []error
	for i := len(a.servers) - 1; i >= 0; i-- {
		errs = append(errs, a.servers[i].stop(ctx))
	}
	errs = append(errs, a.mesh.Close())
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// runDev runs the whole app in this process until ctx ends, and says on out
// where to open it and what stores it uses.
func runDev(ctx context.Context, out io.Writer, cfg devConfig) error {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	app, err := startDev(sctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	if strings.HasPrefix(app.Store, "IN-MEMORY") {
		fmt.Fprintf(out, "\n!!!!!!!!\n!!! yelb: %s\n!!! install the Debian packages postgresql and redis-server for the real ones\n!!!!!!!!\n\n", app.Store)
	} else {
		fmt.Fprintf(out, "yelb: stores: %s\n", app.Store)
	}
	fmt.Fprintf(out, "yelb: gateway -> %s -> %s (%s), on ztn's dev mesh\n", uiName, appName, strings.Join(cfg.hostnames(), ", "))
	fmt.Fprintf(out, "yelb: open %s\n", app.URL)
	<-ctx.Done()
	fmt.Fprintln(out, "yelb: stopping")
	sctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return app.close(sctx)
}
