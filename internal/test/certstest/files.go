package certstest

import (
	"context"
	"crypto"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/certs"
)

// SVIDFiles writes src's current SVID as the files an outside program
// (curl, openssl, grpcurl, psql, redis-cli) reads: the certificate chain
// and the PKCS#8 key, PEM, in dir as name.crt and name.key, readable by
// their owner only. It returns their paths.
func SVIDFiles(t testing.TB, src x509svid.Source, dir, name string) (certFile, keyFile string) {
	t.Helper()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for file, data := range map[string][]byte{
		certFile: CertsPEM(svid.Certificates...),
		keyFile:  KeyPEM(t, svid.PrivateKey.(crypto.Signer), true),
	} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// DevSource is a one-hour SVID source of service name in datacenter dc1,
// issued by ca, closed when the test ends.
func DevSource(t testing.TB, ca *certs.DevCA, name string) certs.Source {
	t.Helper()
	src, err := ca.Source(context.Background(), "dc1", name, time.Hour, certs.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}
