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
	"testing"
	"time"
)

// ConsulServer is a Consul agent in dev mode (a single server with Connect and
// its built-in CA), started by Consul.
//
// Dev mode keeps its state in memory: after Stop/Kill and Start (or Restart)
// the catalog, KV, intentions and config entries are empty again and the CA
// has a new root key. What stays the same: the ports, the ACL management token
// and the trust domain (its cluster ID is fixed by testenv).
type ConsulServer struct {
	// Addr is the HTTP API's host:port (give it to api.Config.Address).
	Addr string
	// Bind is the loopback IP every listener uses (127.0.0.1 by default).
	Bind string
	// Ports are the listeners' ports; -1 for a disabled one.
	Ports ConsulPorts
	// Datacenter is the agent's datacenter ("dc1" by default).
	Datacenter string
	// Token is the ACL management token ("" when ACLs are off).
	Token string
	// ClusterID is the Connect CA's cluster ID; TrustDomain is
	// "<ClusterID>.consul", as read from /v1/connect/ca/roots.
	ClusterID   string
	TrustDomain string
	// DataDir is the agent's data dir; LogPath its output, across restarts.
	DataDir string
	LogPath string

	server
}

// ConsulPorts are the ports of a ConsulServer's listeners; -1 means disabled.
type ConsulPorts struct {
	HTTP, GRPC, GRPCTLS, DNS, Server, SerfLAN, SerfWAN int
}

// ConsulOption configures Consul.
type ConsulOption func(*consulConfig)

type consulConfig struct {
	acl      bool
	token    string
	hcl      []string
	allPorts bool
	bind     string
	dc       string
	timeout  time.Duration
}

// ConsulACL enables ACLs with default policy deny and token as the initial
// management token (also used as the agent's token). An empty token means a
// random one; read it from ConsulServer.Token.
func ConsulACL(token string) ConsulOption {
	return func(c *consulConfig) { c.acl, c.token = true, token }
}

// ConsulHCL adds HCL configuration, loaded after testenv's own (so it can
// override e.g. log_level), before the command-line flags (which set the bind
// address and ports, and win).
func ConsulHCL(hcl string) ConsulOption {
	return func(c *consulConfig) { c.hcl = append(c.hcl, hcl) }
}

// ConsulAllPorts also enables the gRPC, gRPC TLS, DNS and serf WAN listeners,
// which are disabled by default.
func ConsulAllPorts() ConsulOption {
	return func(c *consulConfig) { c.allPorts = true }
}

// ConsulBind makes every listener use the loopback IP ip (e.g. "127.0.0.2",
// for several agents) instead of 127.0.0.1.
func ConsulBind(ip string) ConsulOption {
	return func(c *consulConfig) { c.bind = ip }
}

// ConsulDatacenter sets the datacenter name (default "dc1").
func ConsulDatacenter(dc string) ConsulOption {
	return func(c *consulConfig) { c.dc = dc }
}

// ConsulStartTimeout sets how long a start may take before the test fails
// (default 60s).
func ConsulStartTimeout(d time.Duration) ConsulOption {
	return func(c *consulConfig) { c.timeout = d }
}

