package consulnative

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	agentconnect "github.com/hashicorp/consul/agent/connect"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/consul/connect"
	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/consul"
	"github.com/ztnlabs/ztn/internal/test/benchpair"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet"
)

// Every contender does the same work per connection, over loopback, against
// one real Consul dev agent: find the server, TCP connect, a TLS 1.3
// handshake with mutual authentication by ECDSA P-256 certificates, the
// server's authorization of the client, a 1-byte echo, close.
//
//   - raw: crypto/tls with a fixed address and certificates from ztn's dev
//     CA; chain verification on both sides, no discovery, no authorization.
//   - native: Consul's connect package as documented: connect.Service
//     certificates from the agent's CA; the client resolves with a
//     ConsulResolver (a /v1/health/connect query per dial) and the server
//     authorizes every handshake with the agent's /v1/agent/connect/authorize.
//   - native-static: the same with a StaticResolver (no discovery request).
//   - ztn: ztnet as configured by default, with consul.Catalog (a cache
//     kept by a blocking query) and consul.Intentions (intentions synced by a
//     blocking query, evaluated in memory), certificates from ztn's dev CA;
//     TLS sessions are resumed, each resumed connection re-verified and
//     re-authorized.
//   - ztn-full: the same with full handshakes only (WithoutResumption).
//
// Consul's HTTP clients get a transport that keeps enough idle connections
// for the concurrency, so native is not slowed by reconnecting to the agent.

const (
	nativeServer = "native-fortune"
	nativeClient = "native-consumer"
	ztnServer    = "ztn-fortune"
	ztnClient    = "ztn-consumer"
	concurrency  = 16
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	consul *testenv.ConsulServer

	rawAddr   string
	rawClient *tls.Config

	nativeCli    *connect.Service
	nativeAddr   string
	nativeRes    connect.Resolver
	nativeStatic connect.Resolver

	ztn     *ztnet.Service
	ztnFull *ztnet.Service
	ztnAddr string
	// rawToZTN dials the ztn server with plain crypto/tls and the ztn
	// client's certificate (for the dial latency comparison).
	rawToZTN *tls.Config
}

