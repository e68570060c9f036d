package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestCommonName: with BootstrapConfig.CommonNames, a source asking for its
// service's name as Config.CommonName gets it as the subject CN, with the
// SPIFFE ID its only SAN; the role refuses any other CN. Without
// CommonNames, asking for a CN fails with the role's reason, and without
// Config.CommonName the leaf has none.
func TestCommonName(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Hour, "web")
	ctx := context.Background()

	// The role of newVaultEnv has no CommonNames: no CN is allowed.
	cfg := e.config(t, "web")
	cfg.CommonName = "web"
	if _, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "common name") {
		t.Fatalf("a CN from a role without CommonNames: %v; want a refusal naming the common name", err)
	}

	e.boot.CommonNames = true
	e.bootstrap(t)
	cfg = e.config(t, "web")
	cfg.CommonName = "web"
	svid, err := newVault(t, cfg).GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	leaf := svid.Certificates[0]
	if leaf.Subject.CommonName != "web" || len(leaf.URIs) != 1 || leaf.URIs[0].String() != serviceID("web").String() ||
		len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("leaf: CN %q URIs %v DNS %v IP %v", leaf.Subject.CommonName, leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
	}
	plain, err := newVault(t, e.config(t, "web")).GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if cn := plain.Certificates[0].Subject.CommonName; cn != "" {
		t.Errorf("leaf without Config.CommonName has CN %q", cn)
	}
	for _, cn := range []string{"api", "web.example.com", "postgres"} {
		_, err := e.root.Logical().Write("pki/sign/web", map[string]any{"csr": csrPEM(t, cn, nil, serviceID("web").String()), "format": "pem"})
		var re *api.ResponseError
		if err == nil || !errors.As(err, &re) || re.StatusCode != 400 {
			t.Errorf("web's role with CommonNames and CN %q: %v; want a 400", cn, err)
		}
	}
}
