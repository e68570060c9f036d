package ztnet

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/ztnlabs/ztn/internal/test/benchpair"
)

// The paired benchmarks alternate short time slices of each contender (see
// internal/test/benchpair), so background load hits them alike.

// BenchmarkPairedNewConn reports new connections per second (dial +
// handshake + authorization + 1-byte echo + close) for raw crypto/tls, ztnet
// with full handshakes and ztnet as configured by default (resumption), and
// the ratios to raw.
func BenchmarkPairedNewConn(b *testing.B) {
	for _, conc := range []int{1, 16} {
		b.Run("c="+itoa(conc), func(b *testing.B) {
			e := newBenchEnv(b)
			full := newBenchEnv(b, WithoutResumption())
			var rates []float64
			for b.Loop() {
				rates, _ = benchpair.Rates(b, 10, conc, []func() error{e.rawConn, full.ztnConn, e.ztnConn, e.rawResumeConn})
			}
			b.ReportMetric(rates[0], "raw-conns/s")
			b.ReportMetric(rates[1], "full-conns/s")
			b.ReportMetric(rates[2], "resume-conns/s")
			b.ReportMetric(rates[1]/rates[0], "full/raw")
			b.ReportMetric(rates[2]/rates[0], "resume/raw")
			// For reference: crypto/tls's own resumption (hybrid key
			// exchange, no authorization) against the same full handshakes.
			b.ReportMetric(rates[3]/rates[0], "rawresume/raw")
		})
	}
}

// BenchmarkPairedBulk reports one connection's client-to-server throughput,
// raw crypto/tls against ztnet, and the ratio.
func BenchmarkPairedBulk(b *testing.B) {
	e := newBenchEnv(b)
	sink := func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	rl, err := tls.Listen("tcp", "127.0.0.1:0", e.rawServerConfig(b))
	if err != nil {
		b.Fatal(err)
	}
	serve(b, rl, sink)
	sinkSvc := e.mesh.service(b, "sink")
	e.mesh.allow(b, "web->api", "web->sink")
	serve(b, listen(b, sinkSvc), sink)

	raw, err := tls.Dial("tcp", rl.Addr().String(), e.rawClient)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	ztn, err := e.web.Dial(context.Background(), "sink")
	if err != nil {
		b.Fatal(err)
	}
	defer ztn.Close()
	buf := make([]byte, 64<<10)
	writer := func(c net.Conn) func() error {
		return func() error { _, err := c.Write(buf); return err }
	}
	var rates []float64
	for b.Loop() {
		rates, _ = benchpair.Rates(b, 10, 1, []func() error{writer(raw), writer(ztn)})
	}
	mb := float64(len(buf)) / 1e6
	b.ReportMetric(rates[0]*mb, "raw-MB/s")
	b.ReportMetric(rates[1]*mb, "ztnet-MB/s")
	b.ReportMetric(rates[1]/rates[0], "ztnet/raw")
}
