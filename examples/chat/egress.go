package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// newEgressClient is the bot's one way out of the mesh: an HTTPS client
// that reaches the host of apiURL and nothing else. It is explicit by
// construction: no proxy from the environment, a dialer that refuses any
// other host:port (so a redirect or a typo cannot carry the API key
// elsewhere), redirects refused, TLS 1.3 verified against roots (nil: the
// system's). Mesh connections never go through it, and it never goes
// through the mesh: the mesh's identities are not the SaaS's business.
func newEgressClient(apiURL string, roots *x509.CertPool) (*http.Client, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("chat: egress: %w", err)
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("chat: egress: %q is not an https URL", apiURL)
	}
	allowed := u.Host
	if u.Port() == "" {
		allowed = net.JoinHostPort(u.Hostname(), "443")
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // never HTTPS_PROXY: the path out is this one
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != allowed {
				return nil, fmt.Errorf("chat: egress: %s is not the weather API (%s); refused", addr, allowed)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots},
		TLSHandshakeTimeout: 5 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        4,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("chat: egress: redirects are not followed")
		},
	}, nil
}
