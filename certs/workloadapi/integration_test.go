package workloadapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/workloadapi"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// TestWorkloadAPIMesh: two workloads of one process get their identities
// from a real SPIRE agent's Workload API (web through a uid selector, api
// through a gid selector, short-lived SVIDs) and talk mutual TLS through
// ztnet while the agent rotates both SVIDs: no connection fails and the
// peers see the rotated certificates.
func TestWorkloadAPIMesh(t *testing.T) {
	spire := testenv.SPIRE(t, testenv.SPIREWorkload(""))
	const webID, apiID = "spiffe://ztn.test/ns/default/dc/dc1/svc/web", "spiffe://ztn.test/ns/default/dc/dc1/svc/api"
	spire.CreateEntry(webID, 10*time.Second, testenv.UIDSelector())
	spire.CreateEntry(apiID, 10*time.Second, testenv.GIDSelector())
	spire.WaitForSVID(webID)
	spire.WaitForSVID(apiID)

	logger, logs := logtest.Capture(t)
	src := map[string]*workloadapi.Source{}
	for _, name := range []string{"web", "api"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		w, err := workloadapi.New(ctx, workloadapi.Config{Address: spire.WorkloadAPIAddr, Service: name},
			certs.WithLogger(logger.With("source", name)))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		src[name] = w
	}
	p := meshtest.NewPair(t, logger, "web", src["web"], "api", src["api"])
	peer, err := p.Call(context.Background())
	if err != nil {
		t.Fatalf("web -> api: %v", err)
	}
	if id, _ := x509svid.IDFromCert(peer[0]); id.String() != apiID {
		t.Fatalf("web saw %s, want %s", id, apiID)
	}
	first := peer[0]
	firstWeb, _ := src["web"].GetX509SVID()

	ld := p.StartLoad(2)
	rotated := func(name string, before []byte) bool {
		svid, err := src[name].GetX509SVID()
		return err == nil && string(svid.Certificates[0].Raw) != string(before)
	}
	deadline := time.Now().Add(25 * time.Second)
	for !rotated("web", firstWeb.Certificates[0].Raw) || !rotated("api", first.Raw) {
		if time.Now().After(deadline) {
			ld.Stop()
			t.Fatal("the agent did not rotate both SVIDs within 25s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	ld.Stop()
	t.Logf("connections: %d ok, %d failed", ld.OK.Load(), ld.Failed.Load())
	if n := ld.Failed.Load(); n != 0 {
		t.Errorf("%d connections failed while SPIRE rotated the SVIDs: %v", n, ld.Errors())
	}
	if ld.OK.Load() < 20 {
		t.Errorf("only %d connections made", ld.OK.Load())
	}
	peer, err = p.Call(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if peer[0].Equal(first) {
		t.Error("web still sees api's first certificate")
	}
	n := 0
	for _, l := range logs() {
		if strings.Contains(l, "SVID rotated") {
			n++
		}
	}
	if n < 2 {
		t.Errorf("%d rotations logged, want at least 2", n)
	}
}
