package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// PrometheusServer is a Prometheus server of its own, started by
// Prometheus, scraping plain-HTTP /metrics endpoints on loopback every
// scrape interval (default 1s) as job "ztn". Its storage is in a temporary
// directory.
type PrometheusServer struct {
	// Addr is the web/API listener's host:port.
	Addr string
	// LogPath is the server's output.
	LogPath string

	server
	targetsFile string
}

// PrometheusOption configures Prometheus.
type PrometheusOption func(*prometheusConfig)

type prometheusConfig struct {
	interval time.Duration
	timeout  time.Duration
}

// PrometheusScrapeInterval sets how often targets are scraped (default 1s).
func PrometheusScrapeInterval(d time.Duration) PrometheusOption {
	return func(c *prometheusConfig) { c.interval = d }
}

// PrometheusStartTimeout sets how long a start, and a
// [PrometheusServer.WaitQuery], may take before the test fails (default 60s).
func PrometheusStartTimeout(d time.Duration) PrometheusOption {
	return func(c *prometheusConfig) { c.timeout = d }
}

// prometheusYAML is the configuration: the targets come from a file that
// SetTargets rewrites (file service discovery picks the change up).
const prometheusYAML = `# written by testenv.Prometheus
global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: ztn
    file_sd_configs:
      - files: [%[2]q]
        refresh_interval: 1s
`

// Prometheus starts a Prometheus server (Debian package prometheus;
// ZTN_PROMETHEUS_BIN overrides where it is found) for the test on a free
// loopback port, scraping the targets (host:port of plain-HTTP /metrics
// endpoints; more with SetTargets), and waits until it is ready. It is
// killed when the test ends; when the test has failed, the end of its log is
// written to the test log. The test is skipped if prometheus is not
// installed (and fails if ZTN_REQUIRE_TOOLS is set).
func Prometheus(t testing.TB, targets []string, opts ...PrometheusOption) *PrometheusServer {
	t.Helper()
	cfg := prometheusConfig{interval: time.Second, timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin := systemBinary(t, "prometheus", "prometheus", "ZTN_PROMETHEUS_BIN", "prometheus")
	dir := t.TempDir()
	s := &PrometheusServer{targetsFile: filepath.Join(dir, "targets.json"), server: server{t: t, timeout: cfg.timeout}}
	s.SetTargets(targets...)
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, prometheusYAML, cfg.interval, s.targetsFile), 0o644); err != nil {
		t.Fatalf("testenv: prometheus: %v", err)
	}
	env := cleanEnv([]string{"HOME="}, "HOME="+dir)
	s.p = newProc(t, "prometheus", bin, dir, nil, env)
	s.LogPath = s.p.logPath
	s.server.ready = s.serves
	s.where = func() string { return "at " + s.URL() }
	s.startOnFreePorts(func() ([]string, error) {
		ports, err := freePorts("127.0.0.1", 1, false)
		if err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		args := []string{"--config.file=" + conf, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + s.Addr, "--log.level=info"}
		return args, nil
	})
	return s
}

func (s *PrometheusServer) serves(ctx context.Context) (bool, error) {
	return getOK(ctx, s.URL()+"/-/ready")
}

// URL returns the server's URL, http://host:port.
func (s *PrometheusServer) URL() string { return "http://" + s.Addr }

// SetTargets replaces the scraped targets (host:port; /metrics over plain
// HTTP). Prometheus picks the change up within a second or two.
func (s *PrometheusServer) SetTargets(targets ...string) {
	s.t.Helper()
	b, err := json.Marshal([]struct {
		Targets []string `json:"targets"`
	}{{Targets: append([]string{}, targets...)}})
	if err != nil {
		s.t.Fatalf("testenv: prometheus: %v", err)
	}
	// Written then renamed, so that Prometheus never reads half a file.
	tmp := s.targetsFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		s.t.Fatalf("testenv: prometheus: %v", err)
	}
	if err := os.Rename(tmp, s.targetsFile); err != nil {
		s.t.Fatalf("testenv: prometheus: %v", err)
	}
}

// PromSample is one element of an instant vector: a series' labels (its
// metric name under "__name__") and value.
type PromSample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates the PromQL expression q now, through /api/v1/query, and
// returns the instant vector it gives (an error for another result type, or
// when Prometheus rejects q).
func (s *PrometheusServer) Query(ctx context.Context, q string) ([]PromSample, error) {
	var out struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	u := s.URL() + "/api/v1/query?query=" + url.QueryEscape(q)
	code, body, err := doJSON(ctx, http.MethodGet, u, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("testenv: prometheus: %w", err)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("testenv: prometheus: query %q: %d %.300q: %w", q, code, body, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("testenv: prometheus: query %q: %s: %s", q, out.ErrorType, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("testenv: prometheus: query %q: result is a %s, not a vector", q, out.Data.ResultType)
	}
	samples := make([]PromSample, 0, len(out.Data.Result))
	for _, r := range out.Data.Result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("testenv: prometheus: query %q: value %v: %w", q, r.Value[1], err)
		}
		samples = append(samples, PromSample{Labels: r.Metric, Value: v})
	}
	return samples, nil
}

// WaitQuery evaluates q until done returns true for its result, and returns
// that result; the test fails after the start timeout
// (PrometheusStartTimeout) with the last result and the targets' health.
func (s *PrometheusServer) WaitQuery(q string, done func([]PromSample) bool) []PromSample {
	s.t.Helper()
	last, err := pollResult(s.timeout, func(ctx context.Context) ([]PromSample, error) { return s.Query(ctx, q) }, done)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, targets, _ := doJSON(ctx, http.MethodGet, s.URL()+"/api/v1/targets", nil, nil)
		s.t.Fatalf("testenv: prometheus: %q: %v; last result %v; targets: %.2000s", q, err, last, targets)
	}
	return last
}

// MetricNames returns the names of every series Prometheus holds (the
// values of label __name__): the names PromQL sees, after Prometheus'
// translation of OpenTelemetry's.
func (s *PrometheusServer) MetricNames(ctx context.Context) ([]string, error) {
	var out struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	code, body, err := doJSON(ctx, http.MethodGet, s.URL()+"/api/v1/label/__name__/values", nil, &out)
	if err != nil {
		return nil, fmt.Errorf("testenv: prometheus: %w", err)
	}
	if code != http.StatusOK || out.Status != "success" {
		return nil, fmt.Errorf("testenv: prometheus: label values: %d %.300q", code, body)
	}
	return out.Data, nil
}
