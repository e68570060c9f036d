package grpcztn_test

import (
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn/internal/test/logtest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/ztnet"
)

// One access record per RPC: at Debug when allowed, at Warn when refused
// (so a logger at Info, or at Warn, keeps only the refusals; one at Debug is
// the full access log), with the decision's reason.
func TestAccessRecords(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		t.Run(level.String(), func(t *testing.T) {
			var buf logtest.Buffer
			m := meshtest.Dev(t, ztnet.WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))))
			meshtest.Intentions(t, m, `[{"Kind":"service-intentions","Name":"api","Sources":[
			  {"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathExact":"/grpc.health.v1.Health/Check"}}]}]}]`)
			api, web := meshtest.Service(t, m, "api"), meshtest.Service(t, m, "web")
			healthServer(t, api)
			hc := client(t, web, "api")
			if _, err := hc.Check(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			s, err := hc.Watch(poll.Context(t, 5*time.Second), &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			wantStatus(t, err, codes.PermissionDenied, "no permission matched")

			recs := buf.Records(t, "ztn request")
			want := []map[string]any{{
				"level": "WARN", "method": "/grpc.health.v1.Health/Watch", "decision": "deny", "code": "PermissionDenied",
				"reason": "L7 intention web → api: no permission matched (default deny)",
			}}
			if level == slog.LevelDebug {
				want = append([]map[string]any{{
					"level": "DEBUG", "method": "/grpc.health.v1.Health/Check", "decision": "allow", "code": "OK",
					"reason": "L7 intention web → api: permission 1 (/grpc.health.v1.Health/Check) allows",
				}}, want...)
			}
			if len(recs) != len(want) {
				t.Fatalf("%d access records, want %d:\n%s", len(recs), len(want), buf.String())
			}
			for i, w := range want {
				w["protocol"], w["source"], w["destination"] = "grpc", web.ID().String(), api.ID().String()
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
