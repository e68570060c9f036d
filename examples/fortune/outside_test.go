package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/certs/vault"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// opensslPeer is openssl s_client as a fortune consumer nobody here wrote,
// as the walkthrough's `socat - openssl:...` client would be: TLS 1.3 with
// the consumer's Vault-issued certificate from files, the server checked
// against the Vault CA.
type opensslPeer struct {
	bin, dir            string
	ca, cert, key       string // the consumer's
	otherCert, otherKey string // the consumer's SPIFFE ID from another CA
}

// newOpensslPeer writes the consumer's current certificate and the trust
// bundle (from a Vault source logged in with token) and another CA's
// certificate naming the consumer.
func newOpensslPeer(t *testing.T, ctx context.Context, vaultAddr, token string) *opensslPeer {
	t.Helper()
	p := &opensslPeer{bin: testenv.Program(t, "openssl", "openssl"), dir: t.TempDir()}
	td := spiffeid.RequireTrustDomainFromString("ztn.test")
	src, err := vault.New(ctx, vault.Config{Service: "consumer", TrustDomain: td, Address: vaultAddr,
		Auth: vault.Token(token), Role: "consumer"}, certs.WithLogger(meshtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	p.cert, p.key = certstest.SVIDFiles(t, src, p.dir, "consumer")
	bundle, err := src.GetX509BundleForTrustDomain(td)
	if err != nil {
		t.Fatal(err)
	}
	p.ca = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.ca, certstest.CertsPEM(bundle.X509Authorities()...), 0o600); err != nil {
		t.Fatal(err)
	}

	other, err := certs.NewDevCA(td)
	if err != nil {
		t.Fatal(err)
	}
	p.otherCert, p.otherKey = certstest.SVIDFiles(t, meshtest.DevSource(t, other, "consumer"), p.dir, "other-consumer")
	return p
}

// fetch connects to a fortune server at addr with openssl, presenting the
// given certificate and key (none when empty), and returns what the server
// sent (s_client -quiet prints only that on stdout) and openssl's
// messages.
func (p *opensslPeer) fetch(t *testing.T, addr, cert, key string) (fortune, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := []string{"s_client", "-connect", addr, "-tls1_3", "-CAfile", p.ca, "-verify_return_error", "-quiet"}
	if cert != "" {
		// -cert sends the file's first certificate only; -cert_chain
		// adds the intermediate that follows it.
		args = append(args, "-cert", cert, "-cert_chain", cert, "-key", key)
	}
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Stdin = strings.NewReader("")
	var out, msgs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &msgs
	_ = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("openssl s_client to %s did not finish: %s", addr, msgs.String())
	}
	return strings.TrimSpace(out.String()), msgs.String()
}
