package testenv

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, method, url string, in, out any, headers ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, body, err := doJSON(ctx, method, url, in, out, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if code/100 != 2 {
		t.Logf("%s %s: %d %s", method, url, code, body)
	}
	return code
}

func TestPinnedVersion(t *testing.T) {
	gomod := []byte(`module x

require github.com/a/b v1.2.3

require (
	github.com/hashicorp/consul v1.20.6 // indirect
	github.com/hashicorp/consul/api v1.30.0 // indirect
)

tool github.com/hashicorp/consul

replace github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk v0.21.0
`)
	for mod, want := range map[string]string{
		"github.com/a/b":              "v1.2.3",
		"github.com/hashicorp/consul": "v1.20.6",
	} {
		got, err := pinnedVersion(gomod, mod)
		if err != nil || got != want {
			t.Errorf("pinnedVersion(%s) = %q, %v; want %q", mod, got, err, want)
		}
	}
	if v, err := pinnedVersion(gomod, "github.com/hashicorp/vault/sdk"); err == nil {
		t.Errorf("a replace line was taken for a requirement: %q", v)
	}
}

// ToolPath and scripts/build-tools.sh must agree on the cache path.
func TestToolPathMatchesScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for name := range tools {
		want, err := ToolPath(name)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("bash", root+"/scripts/tool-path.sh", name).Output()
		if err != nil {
			t.Fatalf("tool-path.sh %s: %v", name, err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: tool-path.sh says %s, ToolPath %s", name, got, want)
		}
	}
}

func TestRequireTools(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "false": false, "1": true, "true": true, "yes": true} {
		t.Setenv("ZTN_REQUIRE_TOOLS", v)
		if got := requireTools(); got != want {
			t.Errorf("ZTN_REQUIRE_TOOLS=%q: requireTools() = %v", v, got)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ports := FreePorts(t, "127.0.0.1", 20)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d twice in %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		l.Close()
	}
	pair, err := freePorts("127.0.0.1", 1, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{pair[0], pair[0] + 1} {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d of the pair not free: %v", p, err)
		}
		l.Close()
	}
}

type catalogService struct {
	ServiceName string
	ServicePort int
}

func TestConsul(t *testing.T) {
	t.Parallel()
	s := Consul(t)
	if s.TrustDomain != s.ClusterID+".consul" {
		t.Errorf("trust domain %q, want %s.consul", s.TrustDomain, s.ClusterID)
	}
	if s.Ports.GRPC != -1 || s.Ports.DNS != -1 || s.Ports.SerfWAN != -1 || s.Ports.GRPCTLS != -1 {
		t.Errorf("optional listeners enabled by default: %+v", s.Ports)
	}
	reg := map[string]any{"Name": "web", "ID": "web-1", "Port": 8080, "Address": "127.0.0.1"}
	if code := call(t, http.MethodPut, s.HTTPAddr()+"/v1/agent/service/register", reg, nil); code != http.StatusOK {
		t.Fatalf("register: %d", code)
	}
	var svcs []catalogService
	call(t, http.MethodGet, s.HTTPAddr()+"/v1/catalog/service/web", nil, &svcs)
	if len(svcs) != 1 || svcs[0].ServiceName != "web" || svcs[0].ServicePort != 8080 {
		t.Fatalf("catalog/service/web = %+v", svcs)
	}
}

func TestConsulACL(t *testing.T) {
	t.Parallel()
	s := Consul(t, ConsulACL(""))
	if s.Token == "" {
		t.Fatal("no management token")
	}
	reg := map[string]any{"Name": "api", "Port": 9090}
	url := s.HTTPAddr() + "/v1/agent/service/register"
	if code := call(t, http.MethodPut, url, reg, nil); code != http.StatusForbidden {
		t.Errorf("register without a token: %d, want 403", code)
	}
	if code := call(t, http.MethodPut, url, reg, nil, "X-Consul-Token", s.Token); code != http.StatusOK {
		t.Errorf("register with the management token: %d, want 200", code)
	}
}

