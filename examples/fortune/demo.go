package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/examples/internal/fortune"
	"github.com/ztnlabs/ztn/ztnet"
)

//go:embed intentions.json
var intentionsJSON []byte

type demoConfig struct {
	certTTL time.Duration // default 3s, so rotations happen during the demo
	logger  *slog.Logger  // default: warnings and refusals to stderr
}

type instance struct {
	name string
	svc  *ztnet.Service
	l    net.Listener
	done chan struct{}
}

// runDemo runs the whole walkthrough and returns an error if any of its
// checks failed.
func runDemo(ctx context.Context, out io.Writer, cfg demoConfig) (err error) {
	if cfg.certTTL == 0 {
		cfg.certTTL = 3 * time.Second
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	mesh, err := ztnet.NewDev(ztnet.WithDevCertTTL(cfg.certTTL), ztnet.WithLogger(cfg.logger))
	if err != nil {
		return err
	}
	entries, err := authz.ParseConfigEntries(intentionsJSON)
	if err != nil {
		return err
	}
	if err := mesh.Policy().Set(entries...); err != nil {
		return err
	}
	fmt.Fprintf(out, "== a mesh in one process: dev CA, intentions (consumer → fortune allowed, nothing else), certificates living %v\n", cfg.certTTL)

	var instances []*instance
	defer func() {
		for _, in := range instances {
			err = errors.Join(err, in.stop())
		}
	}()
	byAddr := map[string]string{}
	for i := 1; i <= 3; i++ {
		in, err := startInstance(ctx, mesh, fmt.Sprintf("fortune-%d", i))
		if err != nil {
			return err
		}
		instances = append(instances, in)
		byAddr[in.l.Addr().String()] = in.name
		fmt.Fprintf(out, "   %s listening on %s as %s\n", in.name, in.l.Addr(), in.svc.ID())
	}
	consumer, err := mesh.Service(ctx, "consumer")
	if err != nil {
		return err
	}
	defer consumer.Close()
	intruder, err := mesh.Service(ctx, "intruder")
	if err != nil {
		return err
	}
	defer intruder.Close()

	st := &fetchStats{served: map[string]int{}, serials: map[string]bool{}, roots: map[string]bool{}}
	fetch := func() error {
		return st.fetch(ctx, out, consumer, byAddr)
	}

	fmt.Fprintln(out, "\n== the consumer fetches fortunes, balanced across the three instances")
	for range 6 {
		if err := fetch(); err != nil {
			return err
		}
	}

	fmt.Fprintln(out, "\n== an intruder (a valid certificate, but no intention allows it) tries")
	if c, err := intruder.Dial(ctx, "fortune"); err == nil {
		c.Close()
		return errors.New("the intruder was let in")
	} else {
		var denied *ztnet.DeniedError
		if !errors.As(err, &denied) {
			return fmt.Errorf("the intruder failed for the wrong reason: %w", err)
		}
		fmt.Fprintf(out, "   refused: %v\n", err)
	}

	fmt.Fprintf(out, "\n== %s stops; the consumer keeps being served\n", instances[1].name)
	if err := instances[1].stop(); err != nil {
		return err
	}
	instances = append(instances[:1], instances[2:]...)
	for range 4 {
		if err := fetch(); err != nil {
			return err
		}
	}

	fmt.Fprintln(out, "\n== the CA rotates its root while the consumer keeps fetching; leaf certificates rotate on their own")
	if err := mesh.CA().RotateRoot(); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * cfg.certTTL)
	for len(st.roots) < 2 || len(st.serials) < 4 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no rotation seen: %d server certificates from %d roots", len(st.serials), len(st.roots))
		}
		if err := fetch(); err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond)
	}

	fmt.Fprintf(out, "\n== done: %d fortunes fetched, 0 failed, from %d instances; %d server certificates from %d roots seen; intruder refused\n",
		st.fetches, len(st.served), len(st.serials), len(st.roots))
	return nil
}

func startInstance(ctx context.Context, mesh *ztnet.Dev, name string) (*instance, error) {
	svc, err := mesh.Service(ctx, "fortune")
	if err != nil {
		return nil, err
	}
	l, err := svc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		svc.Close()
		return nil, err
	}
	in := &instance{name: name, svc: svc, l: l, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		_ = fortune.Serve(ctx, l)
	}()
	return in, nil
}

func (in *instance) stop() error {
	if in.svc == nil {
		return nil
	}
	err := in.svc.Close() // closes the listener, which deregisters it
	<-in.done
	in.svc = nil
	return err
}

type fetchStats struct {
	fetches int
	served  map[string]int
	serials map[string]bool
	roots   map[string]bool
}

func (st *fetchStats) fetch(ctx context.Context, out io.Writer, consumer *ztnet.Service, byAddr map[string]string) error {
	c, err := consumer.Dial(ctx, "fortune")
	if err != nil {
		return fmt.Errorf("fetch %d failed: %w", st.fetches+1, err)
	}
	defer c.Close()
	text, err := fortune.Read(c)
	if err != nil || text == "" {
		return fmt.Errorf("fetch %d: reading the fortune: %v", st.fetches+1, err)
	}
	st.fetches++
	name := byAddr[c.RemoteAddr().String()]
	st.served[name]++
	leaf := c.ConnectionState().PeerCertificates[0]
	serial := fmt.Sprintf("%x", leaf.SerialNumber)
	st.serials[serial] = true
	st.roots[string(leaf.AuthorityKeyId)] = true
	fmt.Fprintf(out, "-- %s %s (cert %.8s…, CA %x):\n   %s\n", name, peerOf(c), serial, leaf.AuthorityKeyId[:4],
		strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n   "))
	return nil
}
