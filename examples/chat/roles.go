package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ztnlabs/ztn/examples/chat/internal/bot"
	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/storegrpc"
	"github.com/ztnlabs/ztn/examples/chat/internal/web"
	"github.com/ztnlabs/ztn/examples/internal/fortune"
	"github.com/ztnlabs/ztn/grpcztn"
	"github.com/ztnlabs/ztn/httpztn"
	"github.com/ztnlabs/ztn/ztnet"
)

// The chat's services, each its own identity in the mesh.
const (
	svcGateway = "chat-gateway" // the public entry: plain HTTP (dev) → chat-web
	svcWeb     = "chat-web"     // the page and the HTTP API
	svcStore   = "chat-store"   // users and messages, over gRPC
	svcBot     = "chat-bot"     // answers /fortune and /weather
	svcFortune = "fortune"      // examples/fortune's server
)

// roleConfig is what every service of the chat is run with.
type roleConfig struct {
	out    io.Writer    // what the program tells its user ("serving on ...")
	logger *slog.Logger // the services' log
	addr   string       // the address to listen on ("127.0.0.1:0": any port)
	// metricsAddr, when set, is where the services' Prometheus metrics are
	// served (plain HTTP: keep it on loopback or a private network).
	metricsAddr string
	// listening, when set, is told each listener's address (tests).
	listening func(service string, addr net.Addr)
	// telemetry, when set, gives each service its tracer and meter
	// providers; otherwise OpenTelemetry's globals are used.
	telemetry func(service string) providers
}

func (c roleConfig) announce(service string, addr net.Addr, what string) {
	fmt.Fprintf(c.out, "%s: %s on %s\n", service, what, addr)
	if c.listening != nil {
		c.listening(service, addr)
	}
}

// serveUntil runs serve until ctx ends, then stops it with stop and waits.
// A serve that ends by itself first is an error.
func serveUntil(ctx context.Context, serve func() error, stop func()) error {
	done := make(chan error, 1)
	go func() { done <- serve() }()
	select {
	case err := <-done:
		stop()
		return err
	case <-ctx.Done():
		stop()
		<-done
		return nil
	}
}

// serveStore serves st as chat-store over gRPC (grpcztn: every RPC judged
// by the L7 intentions), behind botGuard, until ctx ends.
func serveStore(ctx context.Context, svc *ztnet.Service, st store.Store, rc roleConfig) error {
	l, err := grpcztn.Listen(ctx, svc, "tcp", rc.addr)
	if err != nil {
		return err
	}
	srv := grpcztn.NewServer(svc)
	storegrpc.Register(srv, &botGuard{Store: st, botService: svcBot, logger: rc.logger})
	rc.announce(svcStore, l.Addr(), "serving gRPC")
	// Stop, not GracefulStop: followers' streams end only when cut.
	return serveUntil(ctx, func() error { return srv.Serve(l) }, srv.Stop)
}

// serveWeb serves the page and the API as chat-web, on the store reached
// as chat-store, until ctx ends.
func serveWeb(ctx context.Context, svc *ztnet.Service, signingKey []byte, rc roleConfig) error {
	cc, err := grpcztn.NewClient(svc, svcStore)
	if err != nil {
		return err
	}
	defer cc.Close()
	w, err := web.New(storegrpc.NewClient(cc), signingKey, web.WithLogger(rc.logger))
	if err != nil {
		return err
	}
	l, err := httpztn.Listen(ctx, svc, "tcp", rc.addr)
	if err != nil {
		return err
	}
	srv := httpztn.NewServer(svc, w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pushed := make(chan error, 1)
	go func() { pushed <- w.Run(ctx) }()
	defer func() { cancel(); <-pushed }() // also when serving fails while ctx lives
	rc.announce(svcWeb, l.Addr(), "serving HTTP")
	// Close, not Shutdown: event streams last until cut.
	return serveUntil(ctx, func() error { return srv.Serve(l) }, func() { _ = srv.Close() })
}

// runBot runs the bot as chat-bot: it follows chat-store, asks fortune for
// /fortune and weather (the egress client, or nil) for /weather.
func runBot(ctx context.Context, svc *ztnet.Service, weather bot.Weatherer, rc roleConfig) error {
	cc, err := grpcztn.NewClient(svc, svcStore)
	if err != nil {
		return err
	}
	defer cc.Close()
	st := storegrpc.NewClient(cc)
	tell := bot.DialFortune(func(ctx context.Context) (net.Conn, error) { return svc.Dial(ctx, svcFortune) })
	b := bot.New(tell, weather, bot.WithLogger(rc.logger), bot.WithTracerProvider(rc.providersOf(svcBot).tracer))
	var me store.User
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		if me, err = bot.EnsureUser(ctx, st, bot.DefaultEmail); err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		rc.logger.Warn("chat-bot: the store is not reachable yet; trying again", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	fmt.Fprintf(rc.out, "%s: answering as %s (user %d)\n", svcBot, me.Email, me.ID)
	return b.Run(ctx, st, me.ID)
}

// serveGateway serves the public side on plain HTTP (TLS is for a
// deployment's ordinary web certificate) and sends every request to
// chat-web over the mesh as chat-gateway.
func serveGateway(ctx context.Context, svc *ztnet.Service, rc roleConfig) error {
	gw, err := httpztn.NewGateway(svc, httpztn.Route{Service: svcWeb})
	if err != nil {
		return err
	}
	defer gw.Close()
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", rc.addr)
	if err != nil {
		return fmt.Errorf("chat: gateway: %w", err)
	}
	public := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10}
	fmt.Fprintf(rc.out, "%s: open http://%s/ in a browser\n", svcGateway, l.Addr())
	if rc.listening != nil {
		rc.listening(svcGateway, l.Addr())
	}
	return serveUntil(ctx, func() error { return public.Serve(l) }, func() { _ = public.Close() })
}

// serveFortune serves fortunes as the service fortune until ctx ends.
func serveFortune(ctx context.Context, svc *ztnet.Service, rc roleConfig) error {
	l, err := svc.Listen(ctx, "tcp", rc.addr)
	if err != nil {
		return err
	}
	rc.announce(svcFortune, l.Addr(), "serving fortunes")
	return serveUntil(ctx, func() error { return fortune.Serve(ctx, l) }, func() { _ = l.Close() })
}
