package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ConsulCluster is a cluster of Consul server agents (not dev mode: state on
// disk, kept across Stop/Kill and Start), one per loopback address
// 127.0.0.1, 127.0.0.2, ..., started by NewConsulCluster.
type ConsulCluster struct {
	Members []*ConsulMember
	// Datacenter, ClusterID and TrustDomain are the cluster's; see
	// ConsulServer.
	Datacenter  string
	ClusterID   string
	TrustDomain string

	t       testing.TB
	timeout time.Duration
}

// ConsulMember is one server agent of a ConsulCluster.
type ConsulMember struct {
	Name    string // node name
	Bind    string // its loopback IP
	Addr    string // its HTTP API's host:port
	Ports   ConsulPorts
	DataDir string
	LogPath string

	p *proc
}

// HTTPAddr returns the member's HTTP API URL, http://host:port.
func (m *ConsulMember) HTTPAddr() string { return "http://" + m.Addr }

// serverAddr is the member's RPC address, as /v1/status/leader names it.
func (m *ConsulMember) serverAddr() string {
	return net.JoinHostPort(m.Bind, strconv.Itoa(m.Ports.Server))
}

// Running reports whether the member's process is running.
func (m *ConsulMember) Running() bool { return m.p.running() }

// NewConsulCluster starts n Consul servers (bootstrap_expect n, each
// retry-joining the others) on 127.0.0.1 ... 127.0.0.n with Connect
// enabled, and waits until they have elected a leader, every member knows
// it, and the Connect CA has roots. Options: ConsulHCL, ConsulDatacenter and
// ConsulStartTimeout apply; ConsulACL, ConsulBind and ConsulAllPorts are not
// supported. The servers are killed when the test ends.
func NewConsulCluster(t testing.TB, n int, opts ...ConsulOption) *ConsulCluster {
	t.Helper()
	cfg := consulConfig{dc: "dc1", timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.acl || cfg.allPorts || cfg.bind != "" {
		t.Fatalf("testenv: NewConsulCluster: ConsulACL, ConsulBind and ConsulAllPorts are not supported")
	}
	if n < 1 || n > 9 {
		t.Fatalf("testenv: NewConsulCluster: %d servers; want 1 to 9", n)
	}
	bin := toolBinary(t, "consul")
	c := &ConsulCluster{Datacenter: cfg.dc, ClusterID: randomUUID(), t: t, timeout: cfg.timeout}
	root := t.TempDir()
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		ports, err := freePorts(ip, 3, false)
		if err != nil {
			t.Fatalf("testenv: consul cluster ports on %s: %v", ip, err)
		}
		dir := filepath.Join(root, fmt.Sprintf("server%d", i+1))
		m := &ConsulMember{
			Name:    fmt.Sprintf("ztn-server-%d", i+1),
			Bind:    ip,
			Ports:   ConsulPorts{HTTP: ports[0], Server: ports[1], SerfLAN: ports[2], GRPC: -1, GRPCTLS: -1, DNS: -1, SerfWAN: -1},
			DataDir: filepath.Join(dir, "data"),
		}
		m.Addr = net.JoinHostPort(ip, strconv.Itoa(m.Ports.HTTP))
		if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		c.Members = append(c.Members, m)
	}
	for i, m := range c.Members {
		dir := filepath.Dir(m.DataDir)
		files, err := c.writeConfig(dir, cfg, n)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"agent", "-server", "-bootstrap-expect", strconv.Itoa(n),
			"-bind", m.Bind, "-client", m.Bind, "-advertise", m.Bind,
			"-data-dir", m.DataDir, "-node", m.Name, "-datacenter", cfg.dc,
			"-http-port", strconv.Itoa(m.Ports.HTTP),
			"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
			"-server-port", strconv.Itoa(m.Ports.Server),
			"-serf-lan-port", strconv.Itoa(m.Ports.SerfLAN),
			"-serf-wan-port", "-1",
		}
		for j, o := range c.Members {
			if j != i {
				args = append(args, "-retry-join", net.JoinHostPort(o.Bind, strconv.Itoa(o.Ports.SerfLAN)))
			}
		}
		for _, f := range files {
			args = append(args, "-config-file", f)
		}
		m.p = newProc(t, fmt.Sprintf("consul-%d", i+1), bin, dir, args, cleanEnv([]string{"CONSUL_"}))
		m.LogPath = m.p.logPath
	}
	t0 := time.Now()
	for _, m := range c.Members {
		if err := m.p.start(); err != nil {
			t.Fatalf("testenv: consul cluster: %v", err)
		}
	}
	if err := c.waitReady(); err != nil {
		t.Fatalf("testenv: consul cluster: %v", err)
	}
	t.Logf("testenv: consul cluster of %d ready in %s (leader %s, trust domain %s)", n,
		time.Since(t0).Round(time.Millisecond), c.Members[c.Leader()].Name, c.TrustDomain)
	return c
}