func newEnv(b *testing.B) *env {
	b.Helper()
	e := &env{consul: testenv.Consul(b)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := e.apiClient(b)
	for _, dst := range []string{nativeServer, ztnServer} {
		src := map[string]string{nativeServer: nativeClient, ztnServer: ztnClient}[dst]
		entry := &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: dst,
			Sources: []*api.SourceIntention{{Name: src, Action: api.IntentionActionAllow}}}
		if _, _, err := client.ConfigEntries().Set(entry, nil); err != nil {
			b.Fatal(err)
		}
	}

	// ztn's identities, and raw TLS's, from one dev CA.
	ca, err := certs.NewDevCA(spiffeid.RequireTrustDomainFromString("ztn.test"))
	if err != nil {
		b.Fatal(err)
	}
	source := func(name string) *certs.Rotator {
		src, err := ca.Source(ctx, "dc1", name, time.Hour, certs.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = src.Close() })
		return src
	}
	roots := x509.NewCertPool()
	for _, r := range ca.Bundle().X509Authorities() {
		roots.AddCert(r)
	}

	// raw
	rawServer := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{tlsCert(b, source("raw-server"))},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	}
	e.rawClient = spiffeClientConfig(tlsCert(b, source("raw-client")), roots)
	rl, err := tls.Listen("tcp", "127.0.0.1:0", rawServer)
	if err != nil {
		b.Fatal(err)
	}
	serve(b, rl)
	e.rawAddr = rl.Addr().String()

	// Consul native
	nsrv := nativeService(b, nativeServer, e.apiClient(b))
	nl, err := tls.Listen("tcp", "127.0.0.1:0", nsrv.ServerTLSConfig())
	if err != nil {
		b.Fatal(err)
	}
	serve(b, nl)
	e.nativeAddr = nl.Addr().String()
	port := nl.Addr().(*net.TCPAddr).Port
	err = client.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: nativeServer + "-1", Name: nativeServer, Address: "127.0.0.1", Port: port,
		Connect: &api.AgentServiceConnect{Native: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	ncli := e.apiClient(b)
	e.nativeCli = nativeService(b, nativeClient, ncli)
	e.nativeRes = &connect.ConsulResolver{Client: ncli, Name: nativeServer}
	e.nativeStatic = &connect.StaticResolver{Addr: e.nativeAddr, CertURI: &agentconnect.SpiffeIDService{
		Host: e.consul.TrustDomain, Namespace: "default", Datacenter: e.consul.Datacenter, Service: nativeServer}}

	// ztn: server and client each with their own discovery, as separate
	// processes would be.
	sdisc, err := consul.NewCatalog(consul.Config{Client: e.apiClient(b)}, consul.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sdisc.Close() })
	az, err := consul.NewIntentions(consul.Config{Client: e.apiClient(b)}, ztnServer, consul.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = az.Close() })
	if err := az.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	zsrv := ztnService(b, ctx, ztnServer, ztnet.WithSource(source(ztnServer)), ztnet.WithAuthorizer(az), ztnet.WithRegistrar(sdisc))
	zl, err := zsrv.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serve(b, zl)
	e.ztnAddr = zl.Addr().String()
	cdisc, err := consul.NewCatalog(consul.Config{Client: e.apiClient(b)}, consul.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cdisc.Close() })
	csrc := source(ztnClient)
	e.ztn = ztnService(b, ctx, ztnClient, ztnet.WithSource(csrc), ztnet.WithResolver(cdisc))
	e.ztnFull = ztnService(b, ctx, ztnClient, ztnet.WithSource(csrc), ztnet.WithResolver(cdisc), ztnet.WithoutResumption())
	e.rawToZTN = spiffeClientConfig(tlsCert(b, csrc), roots)

	// Warm up every path (and check it works).
	for _, op := range []func() error{e.raw, e.native, e.nativeStaticConn, e.ztnConn, e.ztnFullConn} {
		for range 3 {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return e
}

// apiClient returns a Consul client with its own pooled transport.
func (e *env) apiClient(b *testing.B) *api.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 4 * concurrency, MaxIdleConnsPerHost: 4 * concurrency, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	c, err := api.NewClient(&api.Config{Address: e.consul.Addr, Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func nativeService(b testing.TB, name string, client *api.Client) *connect.Service {
	s, err := connect.NewServiceWithConfig(name, connect.Config{Client: client, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	select {
	case <-s.ReadyWait():
	case <-time.After(30 * time.Second):
		b.Fatalf("connect service %s: no certificate from the agent after 30s", name)
	}
	return s
}

func ztnService(b testing.TB, ctx context.Context, name string, opts ...ztnet.Option) *ztnet.Service {
	s, err := ztnet.New(ctx, name, append([]ztnet.Option{ztnet.WithLogger(quiet)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func tlsCert(b testing.TB, src *certs.Rotator) tls.Certificate {
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

// spiffeClientConfig verifies the server's chain the way any SPIFFE client
// does (its certificate has a URI SAN, no DNS name).
func spiffeClientConfig(cert tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs[i] = c
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
}

// serve answers each connection with an echo of its first byte, then
// closes it.
func serve(b testing.TB, l net.Listener) {
	var wg sync.WaitGroup
	b.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var buf [1]byte
				if _, err := io.ReadFull(c, buf[:]); err == nil {
					_, _ = c.Write(buf[:])
				}
			})
		}
	})
}

func exchangeOne(c net.Conn, err error) error {
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	var buf [1]byte
	_, err = io.ReadFull(c, buf[:])
	return err
}

func dialCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (e *env) raw() error {
	return exchangeOne(tls.Dial("tcp", e.rawAddr, e.rawClient))
}

func (e *env) native() error {
	ctx, cancel := dialCtx()
	defer cancel()
	return exchangeOne(e.nativeCli.Dial(ctx, e.nativeRes))
}

func (e *env) nativeStaticConn() error {
	ctx, cancel := dialCtx()
	defer cancel()
	return exchangeOne(e.nativeCli.Dial(ctx, e.nativeStatic))
}

func (e *env) ztnConn() error {
	ctx, cancel := dialCtx()
	defer cancel()
	c, err := e.ztn.Dial(ctx, ztnServer)
	if err != nil {
		return err
	}
	return exchangeOne(c, nil)
}

func (e *env) ztnFullConn() error {
	ctx, cancel := dialCtx()
	defer cancel()
	c, err := e.ztnFull.Dial(ctx, ztnServer)
	if err != nil {
		return err
	}
	return exchangeOne(c, nil)
}

// The paired benchmarks alternate short time slices of each contender many
// times over, so a change in background load (the machine is shared) hits
// all of them alike and the ratios stay meaningful.
const slice = 150 * time.Millisecond

// BenchmarkConsulNativeNewConn reports new connections per second at
// concurrency 16, full path on every side (see the top of this file), and
// the ratios. Target: ztn/native >= 2.
func BenchmarkConsulNativeNewConn(b *testing.B) {
	e := newEnv(b)
	var r []float64
	for b.Loop() {
		r, _ = benchpair.Rates(b, 10, concurrency, []func() error{e.raw, e.native, e.nativeStaticConn, e.ztnConn, e.ztnFullConn})
	}
	raw, native, static, ztn, full := r[0], r[1], r[2], r[3], r[4]
	b.ReportMetric(raw, "raw-conns/s")
	b.ReportMetric(native, "native-conns/s")
	b.ReportMetric(static, "native-static-conns/s")
	b.ReportMetric(ztn, "ztn-conns/s")
	b.ReportMetric(full, "ztn-full-conns/s")
	b.ReportMetric(ztn/native, "ztn/native")
	b.ReportMetric(full/native, "ztn-full/native")
	b.ReportMetric(native/raw, "native/raw")
	b.ReportMetric(static/raw, "native-static/raw")
	b.ReportMetric(ztn/raw, "ztn/raw")
	b.ReportMetric(full/raw, "ztn-full/raw")
}

// BenchmarkWarmDialLatency reports the median (and 90th percentile) time a
// Dial takes once everything is warm, one dial at a time, the contenders
// taking turns: ztn's Dial (discovery from the cache, handshake, and the
// server's authorization verdict) as configured by default and with full
// handshakes only, a raw crypto/tls dial (full handshake, the same client
// certificate) to the same ztn server address, and Consul native's Dial
// with its ConsulResolver. Each connection is closed at once.
func BenchmarkWarmDialLatency(b *testing.B) {
	e := newEnv(b)
	type contender struct {
		name string
		dial func() (net.Conn, error)
		lat  []time.Duration
	}
	cs := []*contender{
		{name: "raw", dial: func() (net.Conn, error) { return tls.Dial("tcp", e.ztnAddr, e.rawToZTN) }},
		{name: "ztn", dial: func() (net.Conn, error) { return e.ztn.Dial(context.Background(), ztnServer) }},
		{name: "ztn-full", dial: func() (net.Conn, error) { return e.ztnFull.Dial(context.Background(), ztnServer) }},
		{name: "native", dial: func() (net.Conn, error) { return e.nativeCli.Dial(context.Background(), e.nativeRes) }},
	}
	for b.Loop() {
		for _, c := range cs {
			t0 := time.Now()
			conn, err := c.dial()
			d := time.Since(t0)
			if err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			conn.Close()
			c.lat = append(c.lat, d)
		}
	}
	pct := func(l []time.Duration, p float64) float64 {
		l = slices.Clone(l)
		slices.Sort(l)
		return float64(l[int(p*float64(len(l)-1))].Nanoseconds()) / 1e3
	}
	for _, c := range cs {
		b.ReportMetric(pct(c.lat, 0.5), c.name+"-p50-µs")
		b.ReportMetric(pct(c.lat, 0.9), c.name+"-p90-µs")
	}
	raw := pct(cs[0].lat, 0.5)
	b.ReportMetric(pct(cs[1].lat, 0.5)/raw, "ztn/raw-p50")
	b.ReportMetric(pct(cs[2].lat, 0.5)/raw, "ztn-full/raw-p50")
	b.ReportMetric(pct(cs[3].lat, 0.5)/raw, "native/raw-p50")
	b.ReportMetric(0, "ns/op") // meaningless here: several dials per iteration
}
