package certstest

import (
	"crypto"
	"os"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
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