// Consul starts a dev-mode Consul agent for the test and waits until its HTTP
// API answers, it has a leader and its Connect CA has roots. The agent is
// killed when the test ends. The test is skipped if there is no consul
// binary (and fails if ZTN_REQUIRE_TOOLS is set).
func Consul(t testing.TB, opts ...ConsulOption) *ConsulServer {
	t.Helper()
	cfg := consulConfig{bind: "127.0.0.1", dc: "dc1", timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin := toolBinary(t, "consul")
	if cfg.acl && cfg.token == "" {
		cfg.token = randomUUID()
	}

	dir := t.TempDir()
	s := &ConsulServer{
		Bind:       cfg.bind,
		Datacenter: cfg.dc,
		Token:      cfg.token,
		ClusterID:  randomUUID(),
		DataDir:    filepath.Join(dir, "data"),
		server:     server{t: t, timeout: cfg.timeout},
	}
	s.server.ready = s.serves
	s.where = func() string { return fmt.Sprintf("at %s (trust domain %s)", s.HTTPAddr(), s.TrustDomain) }
	if err := os.Mkdir(s.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	configFiles, err := s.writeConfig(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Ports are picked free, but another process may take one before consul
	// binds it: then try again with new ones.
	s.p = newProc(t, "consul", bin, dir, nil, cleanEnv([]string{"CONSUL_"}))
	s.LogPath = s.p.logPath
	s.startOnFreePorts(func() ([]string, error) {
		ports, err := freePorts(cfg.bind, 7, false)
		if err != nil {
			return nil, err
		}
		s.Ports = ConsulPorts{HTTP: ports[0], Server: ports[1], SerfLAN: ports[2],
			GRPC: -1, GRPCTLS: -1, DNS: -1, SerfWAN: -1}
		if cfg.allPorts {
			s.Ports.GRPC, s.Ports.GRPCTLS, s.Ports.DNS, s.Ports.SerfWAN = ports[3], ports[4], ports[5], ports[6]
		}
		s.Addr = net.JoinHostPort(cfg.bind, strconv.Itoa(s.Ports.HTTP))

		args := []string{"agent", "-dev",
			"-bind", cfg.bind, "-client", cfg.bind, "-advertise", cfg.bind,
			"-data-dir", s.DataDir, "-node", "ztn-testenv", "-datacenter", cfg.dc,
			"-http-port", strconv.Itoa(s.Ports.HTTP),
			"-grpc-port", strconv.Itoa(s.Ports.GRPC),
			"-grpc-tls-port", strconv.Itoa(s.Ports.GRPCTLS),
			"-dns-port", strconv.Itoa(s.Ports.DNS),
			"-server-port", strconv.Itoa(s.Ports.Server),
			"-serf-lan-port", strconv.Itoa(s.Ports.SerfLAN),
			"-serf-wan-port", strconv.Itoa(s.Ports.SerfWAN),
		}
		for _, f := range configFiles {
			args = append(args, "-config-file", f)
		}
		return args, nil
	})
	return s
}

// writeConfig writes testenv's HCL and the extra HCL files; it returns their
// paths in load order.
func (s *ConsulServer) writeConfig(dir string, cfg consulConfig) ([]string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "log_level = \"info\"\ndisable_update_check = true\n")
	// A fixed cluster ID keeps the trust domain across restarts.
	fmt.Fprintf(&b, "connect {\n  ca_config {\n    cluster_id = %q\n  }\n}\n", s.ClusterID)
	if cfg.acl {
		fmt.Fprintf(&b, `acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens {
    initial_management = %q
    agent = %q
  }
}
`, cfg.token, cfg.token)
	}
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

// HTTPAddr returns the HTTP API's URL, http://host:port.
func (s *ConsulServer) HTTPAddr() string { return "http://" + s.Addr }

// serves: the API answers, there is a leader, the CA has roots and (with ACLs)
// the management token works.
func (s *ConsulServer) serves(ctx context.Context) (bool, error) {
	var leader string
	code, body, err := doJSON(ctx, http.MethodGet, s.HTTPAddr()+"/v1/status/leader", nil, &leader)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK || leader == "" {
		return false, fmt.Errorf("status/leader: %d %q", code, body)
	}
	if s.Token != "" {
		code, body, err = doJSON(ctx, http.MethodGet, s.HTTPAddr()+"/v1/acl/token/self", nil, nil, "X-Consul-Token", s.Token)
		if err != nil {
			return false, err
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("acl/token/self: %d %q", code, body)
		}
	}
	var roots struct {
		TrustDomain string
		Roots       []struct{ ID string }
	}
	code, body, err = doJSON(ctx, http.MethodGet, s.HTTPAddr()+"/v1/connect/ca/roots", nil, &roots, "X-Consul-Token", s.Token)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK || roots.TrustDomain == "" || len(roots.Roots) == 0 {
		return false, fmt.Errorf("connect/ca/roots: %d %q", code, body)
	}
	// Right after election Consul migrates legacy intentions to config
	// entries and refuses intention writes meanwhile ("Intentions are read
	// only while being upgraded to config entries"): probe with a harmless
	// write so tests start once intentions are writable.
	probe := s.HTTPAddr() + "/v1/connect/intentions/exact?source=ztn-testenv-probe&destination=ztn-testenv-probe"
	code, body, err = doJSON(ctx, http.MethodPut, probe, map[string]string{"Action": "deny"}, nil, "X-Consul-Token", s.Token)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("intention write probe: %d %q", code, body)
	}
	if code, body, err = doJSON(ctx, http.MethodDelete, probe, nil, nil, "X-Consul-Token", s.Token); err != nil || code != http.StatusOK {
		return false, fmt.Errorf("intention probe cleanup: %d %q %v", code, body, err)
	}
	s.TrustDomain = roots.TrustDomain
	return true, nil
}
