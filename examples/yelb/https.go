package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// webCert is the gateway's public certificate, for browsers: signed by
// Vault's PKI with a role for web names (an IP or DNS name, not a SPIFFE
// ID), for a key made in this process that never leaves its memory, and
// signed again at two thirds of its life (every 10s after a failure).
type webCert struct {
	client      *vaultapi.Client
	mount, role string
	name        string
	log         *slog.Logger

	mu   sync.Mutex
	cert *tls.Certificate

	cancel context.CancelFunc
	done   chan struct{}
}

func newWebCert(ctx context.Context, vaultAddr, token, mount, role, name string, logger *slog.Logger) (*webCert, error) {
	if name == "" {
		return nil, errors.New("yelb: https: no name for the certificate (-https-name)")
	}
	cfg := vaultapi.DefaultConfig()
	cfg.Address = vaultAddr
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("yelb: https: vault client: %w", err)
	}
	client.SetToken(token)
	w := &webCert{client: client, mount: mount, role: role, name: name, log: logger, done: make(chan struct{})}
	next, err := w.renew(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(bg, next)
	return w, nil
}

// renew has the certificate signed and returns when to renew it.
func (w *webCert) renew(ctx context.Context) (time.Duration, error) {
	what := fmt.Sprintf("yelb: https: sign %s with role %q at %s/", w.name, w.role, w.mount)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	tmpl := &x509.CertificateRequest{}
	data := map[string]any{"format": "pem", "exclude_cn_from_sans": true}
	if ip := net.ParseIP(w.name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
		data["ip_sans"] = w.name
	} else {
		tmpl.DNSNames = []string{w.name}
		data["alt_names"] = w.name
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	data["csr"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
	s, err := w.client.Logical().WriteWithContext(ctx, w.mount+"/sign/"+w.role, data)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if s == nil {
		return 0, fmt.Errorf("%s: empty answer", what)
	}
	certPEM, _ := s.Data["certificate"].(string)
	issuing, _ := s.Data["issuing_ca"].(string)
	var c tls.Certificate
	for rest := []byte(certPEM + "\n" + issuing); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c.Certificate = append(c.Certificate, b.Bytes)
	}
	if len(c.Certificate) == 0 {
		return 0, fmt.Errorf("%s: no certificate in the answer", what)
	}
	if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := c.Leaf.VerifyHostname(w.name); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	c.PrivateKey = key
	w.mu.Lock()
	w.cert = &c
	w.mu.Unlock()
	w.log.Info("yelb: https certificate signed", "name", w.name, "serial", c.Leaf.SerialNumber.Text(16), "not_after", c.Leaf.NotAfter)
	return time.Until(c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) * 2 / 3)), nil
}

func (w *webCert) run(ctx context.Context, next time.Duration) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(next, time.Second)):
		}
		var err error
		if next, err = w.renew(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("yelb: https certificate not renewed; keeping the current one", "err", err)
			next = 10 * time.Second
		}
	}
}

// GetCertificate is tls.Config's.
func (w *webCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cert, nil
}

// Close stops the renewal.
func (w *webCert) Close() error {
	w.cancel()
	<-w.done
	return nil
}
