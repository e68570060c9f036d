package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/ztnlabs/ztn/internal/certsx"
)

// WatchBundles implements certs.BundleWatcher: it reads the mount's issuers every
// BundleRefresh and reports the roots when they change. It also runs the
// token keeper, so that both end with the Rotator.
func (v *issuer) WatchBundles(ctx context.Context, update func([]*x509bundle.Bundle)) error {
	var wg sync.WaitGroup
	wg.Go(func() { v.keeper.run(ctx) })
	defer wg.Wait()

	ticker := time.NewTicker(v.refresh)
	defer ticker.Stop()
	var last []*x509.Certificate
	failing := false
	for first := true; ; first = false {
		roots, err := v.refreshRoots(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				v.log.Warn("vault: reading the trust bundle failed; keeping the last one, retrying every refresh",
					"error", err, "refresh", v.refresh)
			}
			failing = true
		case err == nil:
			if failing {
				v.log.Info("vault: reading the trust bundle works again")
			}
			failing = false
			if first || !certsx.SameCertSet(roots, last) {
				last = roots
				update([]*x509bundle.Bundle{x509bundle.FromX509Authorities(v.td, roots)})
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// issuerJSON is the data of <mount>/issuer/<id>/json.
type issuerJSON struct {
	Certificate string   `json:"certificate"`
	CAChain     []string `json:"ca_chain"`
	Revoked     bool     `json:"revoked"`
}

// refreshRoots reads the mount's issuers and returns the roots to trust: the
// self-signed certificates of every unrevoked issuer's ca_chain, plus those
// that left the mount less than the retention ago. It also notices a change
// of default issuer and asks the Rotator for a new SVID.
func (v *issuer) refreshRoots(ctx context.Context) ([]*x509.Certificate, error) {
	var list struct {
		Keys    []string `json:"keys"`
		KeyInfo map[string]struct {
			IsDefault bool `json:"is_default"`
		} `json:"key_info"`
	}
	err := v.do(ctx, "LIST", v.mount+"/issuers", nil, &list)
	var re *api.ResponseError
	if errors.As(err, &re) {
		// LIST <pki>/issuers needs no token: a 403 means that there is no
		// PKI engine at the mount (Vault then applies the token's policy
		// to an unknown path), as does a 404 "no handler for route".
		msg := errorMessages(re)
		switch {
		case re.StatusCode == http.StatusForbidden,
			re.StatusCode == http.StatusNotFound && strings.Contains(msg, "no handler for route"),
			re.StatusCode == http.StatusNotFound && strings.Contains(msg, "unsupported path"):
			return nil, fmt.Errorf("vault: mount %q not found (or it is not a PKI engine): %s", v.mount, msg)
		case re.StatusCode == http.StatusNotFound:
			return nil, fmt.Errorf("vault: mount %q has no issuers (set up a CA, e.g. with vault.Bootstrap)", v.mount)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("vault: list issuers at %s/: %w", v.mount, describeError(v.client.Address(), err))
	}
	if len(list.Keys) == 0 {
		return nil, fmt.Errorf("vault: mount %q has no issuers (set up a CA, e.g. with vault.Bootstrap)", v.mount)
	}
	for _, id := range list.Keys {
		if id == "" || strings.ContainsAny(id, "/?#") {
			return nil, fmt.Errorf("vault: list issuers at %s/: malformed response: issuer id %q", v.mount, id)
		}
	}
	// The issuers are read in parallel: this is on the issuance path.
	issuers := make([]issuerJSON, len(list.Keys))
	errs := make([]error, len(list.Keys))
	var wg sync.WaitGroup
	for i, id := range list.Keys {
		wg.Go(func() { errs[i] = v.do(ctx, http.MethodGet, v.mount+"/issuer/"+id+"/json", nil, &issuers[i]) })
	}
	wg.Wait()
	var current, revoked []*x509.Certificate
	var defaultCert []byte
	defaultID := ""
	for i, id := range list.Keys {
		if err := errs[i]; err != nil {
			return nil, fmt.Errorf("vault: read issuer %s at %s/: %w", id, v.mount, describeError(v.client.Address(), err))
		}
		is := &issuers[i]
		own, err := certsx.PEMCertificates([]byte(is.Certificate), false)
		if err != nil || len(own) != 1 {
			return nil, fmt.Errorf("vault: read issuer %s at %s/: malformed response: certificate: %v", id, v.mount, errOr(err, "want exactly one"))
		}
		if list.KeyInfo[id].IsDefault {
			defaultID, defaultCert = id, own[0].Raw
		}
		if is.Revoked {
			revoked = append(revoked, own[0])
			continue
		}
		for i, p := range is.CAChain {
			cs, err := certsx.PEMCertificates([]byte(p), false)
			if err != nil {
				return nil, fmt.Errorf("vault: read issuer %s at %s/: malformed response: ca_chain[%d]: %v", id, v.mount, i, err)
			}
			for _, c := range cs {
				if isSelfSigned(c) && !certsx.ContainsCert(current, c) {
					current = append(current, c)
				}
			}
		}
	}
	current = slices.DeleteFunc(current, func(c *x509.Certificate) bool { return certsx.ContainsCert(revoked, c) })
	if len(current) == 0 {
		return nil, fmt.Errorf("vault: no root certificate in the ca_chain of any issuer at %s/ (import the root into the mount)", v.mount)
	}

	now := time.Now()
	v.mu.Lock()
	for _, c := range revoked {
		delete(v.roots, sha256.Sum256(c.Raw))
	}
	v.mu.Unlock()
	roots := v.addRoots(now, current)
	v.noticeDefault(defaultID, defaultCert)
	return roots, nil
}

// addRoots records that the mount reports current now and returns the
// roots to trust.
func (v *issuer) addRoots(now time.Time, current []*x509.Certificate) []*x509.Certificate {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range current {
		k := sha256.Sum256(c.Raw)
		if r := v.roots[k]; r != nil {
			r.lastSeen = now
		} else {
			v.roots[k] = &keptRoot{cert: c, lastSeen: now}
		}
	}
	out := make([]*x509.Certificate, 0, len(v.roots))
	for k, r := range v.roots {
		if now.Sub(r.lastSeen) > v.retention || now.After(r.cert.NotAfter) {
			delete(v.roots, k)
			continue
		}
		out = append(out, r.cert)
	}
	// A stable order: oldest root first.
	slices.SortFunc(out, func(a, b *x509.Certificate) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
	return out
}

// noticeDefault asks for a new SVID, once per default issuer, when the
// mount's default issuer is not the one that signed the current leaf.
func (v *issuer) noticeDefault(id string, cert []byte) {
	r := v.rotator.Load()
	if id == "" || r == nil {
		return
	}
	v.mu.Lock()
	ask := v.leafIssuer != nil && !bytes.Equal(v.leafIssuer, cert) && v.renewForDef != id
	if ask {
		v.renewForDef = id
	}
	v.mu.Unlock()
	if ask {
		v.log.Info("vault: the mount's default issuer changed; re-issuing soon",
			"mount", v.mount, "issuer", id, "within", v.window)
		r.RenewSoon(v.window)
	}
}

// isSelfSigned reports whether c is a self-signed CA certificate (a root).
func isSelfSigned(c *x509.Certificate) bool {
	return c.IsCA && bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

func errOr(err error, msg string) any {
	if err != nil {
		return err
	}
	return msg
}
