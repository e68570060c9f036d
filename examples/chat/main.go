// Command chat is the chat app of the reference architecture on ztn: a web
// front end with the feathers-chat API (chat-web), a store over gRPC on
// Postgres (chat-store), a bot that answers /fortune and /weather
// (chat-bot), examples/fortune's server, and an ingress gateway; each
// service is its own identity, and intentions say who may call whom.
//
// With no flags the whole app runs in this one process on ztn's embedded dev
// mesh, and prints the URL to open:
//
//	go run ./examples/chat
//
// In mesh mode each service is its own process on a real Consul and Vault,
// configured from the environment (ztnenv, plus the chat's own CHAT_*
// variables; see README.md): the JWT signing key and the weather API key come
// from Vault's KV store, chat-store's Postgres logins from Vault's database
// secrets engine.
//
//	chat -mode store -addr :7001   # ZTN_SERVICE=chat-store, CHAT_DB_URL=...
//	chat -mode web -addr :7002     # ZTN_SERVICE=chat-web
//	chat -mode bot                 # ZTN_SERVICE=chat-bot, CHAT_WEATHER_URL=...
//	chat -mode gateway -addr :8080 # ZTN_SERVICE=chat-gateway
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var (
		mode    = flag.String("mode", "dev", "dev: the whole app in this process on the dev mesh; web, store, bot, gateway: that service in the mesh the environment configures")
		addr    = flag.String("addr", "", "the address to listen on (default: dev and gateway 127.0.0.1:8080, web and store 127.0.0.1:0)")
		metrics = flag.String("metrics-addr", "", "serve the services' Prometheus metrics on this address (/metrics; dev mode: /metrics/<service>); traces go to OTEL_EXPORTER_OTLP_ENDPOINT when set")
		verbose = flag.Bool("v", false, "also log info records (certificates issued, logins rotated); warnings and refusals are always logged")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: chat [-mode dev|web|store|bot|gateway] [-addr host:port]\n"+
			"Mesh modes read CONSUL_HTTP_ADDR, VAULT_ADDR, VAULT_TOKEN, ZTN_PKI_MOUNT, ZTN_PKI_ROLE,\n"+
			"ZTN_TRUST_DOMAIN, ZTN_DATACENTER, ZTN_SERVICE and the CHAT_* variables (see README.md).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	rc := roleConfig{out: os.Stdout, logger: logger, addr: *addr, metricsAddr: *metrics}
	var err error
	switch *mode {
	case "dev":
		if rc.addr == "" {
			rc.addr = "127.0.0.1:8080"
		}
		err = runDev(ctx, rc)
	case "web", "store", "bot", "gateway":
		err = runMesh(ctx, *mode, os.Getenv, rc)
	default:
		flag.Usage()
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}
