package yelb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// PageViewsKey is the Redis key of the page-view counter.
const PageViewsKey = "pageviews"

// Redis is the [PageViewCounter] in a Redis server (key [PageViewsKey],
// created by the first INCR), reached over TLS only and authenticated by the
// client certificate of its tls.Config (tls-auth-clients yes); there is no
// password. Its connections survive the server's restarts: while the
// server is down every call fails, and calls succeed again once it is back.
type Redis struct {
	client *redis.Client
}

// NewRedis returns the counter for the Redis server at addr (host:port),
// presenting the client certificate of tlsConfig, which must also verify
// the server (RootCAs; ServerName defaults to addr's host). It does not
// connect: every call does (or reuses a connection), so the server may start
// later.
func NewRedis(addr string, tlsConfig *tls.Config) (*Redis, error) {
	if tlsConfig == nil {
		return nil, errors.New("yelb: redis: a TLS config is required (no plain connections)")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("yelb: redis address: %w", err)
	}
	tc := tlsConfig.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: tc}
	client := redis.NewClient(&redis.Options{
		Addr: addr,
		// The dialer does the TLS handshake, and returns connections
		// that go-redis can check before use (see checkableConn).
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newCheckableConn(c), nil
		},
		Protocol:        2,    // RESP2: no push notifications to look for on idle connections
		DisableIdentity: true, // no CLIENT SETINFO (Redis < 7.2 does not know it)
		DialTimeout:     5 * time.Second,
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    5 * time.Second,
		PoolSize:        8,
		// INCR is not idempotent: a retry after a lost answer would count
		// twice. Connections the server closed (a restart) are found
		// before use instead.
		MaxRetries: -1,
	})
	return &Redis{client: client}, nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.client.Close() }

// Ping checks that the server accepts the client.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("yelb: redis: %w", err)
	}
	return nil
}

// PageView implements [PageViewCounter]: INCR pageviews, whose answer is the
// new count (the original then GETs it, which may include other replicas'
// views made meanwhile).
func (r *Redis) PageView(ctx context.Context) (int64, error) {
	n, err := r.client.Incr(ctx, PageViewsKey).Result()
	if err != nil {
		return 0, fmt.Errorf("yelb: redis: count a page view: %w", err)
	}
	return n, nil
}

// checkableConn is a TLS connection that shows go-redis its TCP socket
// (syscall.Conn): before reusing a pooled connection go-redis peeks at the
// socket, without reading, and drops it if the server has closed it or sent
// something unasked (a TLS alert). go-redis does not look through a
// *tls.Conn by itself, so without this the first command after a server
// restart would fail on a dead connection.
type checkableConn struct {
	*tls.Conn
	raw syscall.Conn
}

func newCheckableConn(c net.Conn) net.Conn {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return c
	}
	raw, ok := tc.NetConn().(syscall.Conn)
	if !ok {
		return c
	}
	return checkableConn{Conn: tc, raw: raw}
}

// SyscallConn implements syscall.Conn with the TCP socket's.
func (c checkableConn) SyscallConn() (syscall.RawConn, error) { return c.raw.SyscallConn() }
