package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/examples/chat/internal/store/pgstore"
	"github.com/ztnlabs/ztn/examples/internal/localdb"
)

// devStore is dev mode's store: a Postgres of the program's own when
// PostgreSQL is installed (TLS, the store logs in with a client
// certificate whose key lives in memory only), an in-memory store
// otherwise. stop ends it.
func devStore(ctx context.Context, rc roleConfig) (st store.Store, stop func(), err error) {
	bins := localdb.Find()
	if bins.PostgresDir == "" {
		fmt.Fprintln(rc.out, "chat: !! PostgreSQL is not installed (Debian package postgresql): the store is IN MEMORY, and everything is lost at exit !!")
		return store.NewMemory(), func() {}, nil
	}
	server, client, err := devDBTLS()
	if err != nil {
		return nil, nil, err
	}
	const db, user = "chat", "chat"
	pg, err := localdb.StartPostgres(ctx, bins, server, db, user)
	if err != nil {
		return nil, nil, err
	}
	pgs, err := pgstore.Open(ctx, "postgres://"+user+"@"+pg.Addr+"/"+db, nil,
		pgstore.WithTLSConfig(client), pgstore.WithLogger(rc.logger), pgstore.WithTracerProvider(rc.providersOf(svcStore).tracer))
	if err != nil {
		_ = pg.Stop()
		return nil, nil, err
	}
	fmt.Fprintf(rc.out, "chat: the store is Postgres at %s (a cluster of this run's own in %s, removed at exit)\n", pg.Addr, pg.Dir)
	return pgs, func() { pgs.Close(); _ = pg.Stop() }, nil
}

// devDBTLS makes a throwaway CA in memory, the database server's
// certificate for 127.0.0.1 and the store's client certificate (common
// name "chat", the database user), and the store's TLS config.
func devDBTLS() (localdb.TLS, *tls.Config, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return localdb.TLS{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chat dev database CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(7 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return localdb.TLS{}, nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, server bool) (certPEM, keyPEM []byte, pair tls.Certificate, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, pair, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(7 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, pair, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, pair, err
		}
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		pair, err = tls.X509KeyPair(certPEM, keyPEM)
		return certPEM, keyPEM, pair, err
	}
	srvCert, srvKey, _, err := issue(2, "127.0.0.1", true)
	if err != nil {
		return localdb.TLS{}, nil, err
	}
	_, _, clientPair, err := issue(3, "chat", false)
	if err != nil {
		return localdb.TLS{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return localdb.TLS{Cert: srvCert, Key: srvKey, ClientCAs: caPEM},
		&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientPair}, MinVersion: tls.VersionTLS13}, nil
}
