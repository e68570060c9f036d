package certs

import (
	"context"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Issuer obtains X.509-SVIDs from a certificate authority (Vault PKI, the
// Consul CA, a DevCA, ...). A Rotator calls Issue at the start and then each
// time the current SVID is due for renewal; it never calls Issue concurrently.
type Issuer interface {
	// Issue returns a freshly issued identity, or an error to be retried
	// later. It must honour ctx. NewRotator returns its error as it is and
	// the Rotator logs later ones, so the error should name the issuer, as
	// a package's errors do ("vault: role \"web\" not found at pki/").
	Issue(ctx context.Context) (*Identity, error)
}

// Identity is one issuance: an SVID and the trust bundles the issuer reports
// at that moment.
type Identity struct {
	// SVID holds the leaf certificate first, then any intermediates up to (but
	// not necessarily including) a root, and the private key.
	SVID *x509svid.SVID
	// Bundles are every trust bundle the issuer currently reports: the one of
	// the SVID's trust domain, which is required, and any federated ones.
	Bundles []*x509bundle.Bundle
}

// BundleWatcher is implemented by issuers whose trust bundles change between
// issuances, e.g. when their CA rotates its root. A Rotator whose Issuer is a
// BundleWatcher runs WatchBundles in a goroutine of its own, merges each
// report into its bundle (see Rotator for the retention rules) and, when the
// roots of its own trust domain change, re-issues its SVID within a random
// delay (WithRootChangeWindow) so that leaves move to the new root.
type BundleWatcher interface {
	// WatchBundles calls update with the bundles the issuer currently reports
	// (same meaning as Identity.Bundles), then again after every change, until
	// ctx is done. It retries transient failures itself and returns ctx.Err(),
	// or an error it cannot recover from (the Rotator logs it and calls
	// WatchBundles again after a backoff). update must not be called
	// concurrently.
	WatchBundles(ctx context.Context, update func(bundles []*x509bundle.Bundle)) error
}
