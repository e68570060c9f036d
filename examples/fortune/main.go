// Command fortune is the fortune-cookie service of the "securing bare metal"
// walkthrough, ported to ztn: every connection gets one fortune and is
// closed, and every connection is mutual TLS with short-lived, rotating
// certificates, authorized against intentions.
//
// With no flags it runs a whole mesh in this one process (ztn's embedded dev
// mode): three fortune instances, a consumer that prints each fortune with
// the instance and SPIFFE ID that served it, an intruder that is refused, an
// instance stopped mid-run, and certificate and CA rotations, all without
// one failed fetch. It exits 0 when every check held.
//
//	go run ./examples/fortune
//
// In mesh mode the processes are separate and the mesh is a real Consul and
// Vault, configured from the environment (see ztnenv.New and README.md):
//
//	fortune -mode server -addr :8181              # serve fortunes as "fortune"
//	ZTN_SERVICE=consumer fortune -mode consumer   # fetch fortunes as "consumer"
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var (
		mode     = flag.String("mode", "demo", "demo: the whole walkthrough in one process; server: serve fortunes in the mesh; consumer: fetch fortunes from the mesh")
		addr     = flag.String("addr", ":8181", "server: the address to listen on")
		n        = flag.Int("n", 3, "consumer: how many fortunes to fetch (0: until stopped or refused)")
		interval = flag.Duration("interval", time.Second, "consumer: pause between fetches")
		verbose  = flag.Bool("v", false, "consumer: also log ztn's info records (one per connection, ...); servers always do")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fortune [-mode demo|server|consumer] [flags]\n"+
			"Mesh mode (server, consumer) is configured from the environment: CONSUL_HTTP_ADDR,\n"+
			"VAULT_ADDR, VAULT_TOKEN, ZTN_PKI_MOUNT, ZTN_PKI_ROLE, ZTN_TRUST_DOMAIN,\n"+
			"ZTN_DATACENTER, and ZTN_SERVICE for the consumer (see README.md).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *mode {
	case "demo":
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		err = runDemo(ctx, os.Stdout, demoConfig{})
	case "server":
		err = runServer(ctx, os.Stdout, *addr)
	case "consumer":
		if !*verbose {
			slog.SetLogLoggerLevel(slog.LevelWarn) // the default logger: warnings and errors only
		}
		err = runConsumer(ctx, os.Stdout, *n, *interval)
	default:
		flag.Usage()
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fortune:", err)
		os.Exit(1)
	}
}
