package httpztn_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"

	"github.com/ztnlabs/ztn/ztnet"
)

// One access record per request: at Info when allowed, at Warn when refused
// (so a logger at Warn keeps only the refusals), with the decision's reason.
func TestAccessRecords(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		t.Run(level.String(), func(t *testing.T) {
			var buf lockedBuffer
			m := newMesh(t, ztnet.WithDevLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))))
			intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[
			  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/ok","Methods":["GET"]}}]}]}]`)
			api, web := service(t, m, "api"), service(t, m, "web")
			serveHTTP(t, api, whoami)
			c := newClient(t, web)
			if code, body := do(t, c, "GET", "http://api/ok/x"); code != 200 {
				t.Fatalf("GET /ok/x: %d %s", code, body)
			}
			if code, body := do(t, c, "GET", "http://api/no"); code != 403 {
				t.Fatalf("GET /no: %d %s", code, body)
			}

			recs := buf.records(t, "ztn request")
			want := []map[string]any{{
				"level": "WARN", "path": "/no", "decision": "deny", "status": 403.0,
				"reason": "L7 intention web → api: no permission matched (default deny)",
			}}
			if level == slog.LevelInfo {
				want = append([]map[string]any{{
					"level": "INFO", "path": "/ok/x", "decision": "allow", "status": 200.0,
					"reason": "L7 intention web → api: permission 1 (GET prefix /ok) allows",
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

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the JSON records with message msg.
func (l *lockedBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split([]byte(l.String()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}