func (c *ConsulCluster) writeConfig(dir string, cfg consulConfig, n int) ([]string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "log_level = \"info\"\ndisable_update_check = true\nleave_on_terminate = false\n")
	fmt.Fprintf(&b, "performance {\n  raft_multiplier = 1\n}\n")
	fmt.Fprintf(&b, "connect {\n  enabled = true\n  ca_config {\n    cluster_id = %q\n  }\n}\n", c.ClusterID)
	files := []string{filepath.Join(dir, "testenv.hcl")}
	if err := os.WriteFile(files[0], []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	for i, h := range cfg.hcl {
		f := filepath.Join(dir, fmt.Sprintf("extra-%d.hcl", i))
		if err := os.WriteFile(f, []byte(h), 0o600); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// waitReady waits until every running member knows the same leader, which
// is a running member, and the CA has roots.
func (c *ConsulCluster) waitReady() error {
	exited := make(chan struct{}) // never closed: a member may be down on purpose
	return waitFor(c.timeout, exited, func(ctx context.Context) (bool, error) {
		leader := ""
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			var l string
			code, body, err := doJSON(ctx, http.MethodGet, m.HTTPAddr()+"/v1/status/leader", nil, &l)
			if err != nil {
				return false, fmt.Errorf("%s: %w", m.Name, err)
			}
			if code != http.StatusOK || l == "" {
				return false, fmt.Errorf("%s: status/leader: %d %q", m.Name, code, body)
			}
			if leader != "" && l != leader {
				return false, fmt.Errorf("members disagree on the leader: %s and %s", leader, l)
			}
			leader = l
		}
		if leader == "" {
			return false, fmt.Errorf("no member is running")
		}
		found := false
		for _, m := range c.Members {
			found = found || (m.Running() && m.serverAddr() == leader)
		}
		if !found {
			return false, fmt.Errorf("the leader %s is not running", leader)
		}
		var roots struct {
			TrustDomain string
			Roots       []struct{ ID string }
		}
		for _, m := range c.Members {
			if !m.Running() {
				continue
			}
			code, body, err := doJSON(ctx, http.MethodGet, m.HTTPAddr()+"/v1/connect/ca/roots", nil, &roots)
			if err != nil {
				return false, err
			}
			if code != http.StatusOK || roots.TrustDomain == "" || len(roots.Roots) == 0 {
				return false, fmt.Errorf("%s: connect/ca/roots: %d %q", m.Name, code, body)
			}
			c.TrustDomain = roots.TrustDomain
			return true, nil
		}
		return false, nil
	})
}

// Leader returns the index in Members of the current leader, or -1 if
// there is none (or no running member answers).
func (c *ConsulCluster) Leader() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		var l string
		code, _, err := doJSON(ctx, http.MethodGet, m.HTTPAddr()+"/v1/status/leader", nil, &l)
		if err != nil || code != http.StatusOK || l == "" {
			continue
		}
		for i, o := range c.Members {
			if o.serverAddr() == l {
				return i
			}
		}
	}
	return -1
}

// WaitLeader waits until the running members agree on a running leader and
// returns its index in Members.
func (c *ConsulCluster) WaitLeader() int {
	c.t.Helper()
	if err := c.waitReady(); err != nil {
		c.t.Fatalf("testenv: consul cluster: %v", err)
	}
	return c.Leader()
}

// Kill kills member i (SIGKILL), as a crash would, and waits for it to exit.
func (c *ConsulCluster) Kill(i int) { c.Members[i].p.signal(syscall.SIGKILL, 0) }

// Stop stops member i gracefully (SIGTERM; SIGKILL after 10s). It does not
// leave the cluster (leave_on_terminate is false).
func (c *ConsulCluster) Stop(i int) { c.Members[i].p.signal(syscall.SIGTERM, 10*time.Second) }

// Start starts the stopped member i again with its state and waits until
// the cluster has a leader that every running member knows.
func (c *ConsulCluster) Start(i int) {
	c.t.Helper()
	if err := c.Members[i].p.start(); err != nil {
		c.t.Fatalf("testenv: consul cluster: %v", err)
	}
	if err := c.waitReady(); err != nil {
		c.t.Fatalf("testenv: consul cluster: %v", err)
	}
}
