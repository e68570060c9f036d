package localdb

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ztnlabs/ztn/internal/pgredis"
)

// StartPostgres creates a PostgreSQL cluster in a fresh temporary directory
// and starts it on a free port of 127.0.0.1, TLS only, with
// client-certificate authentication against t.ClientCAs; then it creates
// the login role owner and the database owned by it. A client logs in as
// owner with a certificate whose common name is owner. The superuser can
// connect only over a Unix socket in the server's private directory. When
// the program runs as root the server runs as the system user postgres.
func StartPostgres(ctx context.Context, b Binaries, t TLS, database, owner string) (*Server, error) {
	if b.PostgresDir == "" {
		return nil, fmt.Errorf("localdb: PostgreSQL is not installed (Debian package postgresql)")
	}
	u, err := postgresUser()
	if err != nil {
		return nil, err
	}
	dir, cert, key, ca, err := newDir("postgres", t, u)
	if err != nil {
		return nil, err
	}
	s, err := startPostgres(ctx, b.PostgresDir, dir, cert, key, ca, u, database, owner)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func startPostgres(ctx context.Context, bindir, dir, cert, key, ca string, u *pgredis.User, database, owner string) (*Server, error) {
	data := filepath.Join(dir, "data")
	env := append(os.Environ(), "LANG=C")
	initdb := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"), pgredis.InitdbArgs(data)...)
	initdb.Dir, initdb.Env, initdb.SysProcAttr = dir, env, pgredis.SysProcAttr(u)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("localdb: initdb: %w\n%s", err, out)
	}
	hba := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte(pgredis.HBA), 0o600); err != nil {
		return nil, fmt.Errorf("localdb: %w", err)
	}
	if err := u.Chown(hba); err != nil {
		return nil, fmt.Errorf("localdb: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{"-D", data, "-c", "shared_buffers=16MB", "-c", "max_connections=50"},
		pgredis.PostgresArgs("127.0.0.1", port, dir, hba, cert, key, ca)...)
	s, err := start(ctx, "postgres", filepath.Join(bindir, "postgres"), args, dir, u, syscall.SIGINT,
		"database system is ready to accept connections", addr)
	if err != nil {
		return nil, err
	}
	// Two -c: CREATE DATABASE cannot run in the transaction of one.
	psql := exec.CommandContext(ctx, filepath.Join(bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", dir, "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres",
		"-c", "CREATE ROLE "+pgredis.QuoteIdent(owner)+" LOGIN",
		"-c", "CREATE DATABASE "+pgredis.QuoteIdent(database)+" OWNER "+pgredis.QuoteIdent(owner))
	if out, err := psql.CombinedOutput(); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("localdb: create the database: %w\n%s", err, out)
	}
	return s, nil
}
