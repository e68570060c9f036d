package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SPIREServer is a SPIRE server and one SPIRE agent (v1.13.3), started by
// SPIRE on loopback and unix sockets in the test's temporary directory. The
// agent attested with a join token; its Workload API serves the processes of
// this machine that match a registration entry (unix workload attestor).
//
// The server uses an in-memory key manager and a SQLite datastore; the
// agent syncs its entries every second, so an entry created with
// CreateEntry is served within a few seconds.
type SPIREServer struct {
	// TrustDomain is the server's trust domain ("ztn.test" by default).
	TrustDomain string
	// WorkloadAPIAddr is the agent's Workload API address,
	// unix:///<dir>/agent.sock: give it to go-spiffe's workloadapi.WithAddr
	// or certs/workloadapi.Config.Address.
	WorkloadAPIAddr string
	// AgentID is the agent's SPIFFE ID, the parent of workload entries.
	AgentID string
	// ServerSocket and AgentSocket are the unix sockets of the server's API
	// (for spire-server CLI commands) and of the agent's Workload API.
	ServerSocket, AgentSocket string
	// ServerAddr is the server's host:port for agents.
	ServerAddr string
	// ServerLogPath and AgentLogPath are their outputs.
	ServerLogPath, AgentLogPath string

	t         testing.TB
	serverBin string
	agentBin  string
	server    *proc
	agent     *proc
	timeout   time.Duration
}

// SPIREOption configures SPIRE.
type SPIREOption func(*spireConfig)

type spireConfig struct {
	td       string
	svidTTL  time.Duration
	caTTL    time.Duration
	workload *string // nil: the default
	timeout  time.Duration
}

// SPIRETrustDomain sets the trust domain (default "ztn.test").
func SPIRETrustDomain(td string) SPIREOption {
	return func(c *spireConfig) { c.td = td }
}

// SPIRESVIDTTL sets the server's default X509-SVID lifetime (default 1h).
// SPIRE agents rotate an SVID at about half its lifetime.
func SPIRESVIDTTL(d time.Duration) SPIREOption {
	return func(c *spireConfig) { c.svidTTL = d }
}

// SPIRECATTL sets the lifetime of the server's signing CA (default 24h).
func SPIRECATTL(d time.Duration) SPIREOption {
	return func(c *spireConfig) { c.caTTL = d }
}

// SPIREWorkload sets the SPIFFE ID of the entry SPIRE creates for the
// processes of the current user (selector unix:uid:<uid>) and waits for
// (default spiffe://<trust domain>/ns/default/dc/dc1/svc/web); "" creates
// no entry.
func SPIREWorkload(spiffeID string) SPIREOption {
	return func(c *spireConfig) { c.workload = &spiffeID }
}

// SPIREStartTimeout sets how long starting the server, the agent and
// waiting for the first workload SVID may take (default 90s).
func SPIREStartTimeout(d time.Duration) SPIREOption {
	return func(c *spireConfig) { c.timeout = d }
}

// UIDSelector is the unix workload attestor's selector of the processes of
// the current user: unix:uid:<uid>.
func UIDSelector() string { return "unix:uid:" + strconv.Itoa(os.Getuid()) }

// GIDSelector is the selector of the processes of the current primary
// group: unix:gid:<gid>.
func GIDSelector() string { return "unix:gid:" + strconv.Itoa(os.Getgid()) }

