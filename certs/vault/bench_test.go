package vault

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/certsx"
)

// BenchmarkVaultIssue measures issuance from a real Vault (dev mode, on this
// machine): "issue" is a whole Issue (P-256 key, CSR, sign/<role>, checks,
// trust bundle read), "sign" the signing request alone. Reports p50 and p99
// latencies in milliseconds.
func BenchmarkVaultIssue(b *testing.B) {
	e := newVaultEnv(b, time.Hour, "web")
	ctx := context.Background()
	v, err := newIssuer(ctx, e.config(b, "web"), certsx.NewConfig([]certs.Option{certs.WithLogger(slog.New(slog.DiscardHandler))}))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("issue", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := v.Issue(ctx); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportPercentiles(b, lat)
	})
	b.Run("sign", func(b *testing.B) {
		csr := csrPEM(b, "", nil, serviceID("web").String())
		var lat []time.Duration
		for b.Loop() {
			t0 := time.Now()
			var resp signResponse
			if err := v.do(ctx, "POST", "pki/sign/web", map[string]any{"csr": csr, "format": "pem"}, &resp); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportPercentiles(b, lat)
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
