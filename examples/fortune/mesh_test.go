package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	vault "github.com/hashicorp/vault/api"

	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// The fortune walkthrough in mesh mode, as separate processes on a real
// Consul and Vault: three servers and a consumer fetching continuously.
// kill -9 of one server: every fetch still succeeds, and Consul drops the
// instance once its health check lapses. The intention flipped to deny: the
// consumer is refused within 1s, with the reason. The servers then stop
// cleanly and deregister.
func TestMesh(t *testing.T) {
	csrv := testenv.Consul(t)
	vsrv := testenv.Vault(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The PKI: a CA and one role and policy per service, and a token per
	// service holding only its own policy.
	root, _ := meshtest.VaultPKI(t, ctx, vsrv, "fortune", "consumer")
	token := func(service string) string {
		s, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"ztn-" + service}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}

	cc := meshtest.ConsulClient(t, csrv.Addr)
	setIntention(t, cc, consul.IntentionActionAllow)

	bin := buildExample(t)
	env := func(service string) []string {
		var e []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CONSUL_") && !strings.HasPrefix(kv, "VAULT_") && !strings.HasPrefix(kv, "ZTN_") {
				e = append(e, kv)
			}
		}
		return append(e,
			"CONSUL_HTTP_ADDR="+csrv.Addr,
			"VAULT_ADDR="+vsrv.HTTPAddr(),
			"VAULT_TOKEN="+token(service),
			"ZTN_PKI_MOUNT=pki",
			"ZTN_PKI_ROLE={service}",
			"ZTN_TRUST_DOMAIN=ztn.test",
			"ZTN_DATACENTER=dc1",
			"ZTN_SERVICE="+service,
		)
	}

	var servers []*process
	for i := range 3 {
		p := start(t, fmt.Sprintf("server-%d", i+1), bin, env("fortune"), "-mode", "server", "-addr", "127.0.0.1:0")
		servers = append(servers, p)
	}
	addrs := map[string]*process{}
	serving := regexp.MustCompile(`^fortune: serving on (\S+)$`)
	for _, p := range servers {
		line := p.waitLine(t, serving, 45*time.Second)
		p.addr = serving.FindStringSubmatch(line)[1]
		addrs[p.addr] = p
	}
	passing := func() ([]string, error) {
		entries, _, err := cc.Health().Connect("fortune", "", true, nil)
		if err != nil {
			return nil, err
		}
		var got []string
		for _, e := range entries {
			got = append(got, fmt.Sprintf("%s:%d", e.Service.Address, e.Service.Port))
		}
		slices.Sort(got)
		return got, nil
	}
	waitPassing := func(want []string, within time.Duration) time.Duration {
		t.Helper()
		slices.Sort(want)
		t0 := time.Now()
		for {
			got, err := passing()
			if err == nil && slices.Equal(got, want) {
				return time.Since(t0)
			}
			if time.Since(t0) > within {
				t.Fatalf("consul's passing instances of fortune: %v (%v), want %v", got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitPassing([]string{servers[0].addr, servers[1].addr, servers[2].addr}, 10*time.Second)
	t.Logf("consul lists 3 passing instances: %s, %s, %s", servers[0].addr, servers[1].addr, servers[2].addr)

	consumer := start(t, "consumer", bin, env("consumer"), "-mode", "consumer", "-n", "0", "-interval", "50ms")
	fetched := regexp.MustCompile(`^-- (\d+) (\S+) (\S+):$`)
	served := func() map[string]int {
		m := map[string]int{}
		for _, l := range consumer.lines() {
			if f := fetched.FindStringSubmatch(l.text); f != nil {
				if f[3] != "spiffe://ztn.test/ns/default/dc/dc1/svc/fortune" {
					t.Errorf("fetch %s from %s", f[1], f[3])
				}
				m[f[2]]++
			}
		}
		return m
	}
	fetches := func() int {
		n := 0
		for _, c := range served() {
			n += c
		}
		return n
	}
	waitFetches := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for fetches() < n {
			if !consumer.running() {
				t.Fatalf("the consumer exited: %v\n%s", consumer.exitErr(), consumer.output())
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d fetches after %v, want %d\n%s", fetches(), within, n, consumer.output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFetches(12, 30*time.Second)
	if m := served(); len(m) != 3 {
		t.Fatalf("fetches spread over %v, want the 3 instances", m)
	}

	// kill -9 one server: the consumer keeps being served; Consul drops the
	// instance when its TTL check lapses.
	victim := servers[1]
	before := fetches()
	victim.kill(t)
	t.Logf("killed %s (%s) with SIGKILL", victim.name, victim.addr)
	took := waitPassing([]string{servers[0].addr, servers[2].addr}, 30*time.Second)
	t.Logf("consul dropped %s from the passing instances %s after the kill", victim.addr, took.Round(100*time.Millisecond))
	waitFetches(fetches()+10, 10*time.Second)
	after := fetches() - before
	t.Logf("%d fetches since the kill, none failed; served per instance: %v", after, served())

	// Deny: the consumer is refused within 1s, with the reason.
	setIntention(t, cc, consul.IntentionActionDeny)
	t0 := time.Now()
	refused := regexp.MustCompile(`^fortune: fetch \d+ refused: ztnet: dial fortune: spiffe://ztn.test/ns/default/dc/dc1/svc/consumer denied: intention consumer → fortune denies`)
	line := consumer.waitLine(t, refused, 5*time.Second)
	at := consumer.lineTime(line)
	t.Logf("refused %s after the deny was written: %s", at.Sub(t0).Round(time.Millisecond), line)
	if d := at.Sub(t0); d > time.Second {
		t.Errorf("refused %v after the deny, want within 1s", d)
	}
	if err := consumer.wait(5 * time.Second); err == nil {
		t.Error("the refused consumer exited 0")
	}

	// The live servers stop on SIGTERM and deregister.
	for _, p := range []*process{servers[0], servers[2]} {
		p.signal(t, syscall.SIGTERM)
		if err := p.wait(15 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.output())
		}
	}
	waitPassing(nil, 5*time.Second)
}

func setIntention(t *testing.T, c *consul.Client, action consul.IntentionAction) {
	t.Helper()
	e := &consul.ServiceIntentionsConfigEntry{Kind: consul.ServiceIntentions, Name: "fortune",
		Sources: []*consul.SourceIntention{{Name: "consumer", Action: action}}}
	if _, _, err := c.ConfigEntries().Set(e, nil); err != nil {
		t.Fatalf("intention consumer -> fortune %s: %v", action, err)
	}
}

// buildExample builds this command into the test's temporary directory.
func buildExample(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the example: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fortune")
	t0 := time.Now()
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the example in %s", time.Since(t0).Round(100*time.Millisecond))
	return bin
}

// process is a running example process whose output lines are kept, with
// the time each arrived.
type process struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu  sync.Mutex
	out []line
}

type line struct {
	at   time.Time
	text string
}

func start(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Go(func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				p.mu.Lock()
				p.out = append(p.out, line{time.Now(), sc.Text()})
				p.mu.Unlock()
			}
		})
	}
	go func() {
		readers.Wait() // Wait must follow the pipes' reads
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
		}
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.output())
		}
	})
	return p
}

func (p *process) lines() []line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.out)
}

func (p *process) output() string {
	var b strings.Builder
	for _, l := range p.lines() {
		fmt.Fprintf(&b, "  %s %s\n", l.at.Format("15:04:05.000"), l.text)
	}
	return b.String()
}

func (p *process) lineTime(text string) time.Time {
	for _, l := range p.lines() {
		if l.text == text {
			return l.at
		}
	}
	return time.Time{}
}

// waitLine waits for a line matching re and returns it.
func (p *process) waitLine(t *testing.T, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, l := range p.lines() {
			if re.MatchString(l.text) {
				return l.text
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no line matching %s within %v (exited: %v)\n%s", p.name, re, within, !p.running(), p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) exitErr() error {
	if p.running() {
		return nil
	}
	return p.err
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	<-p.done
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns its error.
func (p *process) wait(within time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		return fmt.Errorf("%s still running after %v", p.name, within)
	}
}