// SPIRE starts a SPIRE server and agent for the test, creates a
// registration entry for the current user's processes (see SPIREWorkload)
// and waits until the agent's Workload API serves its SVID. Both are killed
// when the test ends. The test is skipped if the spire-server or
// spire-agent binary is missing (and fails if ZTN_REQUIRE_TOOLS is set).
func SPIRE(t testing.TB, opts ...SPIREOption) *SPIREServer {
	t.Helper()
	cfg := spireConfig{td: "ztn.test", svidTTL: time.Hour, caTTL: 24 * time.Hour, timeout: 90 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	workload := "spiffe://" + cfg.td + "/ns/default/dc/dc1/svc/web"
	if cfg.workload != nil {
		workload = *cfg.workload
	}
	s := &SPIREServer{
		TrustDomain: cfg.td,
		AgentID:     "spiffe://" + cfg.td + "/ztn-testenv/agent",
		t:           t,
		serverBin:   toolBinary(t, "spire-server"),
		agentBin:    toolBinary(t, "spire-agent"),
		timeout:     cfg.timeout,
	}
	dir := t.TempDir()
	// Unix socket paths are limited to 108 bytes: use a short directory
	// when the test's is too long.
	sockDir := dir
	if len(sockDir) > 80 {
		d, err := os.MkdirTemp("", "spire")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		sockDir = d
	}
	s.ServerSocket = filepath.Join(sockDir, "server.sock")
	s.AgentSocket = filepath.Join(sockDir, "agent.sock")
	s.WorkloadAPIAddr = "unix://" + s.AgentSocket
	for _, d := range []string{"server", "agent"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(cfg.timeout)
	t0 := time.Now()

	// The server, on a free port (retried if another process takes it).
	for attempt := 1; ; attempt++ {
		ports, err := freePorts("127.0.0.1", 1, false)
		if err != nil {
			t.Fatalf("testenv: spire-server port: %v", err)
		}
		s.ServerAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
		conf := filepath.Join(dir, "server.conf")
		if err := os.WriteFile(conf, []byte(spireServerConfig(cfg, ports[0], s.ServerSocket, filepath.Join(dir, "server"))), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"run", "-config", conf}
		if s.server == nil {
			s.server = newProc(t, "spire-server", s.serverBin, dir, args, cleanEnv([]string{"SPIFFE_", "SPIRE_"}))
			s.ServerLogPath = s.server.logPath
		}
		err = s.server.start()
		if err == nil {
			err = spireWait(time.Until(deadline), s.server.exited(), func(ctx context.Context) (bool, error) {
				_, err := s.cli(ctx, s.serverBin, "healthcheck", "-socketPath", s.ServerSocket)
				return err == nil, err
			})
		}
		if err == nil {
			break
		}
		s.server.signal(syscall.SIGKILL, 0)
		if attempt < 3 && s.server.logContains("address already in use") {
			t.Logf("testenv: spire-server: its port was taken meanwhile, retrying with another")
			continue
		}
		t.Fatalf("testenv: spire-server: %v; log %s", err, s.ServerLogPath)
	}

	// The agent, attested with a join token.
	out, err := s.cliT("token", "generate", "-socketPath", s.ServerSocket, "-spiffeID", s.AgentID, "-ttl", "600")
	if err != nil {
		t.Fatalf("testenv: spire-server token generate: %v", err)
	}
	token := ""
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Token:"); ok {
			token = strings.TrimSpace(v)
		}
	}
	if token == "" {
		t.Fatalf("testenv: spire-server token generate: no token in %q", out)
	}
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte(spireAgentConfig(cfg, s.ServerAddr, s.AgentSocket, filepath.Join(dir, "agent"))), 0o600); err != nil {
		t.Fatal(err)
	}
	s.agent = newProc(t, "spire-agent", s.agentBin, dir, []string{"run", "-config", conf, "-joinToken", token},
		cleanEnv([]string{"SPIFFE_", "SPIRE_"}))
	s.AgentLogPath = s.agent.logPath
	if err := s.agent.start(); err != nil {
		t.Fatalf("testenv: spire-agent: %v", err)
	}
	err = spireWait(time.Until(deadline), s.agent.exited(), func(ctx context.Context) (bool, error) {
		_, err := s.cli(ctx, s.agentBin, "healthcheck", "-socketPath", s.AgentSocket)
		return err == nil, err
	})
	if err != nil {
		s.agent.signal(syscall.SIGKILL, 0)
		t.Fatalf("testenv: spire-agent: %v; log %s", err, s.AgentLogPath)
	}

	if workload != "" {
		s.CreateEntry(workload, 0, UIDSelector())
		s.WaitForSVID(workload)
	}
	t.Logf("testenv: spire ready in %s (trust domain %s, workload API %s)", time.Since(t0).Round(time.Millisecond), s.TrustDomain, s.WorkloadAPIAddr)
	return s
}

