package testenv

import (
	"context"
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

// JaegerServer is a Jaeger (cmd/jaeger, the OpenTelemetry Collector based
// binary) of its own, started by Jaeger: an OTLP receiver (gRPC and HTTP),
// in-memory trace storage, and the query service (HTTP API). It keeps
// nothing after it stops.
type JaegerServer struct {
	// OTLPGRPCAddr and OTLPHTTPAddr are the OTLP receiver's host:port, for
	// gRPC and for HTTP/protobuf; QueryAddr the query service's HTTP
	// host:port (the /api endpoints).
	OTLPGRPCAddr, OTLPHTTPAddr, QueryAddr string
	// LogPath is the server's output.
	LogPath string

	server
}

// JaegerOption configures Jaeger.
type JaegerOption func(*jaegerConfig)

type jaegerConfig struct {
	timeout time.Duration
}

// JaegerStartTimeout sets how long a start, and a [JaegerServer.WaitTraces],
// may take before the test fails (default 60s).
func JaegerStartTimeout(d time.Duration) JaegerOption {
	return func(c *jaegerConfig) { c.timeout = d }
}

// jaegerYAML is the configuration: only the components that
// internal/tools/jaeger/patches.sh keeps. Jaeger's own telemetry is off: its
// metrics would listen on :8888, its query service's traces go to :4317.
const jaegerYAML = `# written by testenv.Jaeger
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: mem
    http:
      endpoint: %[1]s
    grpc:
      endpoint: %[2]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[3]s
      http:
        endpoint: %[4]s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// Jaeger starts a Jaeger for the test on free loopback ports and waits until
// its query API answers. It is killed when the test ends; when the test has
// failed, the end of its log is written to the test log. The test is
// skipped if the jaeger binary is not built (and fails if ZTN_REQUIRE_TOOLS
// is set).
func Jaeger(t testing.TB, opts ...JaegerOption) *JaegerServer {
	t.Helper()
	cfg := jaegerConfig{timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin := toolBinary(t, "jaeger")
	dir := t.TempDir()
	s := &JaegerServer{server: server{t: t, timeout: cfg.timeout}}
	conf := filepath.Join(dir, "jaeger.yaml")
	env := cleanEnv([]string{"OTEL_", "JAEGER_", "HOME="}, "HOME="+dir)
	s.p = newProc(t, "jaeger", bin, dir, nil, env)
	s.LogPath = s.p.logPath
	s.server.ready = s.serves
	s.where = func() string {
		return fmt.Sprintf("(OTLP gRPC %s, HTTP %s; query http://%s)", s.OTLPGRPCAddr, s.OTLPHTTPAddr, s.QueryAddr)
	}
	s.startOnFreePorts(func() ([]string, error) {
		ports, err := freePorts("127.0.0.1", 4, false)
		if err != nil {
			return nil, err
		}
		addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
		s.QueryAddr, s.OTLPGRPCAddr, s.OTLPHTTPAddr = addr(0), addr(2), addr(3)
		if err := os.WriteFile(conf, fmt.Appendf(nil, jaegerYAML, addr(0), addr(1), addr(2), addr(3)), 0o644); err != nil {
			return nil, err
		}
		return []string{"--config", conf}, nil
	})
	return s
}

// serves: the query API answers, and the OTLP HTTP receiver accepts
// connections (the collector starts receivers after extensions).
func (s *JaegerServer) serves(ctx context.Context) (bool, error) {
	if ok, err := getOK(ctx, s.QueryURL()+"/api/services"); !ok {
		return false, err
	}
	for _, a := range []string{s.OTLPGRPCAddr, s.OTLPHTTPAddr} {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
		if err != nil {
			return false, err
		}
		_ = c.Close()
	}
	return true, nil
}

// OTLPEndpoint returns the OTLP/HTTP receiver's URL, http://host:port: the
// value for OTEL_EXPORTER_OTLP_ENDPOINT (whose default protocol is
// http/protobuf).
func (s *JaegerServer) OTLPEndpoint() string { return "http://" + s.OTLPHTTPAddr }

// QueryURL returns the query service's URL, http://host:port. Its /api
// endpoints answer; the UI is not there (a binary built with go build
// embeds only a placeholder page: the UI is built with npm).
func (s *JaegerServer) QueryURL() string { return "http://" + s.QueryAddr }

// JaegerTrace is one trace as the query API (/api/traces) returns it.
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
}

// JaegerSpan is a span of a [JaegerTrace]. StartTime and Duration are in
// microseconds.
type JaegerSpan struct {
	TraceID       string            `json:"traceID"`
	SpanID        string            `json:"spanID"`
	OperationName string            `json:"operationName"`
	References    []JaegerReference `json:"references"`
	StartTime     int64             `json:"startTime"`
	Duration      int64             `json:"duration"`
	Tags          []JaegerTag       `json:"tags"`
	ProcessID     string            `json:"processID"`
}

// JaegerReference links a span to another (RefType "CHILD_OF" for its
// parent).
type JaegerReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// JaegerTag is a span attribute (or a process's resource attribute).
type JaegerTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// JaegerProcess is the resource a span came from: ServiceName is its
// service.name.
type JaegerProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []JaegerTag `json:"tags"`
}

// Tag returns the value of the span's attribute key, as a string ("" and
// false when the span has none).
func (sp JaegerSpan) Tag(key string) (string, bool) {
	for _, tg := range sp.Tags {
		if tg.Key == key {
			return fmt.Sprint(tg.Value), true
		}
	}
	return "", false
}

// Parent returns the span ID of the span's parent ("" for a root span).
func (sp JaegerSpan) Parent() string {
	for _, r := range sp.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Service returns the service.name of the process that sent span sp.
func (tr JaegerTrace) Service(sp JaegerSpan) string {
	return tr.Processes[sp.ProcessID].ServiceName
}

// Traces returns the traces (at most 100, newest first) with a span from
// service, through the query API's /api/traces. Jaeger stores spans a
// moment after it receives them (batch processor): poll, or use
// [JaegerServer.WaitTraces].
func (s *JaegerServer) Traces(ctx context.Context, service string) ([]JaegerTrace, error) {
	var out struct {
		Data   []JaegerTrace `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	u := s.QueryURL() + "/api/traces?limit=100&lookback=1h&service=" + url.QueryEscape(service)
	code, body, err := doJSON(ctx, http.MethodGet, u, nil, &out)
	if err != nil {
		return nil, fmt.Errorf("testenv: jaeger: %w", err)
	}
	if code != http.StatusOK || len(out.Errors) > 0 {
		return nil, fmt.Errorf("testenv: jaeger: GET %s: %d %.300q", u, code, body)
	}
	return out.Data, nil
}

// WaitTraces polls [JaegerServer.Traces] for service until done returns true
// for what it found, and returns that; the test fails after the start
// timeout (JaegerStartTimeout), with what was found last.
func (s *JaegerServer) WaitTraces(service string, done func([]JaegerTrace) bool) []JaegerTrace {
	s.t.Helper()
	last, err := pollResult(s.timeout, func(ctx context.Context) ([]JaegerTrace, error) { return s.Traces(ctx, service) }, done)
	if err != nil {
		s.t.Fatalf("testenv: jaeger: traces of %q: %v; last found %d traces: %s", service, err, len(last), summarizeTraces(last))
	}
	return last
}

// summarizeTraces lists each trace's spans as service:operation.
func summarizeTraces(trs []JaegerTrace) string {
	var b []byte
	for _, tr := range trs {
		b = fmt.Appendf(b, "\n  trace %s:", tr.TraceID)
		for _, sp := range tr.Spans {
			b = fmt.Appendf(b, " %s:%s", tr.Service(sp), sp.OperationName)
		}
	}
	return string(b)
}
