package ztnet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Session resumption.
//
// Dial resumes TLS 1.3 sessions by default: a resumed handshake skips both
// certificate signatures, and ztn still re-checks the peer's certificate chain
// and re-authorizes it on every connection (verifyClient, verifyServer), so
// resumption never bypasses policy.
//
// Key exchange. A full handshake uses Go's default, the hybrid post-quantum
// group X25519MLKEM768 (every ztn server supports it). A resumption attempt offers an X25519 key
// share only, because the hybrid exchange is most of the CPU a resumed
// handshake costs. Its traffic keys mix the session's pre-shared key (PSK),
// which descends from a hybrid full handshake, with a fresh X25519 exchange,
// so recorded traffic stays protected against a future quantum computer as
// long as the PSK stays secret, and X25519 keeps classical forward secrecy.
// What it gives up is forward secrecy against an attacker who both steals a
// session-ticket key (or a PSK) and has a quantum computer; ticket keys
// rotate every ticketKeyPeriod and open tickets for at most two periods, which
// bounds that window. WithPostQuantumResumption keeps the hybrid exchange on
// resumed handshakes too.
//
// A resumption attempt must resume: if the server does not accept the
// session (it restarted, or its ticket key rotated out), the client refuses
// to finish what would be a full handshake without the post-quantum exchange
// (errNotResumed, raised before the client sends its certificate) and Dial
// retries at once with a full, hybrid handshake.

// ticketKeyPeriod is how long a session-ticket key seals new tickets; a
// ticket opens for at most twice as long.
const ticketKeyPeriod = time.Hour

// errNotResumed refuses a full handshake made with the resumption-only
// configuration.
var errNotResumed = errors.New("ztnet: the server did not resume the session")

// resumeConfig returns the client configuration for resumption attempts
// derived from base, which holds the session cache.
func (s *Service) resumeConfig(base *tls.Config) *tls.Config {
	if base.ClientSessionCache == nil {
		return nil
	}
	if s.cfg.pqResumption {
		return base
	}
	c := base.Clone()
	c.CurvePreferences = []tls.CurveID{tls.X25519}
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return errNotResumed
		}
		return s.verifyServer(cs)
	}
	return c
}

// hasSession reports whether cache holds a session for key.
func hasSession(cache tls.ClientSessionCache, key string) bool {
	cs, ok := cache.Get(key)
	return ok && cs != nil
}

// ticketSealer seals a Service's session tickets (tls.Config WrapSession and
// UnwrapSession) with AES-256-GCM keys made in process, rotated every
// ticketKeyPeriod. It is shared by all the Service's listeners.
type ticketSealer struct {
	now  func() time.Time
	mu   sync.Mutex // serializes rotation
	keys atomic.Pointer[ticketKeys]
}

// ticketKeys is an immutable pair: the key that seals, and the one before it.
type ticketKeys struct {
	cur, prev *ticketKey
}

type ticketKey struct {
	id   [ticketKeyIDLen]byte
	aead cipher.AEAD
	born time.Time
}

const ticketKeyIDLen = 8

func newTicketKey(now time.Time) *ticketKey {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read does not fail
	block, err := aes.NewCipher(raw[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	k := &ticketKey{aead: aead, born: now}
	_, _ = rand.Read(k.id[:])
	return k
}

// current returns the keys, rotating them when the sealing key is a period
// old.
func (t *ticketSealer) current() *ticketKeys {
	now := t.now()
	ks := t.keys.Load()
	if ks != nil && now.Sub(ks.cur.born) < ticketKeyPeriod {
		return ks
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ks = t.keys.Load()
	if ks == nil || now.Sub(ks.cur.born) >= ticketKeyPeriod {
		next := &ticketKeys{cur: newTicketKey(now)}
		if ks != nil {
			next.prev = ks.cur
		}
		ks = next
		t.keys.Store(ks)
	}
	return ks
}

// wrap seals a session into a ticket: key ID, nonce, ciphertext.
func (t *ticketSealer) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	k := t.current().cur
	n := k.aead.NonceSize()
	out := make([]byte, ticketKeyIDLen+n, ticketKeyIDLen+n+len(state)+k.aead.Overhead())
	copy(out, k.id[:])
	_, _ = rand.Read(out[ticketKeyIDLen:])
	return k.aead.Seal(out, out[ticketKeyIDLen:], state, out[:ticketKeyIDLen]), nil
}

// unwrap opens a ticket. A ticket it cannot open (unknown or expired key,
// tampered, malformed) yields no session, so the handshake is a full one.
func (t *ticketSealer) unwrap(ticket []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	ks := t.current()
	now := t.now()
	var k *ticketKey
	for _, c := range []*ticketKey{ks.cur, ks.prev} {
		if c != nil && len(ticket) >= ticketKeyIDLen && string(c.id[:]) == string(ticket[:ticketKeyIDLen]) &&
			now.Sub(c.born) < 2*ticketKeyPeriod {
			k = c
		}
	}
	if k == nil || len(ticket) < ticketKeyIDLen+k.aead.NonceSize()+k.aead.Overhead() {
		return nil, nil
	}
	nonce := ticket[ticketKeyIDLen : ticketKeyIDLen+k.aead.NonceSize()]
	state, err := k.aead.Open(nil, nonce, ticket[ticketKeyIDLen+len(nonce):], ticket[:ticketKeyIDLen])
	if err != nil {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, nil
	}
	return ss, nil
}
