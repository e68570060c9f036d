package ztnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/ztnlabs/ztn/certs"
)

// The benchmarks compare ztnet with raw crypto/tls doing the same work in the
// same run: TLS 1.3, mutual authentication with ECDSA P-256 certificates from
// the same CA, chain verification on both sides. scripts/bench.sh prints the
// ratios.

type benchEnv struct {
	mesh    *testMesh
	web     *Service
	api     *Service
	apiAddr string

	rawAddr         string
	rawClient       *tls.Config
	rawResumeClient *tls.Config // rawClient with a session cache
}

func newBenchEnv(b *testing.B, opts ...Option) *benchEnv {
	b.Helper()
	m := newTestMesh(b, WithLogger(discardLogger))
	m.allow(b, "web->api")
	e := &benchEnv{mesh: m}
	e.api = m.service(b, "api")
	e.web = m.service(b, "web", opts...)
	l := listen(b, e.api)
	serve(b, l, echoOne)
	e.apiAddr = l.Addr().String()

	// Raw crypto/tls with the same certificates and CA.
	ctx := context.Background()
	apiSrc, err := m.CA().Source(ctx, "dc1", "api", time.Hour, certs.WithLogger(discardLogger))
	if err != nil {
		b.Fatal(err)
	}
	webSrc, err := m.CA().Source(ctx, "dc1", "web", time.Hour, certs.WithLogger(discardLogger))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { apiSrc.Close(); webSrc.Close() })
	roots := x509.NewCertPool()
	for _, r := range m.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}
	serverCert := tlsCert(b, apiSrc)
	rawServer := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	}
	e.rawClient = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{tlsCert(b, webSrc)},
		// The server has a URI SAN, no DNS name: verify the chain the way
		// any SPIFFE client does.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
	e.rawResumeClient = e.rawClient.Clone()
	e.rawResumeClient.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	rl, err := tls.Listen("tcp", "127.0.0.1:0", rawServer)
	if err != nil {
		b.Fatal(err)
	}
	serve(b, rl, echoOne)
	e.rawAddr = rl.Addr().String()
	return e
}

func tlsCert(b *testing.B, src x509svid.Source) tls.Certificate {
	svid, err := src.GetX509SVID()
	if err != nil {
		b.Fatal(err)
	}
	var raw [][]byte
	for _, c := range svid.Certificates {
		raw = append(raw, c.Raw)
	}
	return tls.Certificate{Certificate: raw, PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
}

// echoOne answers one byte and closes.
func echoOne(c net.Conn) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err == nil {
		_, _ = c.Write(b[:])
	}
}

func exchangeOne(c net.Conn) error {
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	return err
}

func (e *benchEnv) rawConn() error {
	c, err := tls.Dial("tcp", e.rawAddr, e.rawClient)
	if err != nil {
		return err
	}
	defer c.Close()
	return exchangeOne(c)
}

// rawResumeConn is rawConn resuming sessions with crypto/tls defaults.
func (e *benchEnv) rawResumeConn() error {
	c, err := tls.Dial("tcp", e.rawAddr, e.rawResumeClient)
	if err != nil {
		return err
	}
	defer c.Close()
	return exchangeOne(c)
}

func (e *benchEnv) ztnConn() error {
	c, err := e.web.Dial(context.Background(), "api")
	if err != nil {
		return err
	}
	defer c.Close()
	return exchangeOne(c)
}

func runConns(b *testing.B, concurrency int, conn func() error) {
	b.ReportAllocs()
	if concurrency == 1 {
		for b.Loop() {
			if err := conn(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism((concurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := conn(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
}

// BenchmarkNewConn: dial + handshake + authorization + 1-byte echo + close.
func BenchmarkNewConn(b *testing.B) {
	for _, conc := range []int{1, 16} {
		b.Run("c="+itoa(conc)+"/raw-tls", func(b *testing.B) {
			e := newBenchEnv(b)
			runConns(b, conc, e.rawConn)
		})
		b.Run("c="+itoa(conc)+"/ztnet-full", func(b *testing.B) {
			e := newBenchEnv(b, WithoutResumption())
			runConns(b, conc, e.ztnConn)
		})
		b.Run("c="+itoa(conc)+"/ztnet-resume", func(b *testing.B) {
			e := newBenchEnv(b)
			runConns(b, conc, e.ztnConn)
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkBulk: throughput of one connection, client to server.
func BenchmarkBulk(b *testing.B) {
	const chunk = 64 << 10
	run := func(b *testing.B, dial func() (net.Conn, error)) {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		// Wait until the server has read everything.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.ReadAll(c)
	}
	sink := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
	b.Run("raw-tls", func(b *testing.B) {
		e := newBenchEnv(b)
		rl, err := tls.Listen("tcp", "127.0.0.1:0", e.rawServerConfig(b))
		if err != nil {
			b.Fatal(err)
		}
		serve(b, rl, sink)
		run(b, func() (net.Conn, error) { return tls.Dial("tcp", rl.Addr().String(), e.rawClient) })
	})
	b.Run("ztnet", func(b *testing.B) {
		e := newBenchEnv(b)
		sinkSvc := e.mesh.service(b, "sink")
		e.mesh.allow(b, "web->api", "web->sink")
		serve(b, listen(b, sinkSvc), sink)
		run(b, func() (net.Conn, error) { return e.web.Dial(context.Background(), "sink") })
	})
}

func (e *benchEnv) rawServerConfig(b *testing.B) *tls.Config {
	src, err := e.mesh.CA().Source(context.Background(), "dc1", "sink", time.Hour, certs.WithLogger(discardLogger))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	roots := x509.NewCertPool()
	for _, r := range e.mesh.CA().Bundle().X509Authorities() {
		roots.AddCert(r)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{tlsCert(b, src)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: roots}
}

// BenchmarkIdleConnHeap reports the heap held per idle, established
// connection (both ends in this process), after a 1-byte exchange.
func BenchmarkIdleConnHeap(b *testing.B) {
	const n = 200
	measure := func(b *testing.B, accept func() (net.Conn, error), dial func() (net.Conn, error)) {
		var total float64
		for b.Loop() {
			var conns []net.Conn
			var mu sync.Mutex
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					c, err := accept()
					if err != nil {
						return
					}
					var one [1]byte
					_, _ = io.ReadFull(c, one[:])
					_, _ = c.Write(one[:])
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for range n {
				c, err := dial()
				if err != nil {
					b.Fatal(err)
				}
				if err := exchangeOne(c); err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
			}
			wg.Wait()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			total += float64(m1.HeapAlloc-m0.HeapAlloc) / n
			for _, c := range conns {
				c.Close()
			}
		}
		b.ReportMetric(total/float64(b.N), "B/conn")
	}
	b.Run("raw-tls", func(b *testing.B) {
		e := newBenchEnv(b)
		rl, err := tls.Listen("tcp", "127.0.0.1:0", e.rawServerConfig(b))
		if err != nil {
			b.Fatal(err)
		}
		defer rl.Close()
		measure(b, rl.Accept, func() (net.Conn, error) { return tls.Dial("tcp", rl.Addr().String(), e.rawClient) })
	})
	b.Run("ztnet", func(b *testing.B) {
		e := newBenchEnv(b)
		idle := e.mesh.service(b, "idle")
		e.mesh.allow(b, "web->api", "web->idle")
		l := listen(b, idle)
		measure(b, l.Accept, func() (net.Conn, error) {
			c, err := e.web.Dial(context.Background(), "idle")
			if err != nil {
				return nil, err
			}
			return c, nil
		})
	})
}

// discardLogger formats records like a real logger would, then drops them.
var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
