package certs_test

import (
	"context"
	"log"

	"github.com/ztnlabs/ztn/certs"
)

// A service whose identity is written to files by cert-manager (a
// Certificate's secret mounted at /etc/tls) or Vault Agent, and reloaded
// when they change.
func ExampleNewFiles() {
	src, err := certs.NewFiles(context.Background(), certs.FilesConfig{
		Cert:   "/etc/tls/tls.crt",
		Key:    "/etc/tls/tls.key",
		Bundle: "/etc/tls/ca.crt",
	})
	if err != nil {
		log.Fatal(err) // e.g. certs: files: key file /etc/tls/tls.key: ...
	}
	defer src.Close()
}
