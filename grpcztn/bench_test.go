package grpcztn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ztnlabs/ztn/grpcztn"
)

// pairedRates alternates short slices of each contender (as
// ztnet/paired_bench_test.go does), so background load on a shared machine
// hits them alike; it returns operations per second for each.
func pairedRates(b *testing.B, rounds, concurrency int, contenders []func() error) []float64 {
	const slice = 150 * time.Millisecond
	ops := make([]int64, len(contenders))
	spent := make([]time.Duration, len(contenders))
	for range rounds {
		for i, op := range contenders {
			var n atomic.Int64
			var wg sync.WaitGroup
			stop := time.Now().Add(slice)
			start := time.Now()
			for range concurrency {
				wg.Go(func() {
					for time.Now().Before(stop) {
						if err := op(); err != nil {
							b.Error(err)
							return
						}
						n.Add(1)
					}
				})
			}
			wg.Wait()
			spent[i] += time.Since(start)
			ops[i] += n.Load()
		}
	}
	rates := make([]float64, len(contenders))
	for i := range rates {
		rates[i] = float64(ops[i]) / spent[i].Seconds()
	}
	return rates
}

// BenchmarkPairedUnary reports unary RPCs per second (health Check) through
// grpcztn and through the same grpc-go stack over plain crypto/tls mutual
// TLS with the same certificates, and the ratio.
func BenchmarkPairedUnary(b *testing.B) {
	m := newMesh(b)
	intentions(b, m, allowWebToAPI)
	api, web := service(b, m, "api"), service(b, m, "web")
	healthServer(b, api)
	zc, err := grpcztn.NewClient(web, "api")
	if err != nil {
		b.Fatal(err)
	}
	defer zc.Close()
	zhc := healthpb.NewHealthClient(zc)

	roots := x509.NewCertPool()
	for _, r := range m.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}
	rawSrv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{svidCert(b, m.CA(), "api")},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots,
	})))
	healthpb.RegisterHealthServer(rawSrv, health.NewServer())
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go rawSrv.Serve(rl)
	defer rawSrv.Stop()
	rc, err := grpc.NewClient("passthrough:///"+rl.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{svidCert(b, m.CA(), "web")},
		RootCAs: roots, InsecureSkipVerify: true, // URI SAN only; the chain is what matters here
	})))
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	rhc := healthpb.NewHealthClient(rc)
	ctx := context.Background()
	req := &healthpb.HealthCheckRequest{}
	call := func(c healthpb.HealthClient) func() error {
		return func() error { _, err := c.Check(ctx, req); return err }
	}
	for _, conc := range []int{1, 16} {
		b.Run("c="+itoa(conc), func(b *testing.B) {
			var rates []float64
			for b.Loop() {
				rates = pairedRates(b, 10, conc, []func() error{call(rhc), call(zhc)})
			}
			b.ReportMetric(rates[0], "tls-rpcs/s")
			b.ReportMetric(rates[1], "ztn-rpcs/s")
			b.ReportMetric(rates[1]/rates[0], "ztn/tls")
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