func spireServerConfig(cfg spireConfig, port int, socket, dataDir string) string {
	return fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = %q
  data_dir = %q
  log_level = "INFO"
  ca_ttl = %q
  default_x509_svid_ttl = %q
  experimental {
    cache_reload_interval = "1s"
  }
}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = %q
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`, port, socket, cfg.td, dataDir, cfg.caTTL.String(), cfg.svidTTL.String(), filepath.Join(dataDir, "datastore.sqlite3"))
}

func spireAgentConfig(cfg spireConfig, serverAddr, socket, dataDir string) string {
	host, port, _ := strings.Cut(serverAddr, ":")
	return fmt.Sprintf(`agent {
  data_dir = %q
  log_level = "INFO"
  server_address = %q
  server_port = "%s"
  socket_path = %q
  trust_domain = %q
  insecure_bootstrap = true
  experimental {
    sync_interval = "1s"
  }
}

plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`, dataDir, host, port, socket, cfg.td)
}

// CreateEntry registers a workload entry under the agent for spiffeID with
// the given selectors (e.g. UIDSelector()) and returns its entry ID. A
// positive ttl sets its X509-SVID lifetime (whole seconds); 0 keeps the
// server's default.
func (s *SPIREServer) CreateEntry(spiffeID string, ttl time.Duration, selectors ...string) string {
	s.t.Helper()
	id := "ztn-" + randomUUID()
	args := []string{"entry", "create", "-socketPath", s.ServerSocket, "-entryID", id,
		"-parentID", s.AgentID, "-spiffeID", spiffeID}
	if ttl > 0 {
		args = append(args, "-x509SVIDTTL", strconv.Itoa(int((ttl+time.Second-1)/time.Second)))
	}
	for _, sel := range selectors {
		args = append(args, "-selector", sel)
	}
	if _, err := s.cliT(args...); err != nil {
		s.t.Fatalf("testenv: spire-server entry create %s: %v", spiffeID, err)
	}
	return id
}

// DeleteEntry deletes a registration entry.
func (s *SPIREServer) DeleteEntry(entryID string) {
	s.t.Helper()
	if _, err := s.cliT("entry", "delete", "-socketPath", s.ServerSocket, "-entryID", entryID); err != nil {
		s.t.Fatalf("testenv: spire-server entry delete %s: %v", entryID, err)
	}
}

// WaitForSVID waits until the agent's Workload API serves an SVID for
// spiffeID to this process's user (as the spire-agent CLI, run by the test,
// sees it).
func (s *SPIREServer) WaitForSVID(spiffeID string) {
	s.t.Helper()
	var last string
	err := spireWait(s.timeout, s.agent.exited(), func(ctx context.Context) (bool, error) {
		out, err := s.cli(ctx, s.agentBin, "api", "fetch", "x509", "-socketPath", s.AgentSocket, "-timeout", "2s")
		last = out
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "SPIFFE" && f[1] == "ID:" && f[2] == spiffeID {
				return true, nil
			}
		}
		return false, fmt.Errorf("no SVID for %s yet", spiffeID)
	})
	if err != nil {
		s.t.Fatalf("testenv: spire-agent: waiting for an SVID for %s: %v (last output %q); agent log %s", spiffeID, err, last, s.AgentLogPath)
	}
}

// StopAgent stops the agent (SIGTERM; SIGKILL after 10s): the Workload API
// socket stops answering.
func (s *SPIREServer) StopAgent() {
	s.t.Helper()
	if s.agent.signal(syscall.SIGTERM, 10*time.Second) {
		s.t.Logf("testenv: spire-agent did not stop within 10s of SIGTERM; killed")
	}
}

// cliT runs a CLI command of the server binary with the start timeout.
func (s *SPIREServer) cliT(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return s.cli(ctx, s.serverBin, args...)
}

// cli runs bin with args and returns its combined output; a failure's error
// includes the output.
func (s *SPIREServer) cli(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv([]string{"SPIFFE_", "SPIRE_"})
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args[:min(2, len(args))], " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// spireWait is waitFor for checks that run a CLI command: it polls every
// 200ms (each poll starts a process) and gives each check 10s.
func spireWait(timeout time.Duration, exited <-chan struct{}, check func(ctx context.Context) (bool, error)) error {
	return poll(timeout, 200*time.Millisecond, 10*time.Second, exited, check)
}
