// Command yelb is Yelb, the voting app of many service-mesh walkthroughs
// (github.com/mreferre/yelb), on ztn: a gateway brings browsers in, yelb-ui
// serves the page and forwards its API calls to the yelb-appserver
// instances over httpztn, and the app servers keep the votes in Postgres and
// the page views in Redis, reached with their own client certificate.
// Every hop inside is mutual TLS 1.3 between SPIFFE identities, authorized
// by intentions: gateway → ui; ui → appserver, GET /api/... only; nothing
// else.
//
// With no flags it runs the whole app in this one process on ztn's embedded
// dev mesh and prints the URL to open; it starts its own Postgres and Redis
// when they are installed (Debian packages postgresql and redis-server) and
// says loudly when it falls back to an in-memory store:
//
//	go run ./examples/yelb
//
// In mesh mode each component is a process of its own, on a real Consul and
// Vault, configured from the environment (see README.md); the ui's identity
// comes from one trust domain, the app server's from another, each
// federating the other:
//
//	yelb -mode appserver -addr 127.0.0.1:4567 -postgres 127.0.0.1:5432 -redis 127.0.0.1:6379 -db-pki ... -peer ...
//	yelb -mode ui -addr 127.0.0.1:8081 -peer ...
//	yelb -mode gateway -addr 127.0.0.1:8080
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
		mode     = flag.String("mode", "dev", "dev: the whole app in this process; gateway, ui, appserver: one component in the mesh")
		addr     = flag.String("addr", "", "the address to listen on (dev and gateway: the public one, default 127.0.0.1:8080; ui, appserver: 127.0.0.1:0)")
		memory   = flag.Bool("memory", false, "dev: use the in-memory store even if Postgres and Redis are installed")
		hostname = flag.String("hostname", "", "appserver: the name it answers /api/hostname with (default: the machine's host name)")
		pgAddr   = flag.String("postgres", "", "appserver: Postgres's host:port (TLS, client certificate)")
		rdAddr   = flag.String("redis", "", "appserver: Redis's host:port (TLS, client certificate)")
		peer     = flag.String("peer", "", "ui, appserver: the federated trust domain of the other side, as NAME=TRUST_DOMAIN@VAULT_PKI_MOUNT (NAME: how intentions name it as Peer)")
		dbPKI    = flag.String("db-pki", "", "appserver: the Vault PKI mount of its client certificate for Postgres and Redis, whose CA they alone trust, as TRUST_DOMAIN@VAULT_PKI_MOUNT (role: ZTN_PKI_ROLE for yelb-appserver; the token needs that role's policy too)")
		webRole  = flag.String("https-role", "", "gateway: serve HTTPS with a certificate signed by this role of ZTN_PKI_MOUNT (default: plain HTTP)")
		webName  = flag.String("https-name", "", "gateway: the name (IP or DNS) of the HTTPS certificate (default: -addr's host)")
		verbose  = flag.Bool("v", false, "log ztn's access records (Debug) too")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: yelb [-mode dev|gateway|ui|appserver] [flags]\n"+
			"Mesh mode is configured from the environment: CONSUL_HTTP_ADDR, VAULT_ADDR,\n"+
			"VAULT_TOKEN, ZTN_PKI_MOUNT, ZTN_PKI_ROLE, ZTN_TRUST_DOMAIN, ZTN_DATACENTER\n"+
			"(see README.md).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *mode {
	case "dev":
		err = runDev(ctx, os.Stdout, devConfig{Addr: or(*addr, "127.0.0.1:8080"), Memory: *memory, Logger: logger})
	case "gateway", "ui", "appserver":
		err = runMesh(ctx, os.Stdout, meshConfig{
			Mode: *mode, Addr: *addr, Hostname: *hostname, Postgres: *pgAddr, Redis: *rdAddr, Peer: *peer, DBPKI: *dbPKI,
			HTTPSRole: *webRole, HTTPSName: *webName,
			Getenv: os.Getenv, Logger: logger,
		})
	default:
		flag.Usage()
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "yelb:", err)
		os.Exit(1)
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
