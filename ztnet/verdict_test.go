package ztnet

import (
	"bytes"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ztnlabs/ztn/internal/test/poll"
)

// hostileServer serves the api Service's own TLS configuration (so a ztn
// client accepts it) and after the handshake writes the given bytes where
// the verdict belongs, then closes.
func hostileServer(t *testing.T, api *Service, verdict []byte) string {
	t.Helper()
	return tlsServer(t, api.serverTLS, func(tc *tls.Conn) { _, _ = tc.Write(verdict) })
}

// A server may send a deny reason of the full 255 bytes (or lie about its
// length); Dial must return a DeniedError, never panic.
func TestVerdictLongReasonFromServer(t *testing.T) {
	m := newTestMesh(t)
	api := m.service(t, "api")
	web := m.service(t, "web", WithoutResumption())
	long := strings.Repeat("r", 255)
	for _, tc := range []struct {
		name    string
		verdict []byte
		reason  string
	}{
		{"255-byte reason", append([]byte{verdictDeny, 255}, long...), long},
		{"encodeDeny of 300 bytes", encodeDeny(strings.Repeat("x", 300)), strings.Repeat("x", 255)},
		{"length beyond the data", []byte{verdictDeny, 255, 'a', 'b'}, "refused (truncated reason)"},
		{"control characters", append([]byte{verdictDeny, 3}, "a\nb"...), "a?b"},
		{"no length", []byte{verdictDeny}, "refused (no reason received)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := hostileServer(t, api, tc.verdict)
			_, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", addr)
			var denied *DeniedError
			if !errors.As(err, &denied) {
				t.Fatalf("DialAddress = %v, want a *DeniedError", err)
			}
			if denied.Reason != tc.reason {
				t.Fatalf("reason = %q, want %q", denied.Reason, tc.reason)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		addr := hostileServer(t, api, []byte{0x42, 0x43})
		_, err := web.dialAddress(poll.Context(t, 5*time.Second), "api", addr)
		if err == nil || !strings.Contains(err.Error(), "no valid authorization verdict") {
			t.Fatalf("DialAddress = %v, want an invalid-verdict error", err)
		}
	})
}

// A listener refusing a ztn client with a reason longer than maxReason sends
// it cut, and the Dial reports the cut reason.
func TestEncodeDenyBounds(t *testing.T) {
	for _, n := range []int{0, 1, 254, 255, 256, 1000} {
		b := encodeDeny(strings.Repeat("é", n)) // two bytes a character: cuts land mid-character
		if len(b) > 2+maxReason {
			t.Fatalf("encodeDeny(%d chars) is %d bytes", n, len(b))
		}
		err := readVerdict(bytes.NewReader(b), "src", "dst")
		var denied *DeniedError
		if !errors.As(err, &denied) {
			t.Fatalf("readVerdict(encodeDeny) = %v", err)
		}
		if !utf8.ValidString(denied.Reason) {
			t.Fatalf("reason %q is not valid UTF-8", denied.Reason)
		}
	}
}

// FuzzVerdictRoundTrip: every reason encodes to a verdict that reads back as
// a DeniedError with a printable prefix of the reason.
func FuzzVerdictRoundTrip(f *testing.F) {
	f.Add("intention web → api denies (precedence 9)")
	f.Add(strings.Repeat("x", 300))
	f.Add("\x00\xff\n")
	f.Fuzz(func(t *testing.T, reason string) {
		b := encodeDeny(reason)
		err := readVerdict(bytes.NewReader(b), "src", "dst")
		var denied *DeniedError
		if !errors.As(err, &denied) {
			t.Fatalf("readVerdict(encodeDeny(%q)) = %v", reason, err)
		}
		if len(denied.Reason) > 3*maxReason || !utf8.ValidString(denied.Reason) {
			t.Fatalf("reason %q: too long or not UTF-8", denied.Reason)
		}
		for _, c := range []byte(denied.Reason) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("reason %q has a control character", denied.Reason)
			}
		}
		if clean := sanitize(reason); len(reason) <= maxReason && denied.Reason != clean {
			t.Fatalf("reason %q read back as %q, want %q", reason, denied.Reason, clean)
		}
	})
}

// FuzzReadVerdict: whatever bytes a server sends, readVerdict returns (nil
// only for the allow byte) and never panics or reads more than a verdict.
func FuzzReadVerdict(f *testing.F) {
	f.Add([]byte{verdictAllow})
	f.Add([]byte{verdictDeny, 255})
	f.Add(append([]byte{verdictDeny, 255}, bytes.Repeat([]byte{'a'}, 255)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		err := readVerdict(r, "src", "dst")
		if (err == nil) != (len(data) > 0 && data[0] == verdictAllow) {
			t.Fatalf("readVerdict(%x) = %v", data, err)
		}
		if read := len(data) - r.Len(); read > 2+maxReason {
			t.Fatalf("read %d bytes", read)
		}
	})
}