func TestConsulOptions(t *testing.T) {
	t.Parallel()
	s := Consul(t, ConsulAllPorts(), ConsulBind("127.0.0.2"), ConsulDatacenter("dc7"),
		ConsulHCL(`node_meta { ztn = "testenv" }`))
	if host, _, _ := net.SplitHostPort(s.Addr); host != "127.0.0.2" || s.Bind != "127.0.0.2" {
		t.Errorf("Addr %s, Bind %s; want 127.0.0.2", s.Addr, s.Bind)
	}
	for name, p := range map[string]int{"grpc": s.Ports.GRPC, "grpc-tls": s.Ports.GRPCTLS, "dns": s.Ports.DNS, "serf-wan": s.Ports.SerfWAN} {
		if p <= 0 {
			t.Errorf("%s port not enabled: %d", name, p)
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Bind, strconv.Itoa(p)), 2*time.Second)
		if err != nil {
			t.Errorf("%s port %d: %v", name, p, err)
			continue
		}
		c.Close()
	}
	var self struct {
		Config struct{ Datacenter string }
		Meta   map[string]string
	}
	call(t, http.MethodGet, s.HTTPAddr()+"/v1/agent/self", nil, &self)
	if self.Meta["ztn"] != "testenv" {
		t.Errorf("extra HCL not applied: node meta %v", self.Meta)
	}
	if self.Config.Datacenter != "dc7" {
		t.Errorf("datacenter %q, want dc7", self.Config.Datacenter)
	}
}

func TestConsulRestart(t *testing.T) {
	t.Parallel()
	s := Consul(t)
	addr, td := s.Addr, s.TrustDomain
	leader := func() int {
		var l string
		return call(t, http.MethodGet, s.HTTPAddr()+"/v1/status/leader", nil, &l)
	}

	s.Kill()
	if s.Running() {
		t.Fatal("running after Kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := doJSON(ctx, http.MethodGet, s.HTTPAddr()+"/v1/status/leader", nil, nil); err == nil {
		t.Fatal("API answers after Kill")
	}
	s.Start()
	if s.Addr != addr || s.TrustDomain != td {
		t.Errorf("after Start: addr %s trust domain %s; want %s %s", s.Addr, s.TrustDomain, addr, td)
	}
	if code := leader(); code != http.StatusOK {
		t.Fatalf("after Start: status/leader %d", code)
	}

	s.Restart()
	if code := leader(); code != http.StatusOK || s.TrustDomain != td {
		t.Fatalf("after Restart: status/leader %d, trust domain %s", code, s.TrustDomain)
	}
}

func TestVault(t *testing.T) {
	t.Parallel()
	s := Vault(t)
	tok := []string{"X-Vault-Token", s.Token}
	if code := call(t, http.MethodPost, s.HTTPAddr()+"/v1/sys/mounts/pki", map[string]any{"type": "pki"}, nil, tok...); code/100 != 2 {
		t.Fatalf("mount pki: %d", code)
	}
	var root struct{ Data struct{ Certificate string } }
	req := map[string]any{"common_name": "ztn testenv", "uri_sans": "spiffe://ztn.test", "key_type": "ec", "key_bits": 256}
	if code := call(t, http.MethodPost, s.HTTPAddr()+"/v1/pki/root/generate/internal", req, &root, tok...); code != http.StatusOK {
		t.Fatalf("root/generate/internal: %d", code)
	}
	blk, _ := pem.Decode([]byte(root.Data.Certificate))
	if blk == nil {
		t.Fatalf("no PEM certificate in %q", root.Data.Certificate)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA || len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://ztn.test" {
		t.Errorf("root: IsCA %v, URIs %v", cert.IsCA, cert.URIs)
	}
}

func TestVaultRestart(t *testing.T) {
	t.Parallel()
	s := Vault(t, VaultRootToken("ztn-root"))
	tok := []string{"X-Vault-Token", s.Token}
	addr := s.Addr
	if code := call(t, http.MethodPost, s.HTTPAddr()+"/v1/sys/mounts/pki", map[string]any{"type": "pki"}, nil, tok...); code/100 != 2 {
		t.Fatalf("mount pki: %d", code)
	}
	s.Kill()
	if s.Running() {
		t.Fatal("running after Kill")
	}
	s.Start()
	if s.Addr != addr || s.Token != "ztn-root" {
		t.Errorf("after Start: %s %s", s.Addr, s.Token)
	}
	// Dev mode: the mount is gone, the root token still works.
	var mounts map[string]any
	if code := call(t, http.MethodGet, s.HTTPAddr()+"/v1/sys/mounts", nil, &mounts, tok...); code != http.StatusOK {
		t.Fatalf("sys/mounts after Start: %d", code)
	}
	if _, ok := mounts["pki/"]; ok {
		t.Errorf("pki/ survived a dev-mode restart")
	}
	s.Restart()
	if code := call(t, http.MethodGet, s.HTTPAddr()+"/v1/sys/health", nil, nil); code != http.StatusOK {
		t.Fatalf("sys/health after Restart: %d", code)
	}
}
