package ztnet

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// alpnVerdict is the ALPN protocol two ztn ends agree on. Under it the server
// authorizes the client after the TLS handshake and then sends a verdict, so
// a refused Dial fails in Dial with the reason, instead of at the first read
// with "remote error: tls: bad certificate" as TLS 1.3 would otherwise have
// it. Plain TLS clients don't offer it and are authorized inside the
// handshake instead.
//
// The verdict is one byte, verdictAllow, or verdictDeny followed by one byte
// of length and that many bytes of reason (at most maxReason).
const alpnVerdict = "ztn/1"

// maxReason is the longest reason a deny verdict carries; longer ones are
// cut (the server's log keeps the whole reason).
const maxReason = 255

const (
	verdictAllow byte = 0xA1
	verdictDeny  byte = 0xD0
)

func encodeDeny(reason string) []byte {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	b := make([]byte, 0, 2+len(reason))
	b = append(b, verdictDeny, byte(len(reason)))
	return append(b, reason...)
}

var verdictAllowMsg = []byte{verdictAllow}

// readVerdict reads the server's verdict. It returns nil when admitted, a
// *DeniedError when refused. Whatever the server sends, it reads at most
// 2+maxReason bytes and never fails other than with an error.
func readVerdict(r io.Reader, source, dest string) error {
	var b [2 + maxReason]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return fmt.Errorf("waiting for the authorization verdict: %w", err)
	}
	switch b[0] {
	case verdictAllow:
		return nil
	case verdictDeny:
		if _, err := io.ReadFull(r, b[1:2]); err != nil {
			return &DeniedError{Source: source, Destination: dest, Reason: "refused (no reason received)"}
		}
		n := int(b[1])
		if _, err := io.ReadFull(r, b[2:2+n]); err != nil {
			return &DeniedError{Source: source, Destination: dest, Reason: "refused (truncated reason)"}
		}
		return &DeniedError{Source: source, Destination: dest, Reason: sanitize(string(b[2 : 2+n]))}
	default:
		return errors.New("peer sent no valid authorization verdict (is it a ztn service?)")
	}
}

// sanitize keeps a remote reason printable, so a peer cannot inject control
// characters or invalid UTF-8 (a reason cut at maxReason may end in half a
// character) into our logs or errors.
func sanitize(s string) string {
	out := []byte(strings.ToValidUTF8(s, "?"))
	for i, c := range out {
		if c < 0x20 || c == 0x7f {
			out[i] = '?'
		}
	}
	return string(out)
}
