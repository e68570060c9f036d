package httpztn_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/ztnet"
)

// One access record per request: at Debug when allowed, at Warn when
// refused (so a logger at Info, or at Warn, keeps only the refusals; one at
// Debug is the full access log), with the decision's reason.
func TestAccessRecords(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		t.Run(level.String(), func(t *testing.T) {
			var buf logtest.Buffer
			m := meshtest.Dev(t, ztnet.WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))))
			meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[
			  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/ok","Methods":["GET"]}}]}]}]`)
			api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
			serveHTTP(t, api, whoami)
			c := newClient(t, web)
			code, okBody := do(t, c, "GET", "http://api/ok/x")
			if code != 200 {
				t.Fatalf("GET /ok/x: %d %s", code, okBody)
			}
			code, noBody := do(t, c, "GET", "http://api/no")
			if code != 403 {
				t.Fatalf("GET /no: %d %s", code, noBody)
			}

			recs := buf.Records(t, "ztn request")
			want := []map[string]any{{
				"level": "WARN", "path": "/no", "decision": "deny", "status": 403.0,
				"reason":   "L7 intention web → api: no permission matched (default deny)",
				"bytes_in": 0.0, "bytes_out": float64(len(noBody)),
			}}
			if level == slog.LevelDebug {
				want = append([]map[string]any{{
					"level": "DEBUG", "path": "/ok/x", "decision": "allow", "status": 200.0,
					"reason":   "L7 intention web → api: permission 1 (GET prefix /ok) allows",
					"bytes_in": 0.0, "bytes_out": float64(len(okBody)),
				}}, want...)
			}
			if len(recs) != len(want) {
				t.Fatalf("%d access records, want %d:\n%s", len(recs), len(want), buf.String())
			}
			for i, w := range want {
				w["protocol"], w["method"], w["source"], w["destination"] = "HTTP/2.0", "GET", web.ID().String(), api.ID().String()
				for k, v := range w {
					if recs[i][k] != v {
						t.Errorf("record %d: %s = %v, want %v", i, k, recs[i][k], v)
					}
				}
				if _, ok := recs[i]["duration"]; !ok {
					t.Errorf("record %d has no duration", i)
				}
			}
		})
	}
}

// bytes_in counts the request body the handler read; bytes_out the
// response body it wrote.
func TestAccessRecordBytes(t *testing.T) {
	var buf logtest.Buffer
	m := meshtest.Dev(t, ztnet.WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	meshtest.Intentions(t, m, allowWebToAPI)
	api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
	serveHTTP(t, api, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
		_, _ = w.Write(b) // echoed twice
	}))
	c := newClient(t, web)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://api/echo", strings.NewReader(strings.Repeat("z", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got) != 2000 {
		t.Fatalf("POST /echo: %d, %d bytes", resp.StatusCode, len(got))
	}
	recs := buf.Records(t, "ztn request")
	if len(recs) != 1 {
		t.Fatalf("%d access records, want 1:\n%s", len(recs), buf.String())
	}
	if recs[0]["bytes_in"] != 1000.0 || recs[0]["bytes_out"] != 2000.0 {
		t.Errorf("bytes_in %v, bytes_out %v; want 1000, 2000", recs[0]["bytes_in"], recs[0]["bytes_out"])
	}
}
