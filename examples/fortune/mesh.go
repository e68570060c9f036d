package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/examples/internal/fortune"
	"github.com/ztnlabs/ztn/ztnet"
	"github.com/ztnlabs/ztn/ztnet/ztnenv"
)

// runServer serves fortunes as the service "fortune" (ZTN_SERVICE, which
// defaults to it) on addr, in the mesh the environment configures, until
// ctx ends. The listener is registered in
// Consul while it is open, with a health check that lapses if the process
// dies.
func runServer(ctx context.Context, out io.Writer, addr string) error {
	if os.Getenv(ztnenv.EnvService) == "" {
		if err := os.Setenv(ztnenv.EnvService, "fortune"); err != nil {
			return err
		}
	}
	l, err := ztnenv.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fortune: serving on %s\n", l.Addr())
	served := make(chan error, 1)
	go func() { served <- fortune.Serve(ctx, l) }()
	select {
	case err = <-served:
		_ = l.Close()
		return err
	case <-ctx.Done():
		// Close deregisters from Consul before it returns; Accept returns
		// earlier, so wait for Close, not for fortune.Serve alone, before
		// the process exits.
		err = l.Close()
		<-served
		fmt.Fprintln(out, "fortune: stopped")
		return err
	}
}

// runConsumer fetches n fortunes (0: until ctx ends) from the service
// "fortune", as the service ZTN_SERVICE names, and prints each with the
// instance that served it and its SPIFFE ID. It fails at the first fetch
// that fails; a refusal by the server's intentions says why.
func runConsumer(ctx context.Context, out io.Writer, n int, interval time.Duration) error {
	for i := 1; n == 0 || i <= n; i++ {
		if i > 1 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
		addr, peer, text, err := fetchOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var denied *ztnet.DeniedError
			if errors.As(err, &denied) {
				return fmt.Errorf("fetch %d refused: %w", i, err)
			}
			return fmt.Errorf("fetch %d failed: %w", i, err)
		}
		fmt.Fprintf(out, "-- %d %s %s:\n   %s\n", i, addr, peer,
			strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n   "))
	}
	return nil
}

// fetchOnce gets one fortune. A connection that breaks before its fortune
// arrives (its server died at that moment) is retried once on a new
// connection, which the discovery steers to a live instance; a refusal is
// never retried.
func fetchOnce(ctx context.Context) (addr net.Addr, peer, text string, err error) {
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := ztnenv.Dial(dctx, "fortune")
		cancel()
		if err != nil {
			return nil, "", "", err
		}
		text, err = fortune.Read(c)
		c.Close()
		if err == nil && text != "" {
			return c.RemoteAddr(), peerOf(c).String(), text, nil
		}
		if err == nil {
			err = errors.New("the server closed the connection without a fortune")
		}
		if attempt == 2 {
			return nil, "", "", fmt.Errorf("reading the fortune from %s: %w", c.RemoteAddr(), err)
		}
	}
}

// peerOf returns the identity of the server c is connected to.
func peerOf(c net.Conn) ztn.ServiceID {
	id, _ := ztnet.Peer(c)
	return id
}
