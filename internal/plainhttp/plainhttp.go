// Package plainhttp decides whether a control-plane address (Vault, Consul)
// may be reached without TLS. Over plain HTTP anyone on the path can read
// the tokens sent and change the answers: inject a root into the trust
// bundle, or an intention that allows everything. So plain http:// is
// refused unless the host is a loopback address (nothing is on the path) or
// the user explicitly allows it.
package plainhttp

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Check returns an error when addr is a plain-HTTP URL (or a bare host:port,
// which Consul's client reads as plain HTTP unless tlsByDefault) to a host
// that is not a loopback address, and allow is false. what names the
// setting for the error, allowHow how to allow it anyway.
func Check(addr string, tlsByDefault, allow bool, what, allowHow string) error {
	if allow {
		return nil
	}
	scheme, host := "", addr
	if i := strings.Index(addr, "://"); i >= 0 {
		u, err := url.Parse(addr)
		if err != nil {
			return fmt.Errorf("%s=%q: %v", what, addr, err)
		}
		scheme, host = strings.ToLower(u.Scheme), u.Host
	}
	switch scheme {
	case "https", "unix":
		return nil
	case "":
		if tlsByDefault {
			return nil
		}
	case "http":
	default:
		return fmt.Errorf("%s=%q: unknown scheme %q (want https://)", what, addr, scheme)
	}
	if Loopback(host) {
		return nil
	}
	return fmt.Errorf("%s=%q: plain HTTP to a host that is not this machine: anyone on the path could read its token and forge its answers (a trust root, an intention); use https://, or %s", what, addr, allowHow)
}

// Loopback reports whether host (a host or host:port) is "localhost" or a
// loopback IP address.
func Loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
