package ztnet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
)

// acceptedConn is the raw connection under a listener's TLS server. The
// listener's GetConfigForClient notes in it what the client offered, so a
// refusal at the protocol level (TLS version, ALPN) can say so in the log.
type acceptedConn struct {
	net.Conn
	offered *tls.ClientHelloInfo // nil until the ClientHello is read
}

// configForClient is a listener's GetConfigForClient. It notes the
// ClientHello, and serves clients that offer application protocols, none of
// them ztn's or ours, with no ALPN at all: Consul's Connect-native client
// always offers "h2", curl "h2,http/1.1"; as any TLS client without ALPN,
// they are authorized inside the handshake and get no verdict. A client that
// offers a ztn protocol this listener does not serve is refused with
// no_application_protocol, so the ztn end can tell.
func (l *listener) configForClient(hi *tls.ClientHelloInfo) (*tls.Config, error) {
	if ac, ok := hi.Conn.(*acceptedConn); ok {
		ac.offered = hi
	}
	if len(hi.SupportedProtos) == 0 {
		return nil, nil
	}
	for _, p := range hi.SupportedProtos {
		if isZTNProtocol(p) || slices.Contains(l.tlsConf.NextProtos, p) {
			return nil, nil
		}
	}
	return l.noALPN, nil
}

// Results of refused handshakes, in addition to those of metrics.go:
// resultProtocol is a client that does not speak ztn's protocol at all
// (plaintext, an old TLS version, an application protocol not served).
const resultProtocol = "protocol"

// protocolRefusal tells whether err ended a handshake because the client
// speaks another protocol, and describes what the client offered.
func protocolRefusal(err error, ac *acceptedConn) ([]slog.Attr, bool) {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return []slog.Attr{slog.String("offered", fmt.Sprintf("not TLS (first bytes %q)", rh.RecordHeader[:]))}, true
	}
	hi := ac.offered
	if hi == nil {
		return nil, false
	}
	oldTLS := !slices.Contains(hi.SupportedVersions, tls.VersionTLS13)
	if !oldTLS && !strings.Contains(err.Error(), "application protocol") {
		return nil, false
	}
	versions := make([]string, len(hi.SupportedVersions))
	for i, v := range hi.SupportedVersions {
		versions[i] = tls.VersionName(v)
	}
	return []slog.Attr{
		slog.String("offered_versions", strings.Join(versions, ",")),
		slog.String("offered_alpn", strings.Join(hi.SupportedProtos, ",")),
		slog.String("server_name", hi.ServerName),
	}, true
}
