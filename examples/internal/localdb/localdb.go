// Package localdb starts a PostgreSQL cluster and a Redis server of the
// program's own, for the examples' one-process demos (Yelb, chat): on 127.0.0.1, on free ports,
// in a fresh temporary directory, with TLS only and client-certificate
// authentication against the CA the caller gives (Postgres: pg_hba.conf
// "hostssl ... cert", the certificate's common name is the database user;
// Redis: tls-auth-clients yes). There is no password anywhere. The servers
// come from the Debian packages postgresql and redis-server; [Find] says
// whether they are installed.
//
// The tests start their servers with internal/test/testenv, which does the
// same with more control (restarts on the same port, logs in the test
// output); this package is the small part a program needs.
//
//	bins := localdb.Find()
//	if bins.Missing() != "" { ... use an in-memory store ... }
//	pg, err := localdb.StartPostgres(ctx, bins, serverTLS, "yelbdatabase", "yelb-appserver")
//	...
//	defer pg.Stop()
//	rd, err := localdb.StartRedis(ctx, bins, serverTLS)
//	...
//	defer rd.Stop()
package localdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TLS is what a server presents and trusts, all PEM: its certificate (chain,
// leaf first; it should name 127.0.0.1) and key, and the CA certificates a
// client's certificate must chain to.
type TLS struct {
	Cert, Key, ClientCAs []byte
}

// Binaries are the server programs found on this machine.
type Binaries struct {
	// PostgresDir holds postgres, initdb and psql ("" if not found).
	PostgresDir string
	// RedisServer is redis-server's path ("" if not found).
	RedisServer string
}

// Find looks for PostgreSQL (Debian's /usr/lib/postgresql/<version>/bin,
// newest first, then $PATH) and redis-server ($PATH).
func Find() Binaries {
	var b Binaries
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "postgres")) && isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "psql")) {
			b.PostgresDir = d
			break
		}
	}
	if b.PostgresDir == "" {
		if p, err := exec.LookPath("initdb"); err == nil {
			d := filepath.Dir(p)
			if isFile(filepath.Join(d, "postgres")) && isFile(filepath.Join(d, "psql")) {
				b.PostgresDir = d
			}
		}
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		b.RedisServer = p
	}
	return b
}

// Missing names the Debian packages whose servers were not found, or "".
func (b Binaries) Missing() string {
	var m []string
	if b.PostgresDir == "" {
		m = append(m, "postgresql")
	}
	if b.RedisServer == "" {
		m = append(m, "redis-server")
	}
	return strings.Join(m, " ")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Server is a running server.
type Server struct {
	// Addr is its TLS listener, 127.0.0.1:port.
	Addr string
	// Dir is its temporary directory (data, log), removed by Stop.
	Dir string
	// LogPath is its output.
	LogPath string

	cmd     *exec.Cmd
	stopSig syscall.Signal
	done    chan struct{}
	once    sync.Once
}

// Stop stops the server (SIGKILL after 10s), waits for it and removes its
// directory.
func (s *Server) Stop() error {
	var err error
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(s.stopSig)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			err = fmt.Errorf("localdb: %s did not stop within 10s; killed", filepath.Base(s.cmd.Path))
		}
		if e := os.RemoveAll(s.Dir); e != nil && err == nil {
			err = fmt.Errorf("localdb: %w", e)
		}
	})
	return err
}

// runAs is the system user a server runs as when the program runs as root
// (Postgres refuses root), or nil.
type runAs struct{ uid, gid uint32 }

func postgresUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localdb: postgres refuses to run as root and there is no user postgres: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("localdb: user postgres: %w", err)
	}
	return &runAs{uint32(uid), uint32(gid)}, nil
}

func (u *runAs) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.uid), int(u.gid))
}

// newDir makes the server's directory, owned by u, and writes the TLS files
// in it.
func newDir(name string, t TLS, u *runAs) (dir, cert, key, ca string, err error) {
	if len(t.Cert) == 0 || len(t.Key) == 0 || len(t.ClientCAs) == 0 {
		return "", "", "", "", errors.New("localdb: TLS needs Cert, Key and ClientCAs")
	}
	dir, err = os.MkdirTemp("", "ztn-example-"+name+"-")
	if err != nil {
		return "", "", "", "", fmt.Errorf("localdb: %w", err)
	}
	cert, key, ca = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "clients-ca.crt")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{cert, t.Cert, 0o644}, {key, t.Key, 0o600}, {ca, t.ClientCAs, 0o644}} {
		if err = os.WriteFile(f.path, f.data, f.mode); err == nil {
			err = u.chown(f.path)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = u.chown(dir)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", "", "", "", fmt.Errorf("localdb: %w", err)
	}
	return dir, cert, key, ca, nil
}

// freePort returns a port of 127.0.0.1 free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localdb: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with its output in dir/<name>.log, and waits until the log
// says ready and addr accepts TCP connections.
func start(ctx context.Context, name, bin string, args []string, dir string, u *runAs, stopSig syscall.Signal, ready, addr string) (*Server, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("localdb: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(u)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localdb: start %s: %w", name, err)
	}
	s := &Server{Addr: addr, Dir: dir, LogPath: logPath, cmd: cmd, stopSig: stopSig, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), ready) {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				_ = c.Close()
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("localdb: %s exited at start; its log:\n%s", name, tail(logPath))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-s.done
			return nil, fmt.Errorf("localdb: %s not ready: %w; its log:\n%s", name, ctx.Err(), tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail is the end of a log, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
