package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

	t       testing.TB
	p       *proc
	timeout time.Duration
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
	s := &RedisServer{Dir: dir, t: t, timeout: cfg.timeout}
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

	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args := append([]string{conf}, pgredis.RedisArgs("127.0.0.1", port, cert, key, ca)...)
		if s.p == nil {
			s.p = newProc(t, "redis", bin, dir, args, cleanEnv([]string{"REDIS"}))
			s.LogPath = s.p.logPath
		}
		s.p.args = args
		err := s.start()
		if err == nil {
			return s
		}
		if attempt < 3 && s.p.logContains("already in use") {
			t.Logf("testenv: redis: port %d was taken meanwhile, retrying with a new one", port)
			continue
		}
		t.Fatalf("testenv: redis: %v", err)
	}
}

// Running reports whether the server process is running.
func (s *RedisServer) Running() bool { return s.p.running() }

// Stop stops the server gracefully (SIGTERM, after which it writes its data
// and exits; SIGKILL after 10s) and waits for it to exit.
func (s *RedisServer) Stop() {
	s.t.Helper()
	s.p.stop()
}

// Kill kills the server (SIGKILL), as a crash would, and waits for it to
// exit.
func (s *RedisServer) Kill() {
	s.p.signal(syscall.SIGKILL, 0)
}

// Start starts the stopped server again on the same port with the same data
// and waits until it accepts connections.
func (s *RedisServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: redis: %v", err)
	}
}

// Restart is Stop then Start.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *RedisServer) start() error {
	t0 := time.Now()
	err := s.p.startReady(s.timeout, func(ctx context.Context) (bool, error) {
		if !s.p.logContains("Ready to accept connections") {
			return false, nil
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return false, fmt.Errorf("dial: %w", err)
		}
		_ = c.Close()
		return true, nil
	})
	if err != nil {
		return err
	}
	s.t.Logf("testenv: redis ready at %s in %s", s.Addr, time.Since(t0).Round(time.Millisecond))
	return nil
}
