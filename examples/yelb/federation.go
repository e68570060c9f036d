package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
)

// peerSpec is the other trust domain a service federates: its name in
// intentions (Peer), its trust domain, and the Vault PKI mount whose CA
// signs it.
type peerSpec struct {
	Name  string
	TD    spiffeid.TrustDomain
	Mount string
}

// parsePeer parses NAME=TRUST_DOMAIN@MOUNT.
func parsePeer(s string) (peerSpec, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return peerSpec{}, fmt.Errorf("yelb: -peer %q: want NAME=TRUST_DOMAIN@VAULT_PKI_MOUNT", s)
	}
	td, mount, err := parseTDMount(rest)
	if err != nil {
		return peerSpec{}, fmt.Errorf("yelb: -peer %q: %w", s, err)
	}
	return peerSpec{Name: name, TD: td, Mount: mount}, nil
}

// parseTDMount parses TRUST_DOMAIN@MOUNT (a trailing slash of the mount
// dropped).
func parseTDMount(s string) (spiffeid.TrustDomain, string, error) {
	td, mount, ok := strings.Cut(s, "@")
	mount = strings.Trim(mount, "/")
	if !ok || mount == "" {
		return spiffeid.TrustDomain{}, "", fmt.Errorf("want TRUST_DOMAIN@VAULT_PKI_MOUNT")
	}
	t, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return spiffeid.TrustDomain{}, "", err
	}
	return t, mount, nil
}

// peerBundle is the trust bundle of a federated trust domain whose CA is a
// Vault PKI mount: the roots (self-signed issuers) of the mount, read
// without a token (Vault publishes them), and read again every refresh so
// that a rotation of that CA is followed. A root stays until the mount stops
// listing it.
type peerBundle struct {
	spec   peerSpec
	client *vaultapi.Client
	log    *slog.Logger

	mu     sync.Mutex
	bundle *x509bundle.Bundle

	cancel context.CancelFunc
	done   chan struct{}
}

func newPeerBundle(ctx context.Context, spec peerSpec, vaultAddr string, refresh time.Duration, logger *slog.Logger) (*peerBundle, error) {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = vaultAddr
	client, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("yelb: vault client: %w", err)
	}
	client.ClearToken() // the issuers are public: no token goes there
	p := &peerBundle{spec: spec, client: client, log: logger, done: make(chan struct{})}
	if err := p.read(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.run(bg, refresh)
	return p, nil
}

func (p *peerBundle) run(ctx context.Context, refresh time.Duration) {
	defer close(p.done)
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.read(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("yelb: federated bundle: keeping the last one", "peer", p.spec.Name, "err", err)
			}
		}
	}
}

// read reads the mount's roots.
func (p *peerBundle) read(ctx context.Context) error {
	what := fmt.Sprintf("yelb: federated trust domain %s (peer %s): the roots of Vault mount %s/", p.spec.TD.Name(), p.spec.Name, p.spec.Mount)
	list, err := p.client.Logical().ListWithContext(ctx, p.spec.Mount+"/issuers")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var ids []any
	if list != nil {
		ids, _ = list.Data["keys"].([]any)
	}
	var roots []*x509.Certificate
	for _, id := range ids {
		s, err := p.client.Logical().ReadWithContext(ctx, fmt.Sprintf("%s/issuer/%v/json", p.spec.Mount, id))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if s == nil {
			continue
		}
		pemCert, _ := s.Data["certificate"].(string)
		block, _ := pem.Decode([]byte(pemCert))
		if block == nil || block.Type != "CERTIFICATE" {
			return fmt.Errorf("%s: issuer %v: no PEM certificate", what, id)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: issuer %v: %w", what, id, err)
		}
		if c.IsCA && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
		}
	}
	if len(roots) == 0 {
		return fmt.Errorf("%s: none found", what)
	}
	b := x509bundle.FromX509Authorities(p.spec.TD, roots)
	p.mu.Lock()
	p.bundle = b
	p.mu.Unlock()
	return nil
}

func (p *peerBundle) get() *x509bundle.Bundle {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bundle
}

// Close stops the refresh.
func (p *peerBundle) Close() error {
	p.cancel()
	<-p.done
	return nil
}

// federatedSource is a service's own rotating identity and bundle, plus the
// bundle of the trust domain it federates: what ztnet needs to verify the
// other side's certificates (ztnet.WithFederatedPeer).
type federatedSource struct {
	*certs.Rotator
	peer *peerBundle
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (f federatedSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if f.peer != nil && td == f.peer.spec.TD {
		return f.peer.get(), nil
	}
	return f.Rotator.GetX509BundleForTrustDomain(td)
}
