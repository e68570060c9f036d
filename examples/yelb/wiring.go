package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// The services of the app, as the mesh names them.
const (
	gatewayName = "yelb-gateway"
	uiName      = "yelb-ui"
	appName     = "yelb-appserver"
)

// apiRetry is the ui → appserver route's retry policy, as in the App Mesh
// walkthrough: an idempotent request that failed (5xx, reset, no answer
// within 2s) is sent again to another instance, at most twice. Its answers
// are small: each is held back until it has arrived whole, so an app
// server killed between a response header and its body is retried too,
// instead of the ui passing on a broken response.
var apiRetry = httpztn.RetryPolicy{MaxRetries: 2, PerTryTimeout: 2 * time.Second, BufferBody: 64 << 10}

// newUIHandler is yelb-ui as the service svc: the page, and /api/...
// forwarded to yelb-appserver over httpztn with the retry policy.
func newUIHandler(svc *ztnet.Service, logger *slog.Logger) (http.Handler, error) {
	target := &url.URL{Scheme: "http", Host: appName}
	proxy, err := yelb.NewAPIProxy(target, httpztn.NewTransport(svc, httpztn.WithRetry(apiRetry)), yelb.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	return yelb.NewUI(proxy, yelb.WithLogger(logger))
}

// newGateway is yelb-gateway as the service svc: every public request goes
// to yelb-ui (retried as the API is: the page and the API are all GETs).
func newGateway(svc *ztnet.Service) (http.Handler, error) {
	return httpztn.NewGateway(svc, httpztn.Route{Service: uiName, Retry: apiRetry})
}

// server is an HTTP server running on its listener until stopped.
type server struct {
	name string
	l    net.Listener
	srv  *http.Server
	done chan error
}

// serveMesh serves h as svc on addr over httpztn (mutual TLS, each request
// authorized against the service's intentions).
func serveMesh(ctx context.Context, svc *ztnet.Service, addr string, h http.Handler) (*server, error) {
	l, err := httpztn.Listen(ctx, svc, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return serve(svc.ID().Name, l, httpztn.NewServer(svc, h)), nil
}

// servePublic serves h on addr: the gateway's public side, in plain HTTP,
// or in HTTPS (TLS 1.3) with the certificate getCert returns when it is
// not nil. Oversized headers are refused (see limitHeaders), and slow
// clients cut off.
func servePublic(ctx context.Context, addr string, h http.Handler, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), logger *slog.Logger) (*server, error) {
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("yelb: gateway: %w", err)
	}
	if getCert != nil {
		l = tls.NewListener(l, &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: getCert, NextProtos: []string{"http/1.1"}})
	}
	return serve(gatewayName, l, &http.Server{
		Handler:           limitHeaders(h, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}), nil
}

func serve(name string, l net.Listener, srv *http.Server) *server {
	s := &server{name: name, l: l, srv: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(l) }()
	return s
}

// Addr is the address the server listens on.
func (s *server) Addr() string { return s.l.Addr().String() }

// stop closes the listener (which deregisters it from the mesh's catalog)
// and lets requests in flight finish within ctx.
func (s *server) stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("yelb: stop %s: %w", s.name, err)
	}
	return nil
}
