package ztnet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
)

// DeniedError is returned (wrapped) when the policy refuses a connection:
// by Dial when the server refused us, and recorded by a listener when it
// refused a client.
type DeniedError struct {
	Source      string // the caller's SPIFFE ID
	Destination string // the service called
	Reason      string // why, from the authorizer
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%s denied: %s", e.Source, e.Reason)
}

// RejectedError is returned (wrapped) when a peer's identity is not
// acceptable: no certificate, an untrusted chain, a foreign trust domain, a
// certificate that is not a service SVID, or the wrong service.
type RejectedError struct {
	Reason string
}

func (e *RejectedError) Error() string { return "peer rejected: " + e.Reason }

// staleSessionError is a handshake that failed only because the client
// offered a stale session: resumed with a client certificate that was valid
// when the session began and no longer is (expired, or its root has left the
// bundle), which the listener refuses; or not taken by the listener (the
// certificate had expired, the ticket key rotated out), which a ztn client
// then aborts. That is routine during rotation, and a ztn client redoes the
// handshake at once as a full one with its current certificate, so the
// listener records it at Debug (result stale_session), not as a refusal an
// operator must look at.
type staleSessionError struct{ err error }

func (e *staleSessionError) Error() string { return "stale session: " + e.err.Error() }
func (e *staleSessionError) Unwrap() error { return e.err }

// extensionPreSharedKey is the TLS extension that offers a session (RFC
// 8446, 4.2.11).
const extensionPreSharedKey = 41

// abandonedSession tells whether a failed handshake is a ztn client giving
// up a session the listener did not take: it offered one, negotiated ztn's
// protocol, the handshake was not resumed, and the client ended it with a
// bad_certificate alert, which is how it refuses to go on with a full
// handshake that lacks the post-quantum exchange (errNotResumed) before it
// dials again.
func abandonedSession(err error, tc *tls.Conn, ac *acceptedConn) bool {
	cs := tc.ConnectionState()
	// crypto/tls reports a peer's alert as a *net.OpError "remote error"
	// around an unexported type: only its text tells which alert.
	var op *net.OpError
	return ac.offered != nil && slices.Contains(ac.offered.Extensions, extensionPreSharedKey) &&
		!cs.DidResume && isZTNProtocol(cs.NegotiatedProtocol) &&
		errors.As(err, &op) && op.Op == "remote error" && op.Err.Error() == "tls: bad certificate"
}

// staleChain reports whether a verification failed only because of time or
// of the bundle: an expired certificate, or an unknown authority.
func staleChain(err error) bool {
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	return errors.As(err, &invalid) && invalid.Reason == x509.Expired || errors.As(err, &unknown)
}

// ErrNoInstance is returned (wrapped) by Dial when the service has no healthy
// instance.
var ErrNoInstance = errors.New("no healthy instance")

var errClosedListener = errors.New("ztnet: listener closed")

// errNotNew is returned by the methods of a Service, Dev or Env that was not
// made by its constructor (a zero value or a nil pointer).
func errNotNew(what, constructor string) error {
	return fmt.Errorf("ztnet: %s not created with %s", what, constructor)
}

// made reports whether s was made by New, and if not, why its methods fail.
func (s *Service) made() error {
	if s == nil || s.done == nil {
		return errNotNew("Service", "New (or Dev.Service, Env.Service)")
	}
	return nil
}
