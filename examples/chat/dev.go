package main

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/examples/chat/internal/bot"
	"github.com/ztnlabs/ztn/ztnet"
)

// config holds the Consul config entries of the chat, as `consul config
// write` takes them: the protocols of its L7 services (*.defaults.json) and
// its intentions (*.intentions.json). Dev mode loads the intentions.
//
//go:embed config/*.json
var config embed.FS

// intentions returns the chat's intentions from config.
func intentions() ([]authz.ConfigEntry, error) {
	files, err := fs.Glob(config, "config/*.intentions.json")
	if err != nil {
		return nil, err
	}
	var all []authz.ConfigEntry
	for _, f := range files {
		b, err := config.ReadFile(f)
		if err != nil {
			return nil, err
		}
		entries, err := authz.ParseConfigEntries(b)
		if err != nil {
			return nil, fmt.Errorf("chat: %s: %w", f, err)
		}
		all = append(all, entries...)
	}
	return all, nil
}

// runDev runs the whole chat in this process on ztn's embedded dev mesh:
// the gateway on rc.addr (plain HTTP), chat-web, chat-store (on a Postgres
// of its own when installed), chat-bot and fortune, each with its own
// identity, under the intentions of config/. The weather API is a stub in the
// process. It returns when ctx ends, or when a service fails.
func runDev(ctx context.Context, rc roleConfig, opts ...ztnet.DevOption) error {
	mesh, err := ztnet.NewDev(append([]ztnet.DevOption{ztnet.WithLogger(rc.logger)}, opts...)...)
	if err != nil {
		return err
	}
	defer mesh.Close()
	if rc.telemetry == nil {
		stop, err := startTelemetry(ctx, os.Getenv, &rc, svcGateway, svcWeb, svcStore, svcBot, svcFortune)
		if err != nil {
			return err
		}
		defer stop()
	}
	entries, err := intentions()
	if err != nil {
		return err
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		return fmt.Errorf("chat: intentions: %w", err)
	}
	fmt.Fprintln(rc.out, "chat: a dev mesh in this process; intentions: chat-gateway → chat-web, chat-web and chat-bot → chat-store (their RPCs only), chat-bot → fortune")
	st, stopStore, err := devStore(ctx, rc)
	if err != nil {
		return err
	}
	defer stopStore()
	fmt.Fprintln(rc.out, "chat: !! the weather API is a STUB in this process (mesh mode calls a real HTTPS API) !!")
	// The signing key: random, in memory, new each run (mesh mode reads it
	// from Vault), so tokens of an earlier run are refused.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}

	// The gateway opens its public port once chat-web serves, so that
	// the URL printed works at once.
	webUp := make(chan struct{})
	var webOnce sync.Once
	inner := rc
	inner.addr = "127.0.0.1:0"
	inner.listening = func(service string, a net.Addr) {
		if service == svcWeb {
			webOnce.Do(func() { close(webUp) })
		}
		if rc.listening != nil {
			rc.listening(service, a)
		}
	}
	services := map[string]func(context.Context, *ztnet.Service) error{
		svcFortune: func(ctx context.Context, s *ztnet.Service) error { return serveFortune(ctx, s, inner) },
		svcStore:   func(ctx context.Context, s *ztnet.Service) error { return serveStore(ctx, s, st, inner) },
		svcWeb:     func(ctx context.Context, s *ztnet.Service) error { return serveWeb(ctx, s, key, inner) },
		svcBot: func(ctx context.Context, s *ztnet.Service) error {
			return runBot(ctx, s, bot.WeathererFunc(stubWeather), inner)
		},
		svcGateway: func(ctx context.Context, s *ztnet.Service) error {
			select {
			case <-webUp:
			case <-ctx.Done():
				return nil
			}
			return serveGateway(ctx, s, rc)
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for name, run := range services {
		svc, err := mesh.Service(ctx, name, rc.providersOf(name).ztnOptions()...)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		wg.Go(func() {
			err := run(ctx, svc)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped by itself")
			}
			if err != nil {
				once.Do(func() { first = fmt.Errorf("chat: %s: %w", name, err) })
				cancel() // one service down: stop the rest
			}
		})
	}
	wg.Wait()
	return first
}

// stubWeather is dev mode's weather API: every city is mild and sunny.
func stubWeather(_ context.Context, city string) (bot.Report, error) {
	return bot.Report{City: city, Celsius: 21, Description: "sunny (stub: dev mode has no weather API)"}, nil
}
