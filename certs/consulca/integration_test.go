package consulca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/consulca"
	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// consulActiveRoot reads the active root of Consul's CA.
func consulActiveRoot(t testing.TB, c *api.Client) *x509.Certificate {
	t.Helper()
	roots, _, err := c.Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roots.Roots {
		if r.Active {
			b, _ := pem.Decode([]byte(r.RootCertPEM))
			if b == nil {
				t.Fatal("active root: not PEM")
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return cert
		}
	}
	t.Fatal("no active root")
	return nil
}

// TestConsulCAMeshRotation: two ztnet services, web and api, whose
// identities come from a real Consul's Connect CA, talk mutual TLS; the CA
// then rotates to a new root (a new private key for the built-in provider,
// which Consul cross-signs with the old one) while web opens a steady
// stream of new connections (full handshakes) to api. No connection fails,
// both leaves move to the new root, and both services trust the old and
// the new root.
func TestConsulCAMeshRotation(t *testing.T) {
	srv := testenv.Consul(t)
	cfg := api.DefaultConfig()
	cfg.Address = srv.Addr
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger, _ := logtest.Capture(t)
	td := spiffeid.RequireTrustDomainFromString(srv.TrustDomain)
	src := map[string]*certs.Rotator{}
	for _, name := range []string{"web", "api"} {
		r, err := consulca.New(context.Background(), consulca.Config{Client: client, Service: name},
			certs.WithLogger(logger.With("source", name)),
			certs.WithBackoff(100*time.Millisecond, time.Second),
			certs.WithRootChangeWindow(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		src[name] = r
	}
	p := meshtest.NewPair(t, logger, "web", src["web"], "api", src["api"])
	peer, err := p.Call(context.Background())
	if err != nil {
		t.Fatalf("web -> api: %v", err)
	}
	if id, _ := x509svid.IDFromCert(peer[0]); id.String() != "spiffe://"+srv.TrustDomain+"/ns/default/dc/dc1/svc/api" {
		t.Fatalf("web saw %s", id)
	}
	oldRoot := consulActiveRoot(t, client)

	ld := p.StartLoad(4)
	time.Sleep(500 * time.Millisecond)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	conf, _, err := client.Connect().CAGetConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	conf.Config["PrivateKey"] = string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	conf.Config["PrivateKeyType"] = "ec"
	conf.Config["PrivateKeyBits"] = 256
	rotated := time.Now()
	if _, err := client.Connect().CASetConfig(conf, nil); err != nil {
		t.Fatalf("rotate the Consul CA: %v", err)
	}
	newRoot := consulActiveRoot(t, client)
	if newRoot.Equal(oldRoot) {
		t.Fatal("the CA did not rotate")
	}

	onNewRoot := func(r *certs.Rotator) bool {
		svid, err := r.GetX509SVID()
		return err == nil && signedBy(svid.Certificates[:1], newRoot)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !onNewRoot(src["web"]) || !onNewRoot(src["api"]) {
		if time.Now().After(deadline) {
			t.Fatal("the leaves did not move to the new root within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	moved := time.Since(rotated)
	time.Sleep(500 * time.Millisecond) // traffic on the new leaves too
	ld.Stop()
	t.Logf("connections: %d ok, %d failed; both leaves on the new root %v after the rotation",
		ld.OK.Load(), ld.Failed.Load(), moved.Round(time.Millisecond))
	if n := ld.Failed.Load(); n != 0 {
		t.Errorf("%d connections failed during the CA rotation: %v", n, ld.Errors())
	}
	if ld.OK.Load() < 50 {
		t.Errorf("only %d connections made", ld.OK.Load())
	}
	for name, r := range src {
		b, err := r.GetX509BundleForTrustDomain(td)
		if err != nil {
			t.Fatal(err)
		}
		if !b.HasX509Authority(oldRoot) || !b.HasX509Authority(newRoot) {
			t.Errorf("%s: bundle has old root %v, new root %v; want both", name, b.HasX509Authority(oldRoot), b.HasX509Authority(newRoot))
		}
		// The chain carries the new root cross-signed by the old one, so
		// that peers still trusting only the old root verify the new leaf.
		svid, _ := r.GetX509SVID()
		if len(svid.Certificates) < 2 || svid.Certificates[1].CheckSignatureFrom(oldRoot) != nil {
			t.Errorf("%s: the chain (%d certificates) lacks the new root cross-signed by the old one", name, len(svid.Certificates))
		}
	}
	if _, err := p.Call(context.Background()); err != nil {
		t.Fatalf("web -> api after the rotation: %v", err)
	}
}

// signedBy reports whether some certificate of chain is signed by root.
func signedBy(chain []*x509.Certificate, root *x509.Certificate) bool {
	for _, c := range chain {
		if c.CheckSignatureFrom(root) == nil {
			return true
		}
	}
	return false
}
