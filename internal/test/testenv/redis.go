package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/pgredis"
)

// RedisServer is a redis-server of its own, started by Redis. It listens on
// 127.0.0.1 with TLS only (port 0, tls-port) and requires a client
// certificate that chains to ServerTLS.ClientCAs (tls-auth-clients yes); it
// has no password.
//
// Its data is kept in an append-only file: it survives Stop and Start (and
// a Kill, but for the last second of writes).
type RedisServer struct {
	// Addr is the TLS listener's host:port.
	Addr string
	// Dir is the server's working directory (config, data); LogPath its
	// output, across restarts.
	Dir     string
	LogPath string

	server
}

// RedisOption configures Redis.
type RedisOption func(*redisConfig)

type redisConfig struct {
	conf    []string
	timeout time.Duration
}

// RedisConfig adds a line to redis.conf, after testenv's own (so that it
// can override e.g. appendonly); the listener and TLS settings, given on the
// command line, win.
func RedisConfig(line string) RedisOption {
	return func(c *redisConfig) { c.conf = append(c.conf, line) }
}

// RedisStartTimeout sets how long a start may take before the test fails
// (default 30s).
func RedisStartTimeout(d time.Duration) RedisOption {
	return func(c *redisConfig) { c.timeout = d }
}

// Redis starts a redis-server for the test on a free port of 127.0.0.1 with
// TLS from tlsFiles (see [RedisServer]) and waits until it accepts
// connections. The server is killed when the test ends. The test is skipped
// if redis-server is not installed (Debian package redis-server;
// ZTN_REDIS_SERVER_BIN overrides) and fails if ZTN_REQUIRE_TOOLS is set.
func Redis(t testing.TB, tlsFiles ServerTLS, opts ...RedisOption) *RedisServer {
	t.Helper()
	cfg := redisConfig{timeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin := systemBinary(t, "redis-server", "redis-server", "ZTN_REDIS_SERVER_BIN", "redis-server")
	dir := serverDir(t, "redis", nil)
	s := &RedisServer{Dir: dir, server: server{t: t, timeout: cfg.timeout}}
	cert, key, ca, err := tlsFiles.write(dir, nil)
	if err != nil {
		t.Fatalf("testenv: redis: %v", err)
	}
	conf := filepath.Join(dir, "redis.conf")
	lines := []string{
		"# written by testenv.Redis; the listener and TLS are set on the command line",
		"daemonize no",
		`logfile ""`,
		"dir " + dir,
		`save ""`,
		"appendonly yes",
		"appendfsync everysec",
	}
	lines = append(lines, cfg.conf...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: redis: %v", err)
	}

	s.p = newProc(t, "redis", bin, dir, nil, cleanEnv([]string{"REDIS"}))
	s.LogPath = s.p.logPath
	s.server.ready = logThenDial(s.p, "Ready to accept connections", func() string { return s.Addr })
	s.where = func() string { return "at " + s.Addr }
	s.startOnFreePorts(func() ([]string, error) {
		port := FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return append([]string{conf}, pgredis.RedisArgs("127.0.0.1", port, cert, key, ca)...), nil
	})
	return s
}
