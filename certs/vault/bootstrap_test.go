package vault

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestBootstrapRoleSignsOnlyItsService: the role of service web signs web's
// SPIFFE ID and refuses a CSR for api, for another trust domain, with a path
// that web's ID is a prefix of, with an extra SAN, with a CN or a DNS name;
// web's policy cannot use api's role.
func TestBootstrapRoleSignsOnlyItsService(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web", "api")
	if !e.pki.Created || e.pki.RootIssuer == "" || e.pki.IntermediateIssuer == "" {
		t.Fatalf("bootstrap result %+v", e.pki)
	}
	web := serviceID("web").String()
	sign := func(c *api.Client, role, csr string) (*api.Secret, error) {
		return c.Logical().Write("pki/sign/"+role, map[string]any{"csr": csr, "format": "pem"})
	}

	s, err := sign(e.root, "web", csrPEM(t, "", nil, web))
	if err != nil {
		t.Fatalf("web's role refused web's CSR: %v", err)
	}
	block, _ := pem.Decode([]byte(s.Data["certificate"].(string)))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != web || len(leaf.DNSNames) != 0 || leaf.Subject.CommonName != "" {
		t.Errorf("leaf names: URIs %v DNS %v CN %q", leaf.URIs, leaf.DNSNames, leaf.Subject.CommonName)
	}

	for _, tc := range []struct {
		name, cn string
		dns      []string
		uris     []string
	}{
		{name: "service B", uris: []string{serviceID("api").String()}},
		{name: "other trust domain", uris: []string{"spiffe://evil.test/ns/default/dc/dc1/svc/web"}},
		{name: "longer path", uris: []string{web + "/x"}},
		{name: "other dc", uris: []string{"spiffe://ztn.test/ns/default/dc/dc2/svc/web"}},
		{name: "extra URI", uris: []string{web, serviceID("api").String()}},
		{name: "common name", cn: "web", uris: []string{web}},
		{name: "DNS SAN", dns: []string{"web.example.com"}, uris: []string{web}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sign(e.root, "web", csrPEM(t, tc.cn, tc.dns, tc.uris...))
			if err == nil {
				t.Fatalf("web's role signed %s: %v", tc.name, s.Data["certificate"])
			}
			var re *api.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 400 {
				t.Fatalf("refusal: %v, want a 400 from the role", err)
			}
			t.Logf("refused: %s", strings.Join(re.Errors, "; "))
		})
	}

	// Vault has no way to require a URI SAN: a CSR without any name gets a
	// certificate without any name, which names no one (ztn refuses a peer
	// without exactly one SPIFFE ID).
	s, err = sign(e.root, "web", csrPEM(t, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode([]byte(s.Data["certificate"].(string)))
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || len(c.URIs)+len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses) != 0 || c.Subject.CommonName != "" {
		t.Errorf("a CSR without names got a certificate with names: %v", err)
	}

	// A token with web's policy may use web's role only.
	webTok := vaultClient(t, e.srv.HTTPAddr(), e.serviceToken(t, "web", nil))
	if _, err := sign(webTok, "web", csrPEM(t, "", nil, web)); err != nil {
		t.Errorf("web's token cannot sign with web's role: %v", err)
	}
	_, err = sign(webTok, "api", csrPEM(t, "", nil, serviceID("api").String()))
	if re := (*api.ResponseError)(nil); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("web's token signing with api's role: %v, want 403", err)
	}
}

// TestBootstrapIdempotent: a second run keeps the CA and adds roles.
func TestBootstrapIdempotent(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	first := e.pki
	e.boot.Services = []string{"web", "api"}
	e.bootstrap(t)
	if e.pki.Created || e.pki.IntermediateIssuer != first.IntermediateIssuer {
		t.Fatalf("second bootstrap: %+v, first %+v", e.pki, first)
	}
	ids, def, err := listIssuers(context.Background(), e.root, "pki")
	if err != nil || len(ids) != 2 || def != first.IntermediateIssuer {
		t.Fatalf("issuers %v default %s (%v), want root + intermediate, default %s", ids, def, err, first.IntermediateIssuer)
	}
	newVault(t, e.config(t, "api")) // the new role works
}

// TestBootstrapErrors: bad inputs are refused with a clear error.
func TestBootstrapErrors(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour)
	ctx := context.Background()
	if _, err := Bootstrap(ctx, e.root, BootstrapConfig{}); err == nil || !strings.Contains(err.Error(), "no trust domain") {
		t.Errorf("no trust domain: %v", err)
	}
	if _, err := Bootstrap(ctx, e.root, BootstrapConfig{TrustDomain: testTD, Services: []string{"bad/name"}}); err == nil || !strings.Contains(err.Error(), `service "bad/name"`) {
		t.Errorf("bad service: %v", err)
	}
	if _, err := Bootstrap(ctx, e.root, BootstrapConfig{TrustDomain: testTD, Mount: "secret"}); err == nil || !strings.Contains(err.Error(), "not pki") {
		t.Errorf("kv mount: %v", err)
	}
	weak := vaultClient(t, e.srv.HTTPAddr(), e.write(t, "auth/token/create", map[string]any{"policies": []string{"default"}}).Auth.ClientToken)
	if _, err := Bootstrap(ctx, weak, BootstrapConfig{TrustDomain: testTD}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("weak token: %v", err)
	}
}
