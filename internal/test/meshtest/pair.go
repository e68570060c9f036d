package meshtest

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/ztnet"
)

// Pair is two ztnet services on identities from certs sources (a backend's,
// in its tests), a client and a server (named after their sources'
// identities); the client may call the server, which echoes.
type Pair struct {
	client, server *ztnet.Service
	serverName     string
}

// NewPair starts the two services on their sources, closed when the test
// ends. Every connection is a full handshake (no resumption), so each one
// exercises the current certificates.
func NewPair(t testing.TB, logger *slog.Logger, clientName string, clientSrc certs.Source, serverName string, serverSrc certs.Source) *Pair {
	t.Helper()
	catalog := discovery.NewStatic(nil)
	policy := authz.NewPolicy()
	entries, err := authz.ParseConfigEntries([]byte(`[{"Kind":"service-intentions","Name":"` + serverName +
		`","Sources":[{"Name":"` + clientName + `","Action":"allow"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := policy.Set(entries...); err != nil {
		t.Fatal(err)
	}
	newSvc := func(name string, src certs.Source) *ztnet.Service {
		svc, err := ztnet.New(context.Background(), name,
			ztnet.WithSource(src), ztnet.WithAuthorizer(policy), ztnet.WithResolver(catalog),
			ztnet.WithLogger(logger), ztnet.WithoutResumption())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		return svc
	}
	p := &Pair{server: newSvc(serverName, serverSrc), serverName: serverName}
	if clientName == serverName {
		p.client = p.server
	} else {
		p.client = newSvc(clientName, clientSrc)
	}
	l, err := p.server.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return p
}

// Call makes one new connection from the client to the server and echoes a
// byte; it returns the peer's certificate chain as the client saw it.
func (p *Pair) Call(ctx context.Context) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := p.client.Dial(ctx, p.serverName)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{42}); err != nil {
		return nil, err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates, nil
}

// StartLoad makes new connections through p on n goroutines until
// stopped.
func (p *Pair) StartLoad(n int) *Load {
	return StartLoad(n, func(ctx context.Context) error { _, err := p.Call(ctx); return err })
}
