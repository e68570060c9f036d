package ztnet

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/poll"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestRevocationClosesEveryDeniedConnection: a policy change that denies
// web revokes all of web's 200 open connections and none of other's: on
// the server, each blocked Read fails with an error that says why (and is
// net.ErrClosed, not a timeout a caller might retry); each client sees the
// end of its connection; one Warn record counts them; the counter
// ztn.connections.revoked and the Service's open connections agree.
func TestRevocationClosesEveryDeniedConnection(t *testing.T) {
	const n = 200
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	m := newTestMesh(t)
	m.allow(t, "web->api", "other->api")
	api := m.service(t, "api", WithMeterProvider(mp))
	web := m.service(t, "web")
	other := m.service(t, "other")

	serverErrs := make(chan error, 2*n)
	serve(t, listen(t, api), func(c net.Conn) {
		peer, _ := Peer(c)
		if peer.Name == "other" {
			echo(c)
			return
		}
		_, err := io.Copy(io.Discard, c)
		if err == nil {
			err = io.EOF // the client closed first: not a revocation
		}
		serverErrs <- err
	})
	var webConns, otherConns []*Conn
	for range n {
		for _, d := range []struct {
			svc   *Service
			conns *[]*Conn
		}{{web, &webConns}, {other, &otherConns}} {
			c, err := d.svc.Dial(poll.Context(t, 5*time.Second), "api")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			*d.conns = append(*d.conns, c)
		}
	}
	roundTrip(t, otherConns[0], "before")

	m.allow(t, "other->api") // web is no longer allowed
	for i := range n {
		select {
		case err := <-serverErrs:
			if !errors.Is(err, net.ErrClosed) || isTimeout(err) || !strings.Contains(err.Error(), "revoked by a policy change") ||
				!strings.Contains(err.Error(), "no intention matches") {
				t.Fatalf("server read %d on a revoked connection: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d revoked connections still open on the server", n-i, n)
		}
	}
	for i, c := range webConns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("client read on revoked connection %d: %v", i, err)
		}
	}
	for _, c := range otherConns {
		roundTrip(t, c, "still allowed")
	}
	api.mu.Lock()
	open := len(api.conns)
	api.mu.Unlock()
	if open != n {
		t.Errorf("api holds %d connections, want other's %d", open, n)
	}
	recs := m.logs.find("ztn connection revoked")
	if len(recs) != 1 || recs[0].attrs["connections"] != "200" || !strings.Contains(recs[0].attrs["source"], "/svc/web") {
		t.Errorf("revocation records: %v, want one for web's 200 connections", recs)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if got := sumOf(t, rm, "ztn.connections.revoked", attribute.String("side", "server")); got != n {
		t.Errorf("ztn.connections.revoked = %d, want %d", got, n)
	}
}
