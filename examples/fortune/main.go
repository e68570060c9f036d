// Command fortune is the fortune-cookie service of the "securing bare metal"
// walkthrough, ported to ztn: every connection gets one fortune and is
// closed, and every connection is mutual TLS with short-lived, rotating
// certificates, authorized against intentions.
//
// Run it with
//
//	go run ./examples/fortune
//
// It runs a whole mesh in this one process (ztn's embedded dev mode): three
// fortune instances, a consumer that prints each fortune with the instance
// and SPIFFE ID that served it, an intruder that is refused, an instance
// stopped mid-run, and certificate and CA rotations, all without one failed
// fetch. It exits 0 when every check held.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := runDemo(ctx, os.Stdout, demoConfig{}); err != nil {
		fmt.Fprintln(os.Stderr, "fortune:", err)
		os.Exit(1)
	}
}
