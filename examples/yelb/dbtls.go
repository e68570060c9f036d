package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// identity is what the app server shows Postgres and Redis and checks them
// with: an SVID and the bundle of its trust domain (in mesh mode, the
// rotating identity of the databases' own PKI, newDBIdentity; in dev mode,
// the dev mesh's). certs.Source is one.
type identity interface {
	x509svid.Source
	x509bundle.Source
}

// storeTLS is the TLS config of the app server's Postgres and Redis
// clients: each handshake presents the identity's current certificate (its
// common name is the database user) and verifies the server against the
// identity's current trust bundle, by the IP or name the client dialed.
// TLS 1.3 only.
func storeTLS(id identity) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			svid, err := id.GetX509SVID()
			if err != nil {
				return nil, fmt.Errorf("yelb: client certificate: %w", err)
			}
			c := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
			for _, cert := range svid.Certificates {
				c.Certificate = append(c.Certificate, cert.Raw)
			}
			return c, nil
		},
		// The roots rotate: verify with the bundle of the moment.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("yelb: the server sent no certificate")
			}
			svid, err := id.GetX509SVID()
			if err != nil {
				return fmt.Errorf("yelb: verify the server: %w", err)
			}
			b, err := id.GetX509BundleForTrustDomain(svid.ID.TrustDomain())
			if err != nil {
				return fmt.Errorf("yelb: verify the server: %w", err)
			}
			roots := x509.NewCertPool()
			for _, r := range b.X509Authorities() {
				roots.AddCert(r)
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				DNSName: cs.ServerName, Roots: roots, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("yelb: the server's certificate: %w", err)
			}
			return nil
		},
	}
}
