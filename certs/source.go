package certs

import (
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Source provides the workload's current X.509 SVID and the trust bundles to
// verify peers with. It is exactly go-spiffe's two source interfaces plus
// Close, so go-spiffe's tlsconfig helpers accept a Source, and go-spiffe's
// own *workloadapi.X509Source is one.
//
// GetX509SVID never returns an expired SVID: once the current leaf has expired
// and no fresh one could be obtained it returns an error (fail closed).
type Source interface {
	x509svid.Source
	x509bundle.Source
	Close() error
}

// ErrClosed is returned by the getters of a closed source: every source of
// this package and of its backends.
var ErrClosed = errors.New("certs: source closed")

// Watcher is implemented by sources whose SVID or bundle change over time.
// Changed returns a channel that is closed at the next rotation (of the SVID
// or of the bundle); take it before reading the source, then wait on it.
type Watcher interface {
	Changed() <-chan struct{}
}

// errNotNew is returned by the methods of a source that was not made by its
// constructor (a zero value).
func errNotNew(what, constructor string) error {
	return fmt.Errorf("certs: %s not created with %s", what, constructor)
}
