package vault_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	"github.com/ztnlabs/ztn/internal/certsx"
)

// TestVaultCARotationCycle runs a whole CA rotation on a real Vault, as an
// operator would, while web opens new connections to api on two goroutines:
// RotateCA reports the new issuers published, then the switch; the
// operator's Progress callback holds the switch until both services trust
// the new root (certs.InspectCA), so the test does not depend on timing under
// load; both leaves move to the new intermediate; Retire refuses before
// RetireAt, then because of an unexpired leaf of the old intermediate that
// the mount stores, then deletes the old issuers once it is revoked; both
// services drop the old root after its last leaf expired. No connection
// fails.
func TestVaultCARotationCycle(t *testing.T) {
	// Leaves renew at 60-90% of their life: 10s leaves leave 1-4s for a
	// signing and bundle read, which a loaded machine needs.
	const leafTTL = 10 * time.Second
	m := newMesh(t, meshOptions{ttl: leafTTL})
	web, apiSrc := m.src["web"], m.src["api"]
	oldInt := m.pki.IntermediateIssuer
	oldRoot := issuerCert(t, m.root, m.pki.RootIssuer)
	stored := signStored(t, m, oldInt)

	inspect := func(src *certs.Rotator) certs.CAInfo {
		info, err := certs.InspectCA(src)
		if err != nil {
			t.Errorf("InspectCA: %v", err)
		}
		return info
	}
	waitAll := func(what string, cond func(certs.CAInfo) bool) {
		deadline := time.Now().Add(30 * time.Second)
		for !cond(inspect(web)) || !cond(inspect(apiSrc)) {
			if time.Now().After(deadline) {
				t.Fatalf("30s without %s: web %+v, api %+v", what, inspect(web), inspect(apiSrc))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	tr := startTraffic(m, 2)
	defer tr.Stop()
	time.Sleep(500 * time.Millisecond)
	var (
		mu     sync.Mutex
		steps  []vault.RotatedCA
		newKey string
	)
	rot, err := vault.RotateCA(context.Background(), m.root, vault.RotateCAConfig{
		TrustDomain: meshTD, Propagation: 200 * time.Millisecond,
		Progress: func(r vault.RotatedCA) {
			mu.Lock()
			steps = append(steps, r)
			mu.Unlock()
			if r.Switched.IsZero() {
				// Published: hold the switch until the fleet trusts the new root.
				newKey = certsx.KeyID(issuerCert(t, m.root, r.RootIssuer))
				waitAll("the new root in both bundles", func(i certs.CAInfo) bool { return slices.Contains(i.Roots, newKey) })
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(steps) != 2 || steps[0].Published.IsZero() || !steps[0].Switched.IsZero() ||
		steps[1].Published != steps[0].Published || !steps[1].Switched.After(steps[0].Published) ||
		steps[1].RetireAt.Before(steps[1].Switched.Add(leafTTL)) || steps[1].IntermediateIssuer != rot.IntermediateIssuer {
		t.Errorf("progress: %+v, want published, then switched, retire after the %v max_ttl", steps, leafTTL)
	}
	mu.Unlock()
	if !slices.Contains(rot.Previous, oldInt) || rot.Mount != "pki" {
		t.Errorf("rotation %+v: previous issuers lack %s", rot, oldInt)
	}
	newIntKey := certsx.KeyID(issuerCert(t, m.root, rot.IntermediateIssuer))
	waitAll("both leaves under the new intermediate", func(i certs.CAInfo) bool { return i.LeafIssuer == newIntKey && i.LeafRoot == newKey })

	err = rot.Retire(context.Background(), m.root)
	if err == nil || !strings.Contains(err.Error(), "not deleting them yet") {
		t.Fatalf("Retire before RetireAt: %v, want a refusal", err)
	}
	time.Sleep(time.Until(rot.RetireAt))
	err = rot.Retire(context.Background(), m.root)
	if err == nil || !strings.Contains(err.Error(), "signed certificate "+stored) || !strings.Contains(err.Error(), oldInt) {
		t.Fatalf("Retire with a stored unexpired leaf of the old intermediate: %v, want a refusal naming it", err)
	}
	if _, err := m.root.Logical().Write("pki/revoke", map[string]any{"serial_number": stored}); err != nil {
		t.Fatal(err)
	}
	if err := rot.Retire(context.Background(), m.root); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	retired := time.Now()
	s, err := m.root.Logical().List("pki/issuers")
	if err != nil {
		t.Fatal(err)
	}
	left := fmt.Sprint(s.Data["keys"])
	for _, id := range rot.Previous {
		if strings.Contains(left, id) {
			t.Errorf("issuer %s not deleted: %s", id, left)
		}
	}
	if err := rot.Retire(context.Background(), m.root); err != nil {
		t.Errorf("Retire again: %v", err)
	}

	oldKey := certsx.KeyID(oldRoot)
	waitAll("the old root dropped", func(i certs.CAInfo) bool { return !slices.Contains(i.Roots, oldKey) })
	t.Logf("old root dropped %v after retirement", time.Since(retired).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // traffic after the drop too
	tr.Stop()
	t.Logf("connections: %d ok, %d failed", tr.OK.Load(), tr.Failed.Load())
	if n := tr.Failed.Load(); n != 0 {
		t.Errorf("%d connections failed during the CA rotation: %v", n, tr.Errors())
	}
	if tr.OK.Load() < 100 {
		t.Errorf("only %d connections made", tr.OK.Load())
	}
}

// signStored has the issuer sign a leaf for an hour with sign-verbatim,
// which the mount stores, and returns its serial as Vault names it.
func signStored(t *testing.T, m *mesh, issuer string) string {
	t.Helper()
	csr := vault.CSRPEM(t, "", nil, "spiffe://ztn.test/ns/default/dc/dc1/svc/batch")
	s, err := m.root.Logical().Write("pki/issuer/"+issuer+"/sign-verbatim", map[string]any{"csr": csr, "ttl": "1h", "format": "pem"})
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEM(t, s.Data["certificate"].(string))
	if cert.IsCA || cert.NotAfter.Before(time.Now().Add(30*time.Minute)) {
		t.Fatalf("sign-verbatim gave %v until %v", cert.Subject, cert.NotAfter)
	}
	return s.Data["serial_number"].(string)
}
