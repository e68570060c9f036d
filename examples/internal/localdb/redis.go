package localdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ztnlabs/ztn/internal/pgredis"
)

// StartRedis starts a redis-server in a fresh temporary directory on a free
// port of 127.0.0.1, TLS only, requiring a client certificate that chains to
// t.ClientCAs. Its data is not saved.
func StartRedis(ctx context.Context, b Binaries, t TLS) (*Server, error) {
	if b.RedisServer == "" {
		return nil, fmt.Errorf("localdb: redis-server is not installed (Debian package redis-server)")
	}
	dir, cert, key, ca, err := newDir("redis", t, nil)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := strings.Join([]string{"daemonize no", `logfile ""`, "dir " + dir, `save ""`, "appendonly no"}, "\n") + "\n"
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("localdb: %w", err)
	}
	args := append([]string{confPath}, pgredis.RedisArgs("127.0.0.1", port, cert, key, ca)...)
	s, err := start(ctx, "redis", b.RedisServer, args, dir, nil, syscall.SIGTERM,
		"Ready to accept connections", addr)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}
