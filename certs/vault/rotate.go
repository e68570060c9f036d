package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// RotateCAConfig describes a CA rotation made by [RotateCA].
type RotateCAConfig struct {
	// Mount is the PKI mount (default "pki").
	Mount       string
	TrustDomain spiffeid.TrustDomain
	// RootTTL and IntermediateTTL as in [BootstrapConfig].
	RootTTL         time.Duration
	IntermediateTTL time.Duration
	// Propagation is how long to wait between publishing the new root and
	// signing with it, so that every service has read it first (at least
	// the services' [Config.BundleRefresh]; default 2m).
	Propagation time.Duration
	// Progress, if set, is called in RotateCA's goroutine at each step, with
	// the rotation so far: once the new root and intermediate are published
	// (Published set), then once the intermediate is the default issuer
	// (Switched and RetireAt set).
	Progress func(RotatedCA)
}

// RotatedCA is the result of [RotateCA], and its timeline.
type RotatedCA struct {
	// Mount is the PKI mount rotated.
	Mount string
	// RootIssuer and IntermediateIssuer are the new issuers; the
	// intermediate is now the default.
	RootIssuer         string
	IntermediateIssuer string
	// Previous are the issuers that were there before. [RotatedCA.Retire]
	// deletes them once no leaf they signed can still be valid; services
	// keep trusting a deleted root for [Config.RootRetention].
	Previous []string
	// Published is when the new issuers were made, so that services could
	// start trusting the new root; Switched when the new intermediate
	// became the default issuer, so that new leaves are signed by it.
	Published, Switched time.Time
	// RetireAt is when the last leaf the previous issuers may have signed
	// expires: Switched plus the longest max_ttl of the mount's roles, plus
	// 5s for clocks and for a request in flight at the switch.
	RetireAt time.Time
}

// RotateCA rotates the CA of a mount set up by [Bootstrap], with
// Vault's multi-issuer operations and without breaking a connection: it
// makes a new root (root/rotate/internal), which services add to their trust
// bundle at their next refresh, and a new intermediate signed by it; after
// Propagation it makes the new intermediate the default issuer, and services
// move their leaves to it within their root change window. The old issuers
// stay until [RotatedCA.Retire] deletes them. RotateCAConfig.Progress
// reports each step as it happens; the result holds the timeline.
func RotateCA(ctx context.Context, client *api.Client, r RotateCAConfig) (*RotatedCA, error) {
	mount := strings.Trim(r.Mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	if r.TrustDomain.IsZero() {
		return nil, errors.New("vault: rotate CA: no trust domain")
	}
	prev, _, err := listIssuers(ctx, client, mount)
	if err != nil {
		return nil, err
	}
	root, err := generateRoot(ctx, client, mount, "root/rotate/internal", r.TrustDomain, cmpOr(r.RootTTL, 10*365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	inter, err := generateIntermediate(ctx, client, mount, root, r.TrustDomain, cmpOr(r.IntermediateTTL, 365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	rot := &RotatedCA{Mount: mount, RootIssuer: root, IntermediateIssuer: inter, Previous: prev, Published: time.Now()}
	if r.Progress != nil {
		r.Progress(*rot)
	}
	t := time.NewTimer(cmpOr(r.Propagation, 2*time.Minute))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("vault: rotate CA: new issuers %s (root) and %s were made, not made default: %w", root, inter, ctx.Err())
	case <-t.C:
	}
	if err := setDefaultIssuer(ctx, client, mount, inter); err != nil {
		return nil, err
	}
	rot.Switched = time.Now()
	maxTTL, err := longestMaxTTL(ctx, client, mount)
	if err != nil {
		return nil, fmt.Errorf("vault: rotate CA: %s is the default issuer now, but: %w", inter, err)
	}
	rot.RetireAt = rot.Switched.Add(maxTTL + retireMargin)
	if r.Progress != nil {
		r.Progress(*rot)
	}
	return rot, nil
}
