package ztnet

import (
	"crypto/tls"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Application protocols. A ztn connection can carry an application protocol
// chosen by ALPN, the way HTTP picks "h2" or "http/1.1" over TLS. Between two
// ztn ends the ALPN name is "ztn/1+<protocol>" (for example "ztn/1+h2"): the
// server sends its authorization verdict after the handshake, as under plain
// "ztn/1", and then both ends speak <protocol>. A listener that offers
// protocols also offers them under their plain names ("h2", "http/1.1") to TLS
// clients that are not ztn (curl, grpc-go with its own TLS credentials); those
// are authorized inside the handshake, as any plain TLS client is. Plain
// "ztn/1" (no application protocol) is always offered by listeners, so
// existing ztn clients keep working.

// alpnAppSep separates the ztn protocol from the application protocol in an
// ALPN name: "ztn/1+h2".
const alpnAppSep = "+"

// isZTNProtocol reports whether an ALPN name negotiated on a connection is
// one of ztn's (plain "ztn/1" or "ztn/1+<protocol>"): the server then sends a
// verdict after the handshake.
func isZTNProtocol(alpn string) bool {
	return alpn == alpnVerdict ||
		(len(alpn) > len(alpnVerdict)+1 && alpn[len(alpnVerdict)] == '+' && strings.HasPrefix(alpn, alpnVerdict))
}

// appProtocol returns the application protocol part of a negotiated ALPN
// name: "h2" for "ztn/1+h2" or for a plain TLS client's "h2", "" for "ztn/1"
// or when nothing was negotiated.
func appProtocol(alpn string) string {
	if alpn == alpnVerdict {
		return ""
	}
	if isZTNProtocol(alpn) {
		return alpn[len(alpnVerdict)+1:]
	}
	return alpn
}

// NegotiatedProtocol returns the application protocol agreed by ALPN for this
// connection: "h2" for a ztn peer that negotiated "ztn/1+h2" and for a plain
// TLS peer that negotiated "h2"; "" when none was (plain "ztn/1", or a TLS
// client that offered no ALPN).
func (c *Conn) NegotiatedProtocol() string {
	return appProtocol(c.tc.ConnectionState().NegotiatedProtocol)
}

// serverProtocols is the ALPN list a listener offering protos sends, in
// server preference order: ztn with each protocol, plain ztn, then each
// protocol for non-ztn TLS clients.
func serverProtocols(protos []string) []string {
	out := make([]string, 0, 2*len(protos)+1)
	for _, p := range protos {
		out = append(out, alpnVerdict+alpnAppSep+p)
	}
	out = append(out, alpnVerdict)
	return append(out, protos...)
}

// listenTLS returns the server TLS configurations of listener l with cfg:
// its own, and the same without ALPN for clients that offer only protocols
// it does not serve (see configForClient).
func (s *Service) listenTLS(l *listener, cfg listenConfig) (own, noALPN *tls.Config) {
	own = s.serverTLS.Clone()
	if len(cfg.protos) > 0 {
		own.NextProtos = serverProtocols(cfg.protos)
	}
	if cfg.l7 {
		admitL7 := cfg.l7
		own.VerifyConnection = func(cs tls.ConnectionState) error { return s.verifyClient(cs, admitL7) }
	}
	noALPN = own.Clone()
	noALPN.NextProtos = nil
	own.GetConfigForClient = l.configForClient
	return own, noALPN
}

// clientConfigs is the pair of client TLS configurations one Dial uses: one
// for full handshakes (which stores the session it gets unless
// WithoutResumption), one for resumption attempts (nil WithoutResumption).
type clientConfigs struct {
	full, resume *tls.Config
	serverTD     spiffeid.TrustDomain // WithServerTrustDomain; zero: the local one
}

// dialTLS returns the client TLS configurations for opts, built once per
// distinct protocol list and kept.
func (s *Service) dialTLS(opts []DialOption) clientConfigs {
	if len(opts) == 0 {
		return clientConfigs{full: s.clientTLS, resume: s.resumeTLS}
	}
	var cfg dialConfig
	for _, o := range opts {
		o.applyDial(&cfg)
	}
	if len(cfg.protos) == 0 {
		return clientConfigs{full: s.clientTLS, resume: s.resumeTLS, serverTD: cfg.serverTD}
	}
	key := strings.Join(cfg.protos, "\x00")
	if v, ok := s.dialConfs.Load(key); ok {
		cc := v.(clientConfigs)
		cc.serverTD = cfg.serverTD
		return cc
	}
	next := make([]string, len(cfg.protos))
	for i, p := range cfg.protos {
		next[i] = alpnVerdict + alpnAppSep + p
	}
	full := s.clientTLS.Clone() // the session cache stays shared
	full.NextProtos = next
	cc := clientConfigs{full: full, resume: s.resumeConfig(full)}
	v, _ := s.dialConfs.LoadOrStore(key, cc)
	cc = v.(clientConfigs)
	cc.serverTD = cfg.serverTD
	return cc
}
