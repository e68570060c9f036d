package ztnet

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/ztnlabs/ztn"
	"github.com/ztnlabs/ztn/authz"
	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/discovery"
	"github.com/ztnlabs/ztn/internal/test/poll"
)

// Two meshes with independent CAs whose services federate each other: the
// local one (ztn.test) and a partner (partner.test).
const (
	localTD   = "ztn.test"
	partnerTD = "partner.test"
)

var (
	localTrustDomain   = spiffeid.RequireTrustDomainFromString(localTD)
	partnerTrustDomain = spiffeid.RequireTrustDomainFromString(partnerTD)
)

// fedSource is a certs.Source that also holds other trust domains'
// bundles, as a SPIFFE federation gives a workload: its own SVID and bundle
// from its Rotator, the others from their CAs (followed live).
type fedSource struct {
	*certs.Rotator
	others []*certs.DevCA
}

func (f fedSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	for _, ca := range f.others {
		if ca.TrustDomain() == td {
			return ca.Bundle(), nil
		}
	}
	return f.Rotator.GetX509BundleForTrustDomain(td)
}

type federation struct {
	local, partner *testMesh
}

func newFederation(t testing.TB) *federation {
	t.Helper()
	return &federation{
		local:   newTestMesh(t),
		partner: newTestMesh(t, WithDevTrustDomain(partnerTD)),
	}
}

// fedService returns a service of mesh m that trusts the CAs of others and
// federates their trust domains.
func fedService(t testing.TB, m *testMesh, name string, others []*testMesh, opts ...Option) *Service {
	t.Helper()
	src, err := m.CA().Source(context.Background(), "dc1", name, time.Hour, certs.WithLogger(slog.New(m.logs)))
	if err != nil {
		t.Fatal(err)
	}
	fs := fedSource{Rotator: src}
	var tds []spiffeid.TrustDomain
	for _, o := range others {
		fs.others = append(fs.others, o.CA())
		tds = append(tds, o.CA().TrustDomain())
	}
	base := []Option{withOwnedSource(fs)}
	for _, td := range tds {
		base = append(base, WithFederatedPeer(td.Name(), td))
	}
	return m.service(t, name, append(base, opts...)...)
}

func (f *federation) localService(t testing.TB, name string, opts ...Option) *Service {
	return fedService(t, f.local, name, []*testMesh{f.partner}, opts...)
}

func (f *federation) partnerService(t testing.TB, name string, opts ...Option) *Service {
	return fedService(t, f.partner, name, []*testMesh{f.local}, opts...)
}

// dialLocal dials service at addr, expecting the server in the local trust
// domain (client is the partner's).
func dialLocal(t testing.TB, client *Service, service, addr string) (*Conn, error) {
	t.Helper()
	return client.dialAddress(poll.Context(t, 5*time.Second), service, addr, WithServerTrustDomain(localTrustDomain))
}

// noConn closes c if a dial that should have failed returned one (so that
// the test's servers can stop), and returns err.
func noConn(c *Conn, err error) error {
	if c != nil {
		c.Close()
	}
	return err
}

func wantDenied(t testing.TB, err error, reason string) {
	t.Helper()
	var denied *DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("err = %v, want a DeniedError", err)
	}
	if denied.Reason != reason {
		t.Fatalf("denied with reason %q, want %q", denied.Reason, reason)
	}
}

// (a) The partner's "web" is not the local "web": neither an intention for
// the local web nor a "*" source admits it, at connection level, for ztn
// clients and for plain TLS clients alike.
func TestFederatedPeerDoesNotInheritLocalIntentions(t *testing.T) {
	f := newFederation(t)
	api := f.localService(t, "api")
	l := listen(t, api)
	serve(t, l, echo)
	localWeb := f.localService(t, "web")
	partnerWeb := f.partnerService(t, "web")
	// The partner's web as a plain TLS client (no ztn ALPN): authorized
	// inside the handshake.
	plainCert, err := partnerWeb.certificate()
	if err != nil {
		t.Fatal(err)
	}

	const noPeerIntention = `no intention for peer "partner.test" matches (default deny)`
	for _, policy := range []string{
		`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]}`,
		`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"*","Action":"allow"}]}`,
		`{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"*","Namespace":"*","Action":"allow"}]}`,
		`{"Kind":"service-intentions","Name":"*","Sources":[{"Name":"*","Action":"allow"}]}`,
		`[{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"}]},
		  {"Kind":"service-intentions","Name":"*","Namespace":"*","Sources":[{"Name":"*","Namespace":"*","Action":"allow"}]}]`,
	} {
		t.Run(policy, func(t *testing.T) {
			f.local.intentions(t, policy)
			c, err := localWeb.Dial(poll.Context(t, 5*time.Second), "api")
			if err != nil {
				t.Fatalf("local web: %v", err)
			}
			roundTrip(t, c, "local")
			c.Close()

			before := len(f.local.logs.find("ztn connection refused"))
			err = noConn(dialLocal(t, partnerWeb, "api", l.Addr().String()))
			wantDenied(t, err, noPeerIntention)
			// The server logged the refusal, naming the peer.
			f.local.logs.waitFor(t, "ztn connection refused", func(r logRecord) bool {
				return len(f.local.logs.find("ztn connection refused")) > before &&
					strings.Contains(r.attrs["reason"], "spiffe://partner.test/ns/default/dc/dc1/svc/web") &&
					strings.Contains(r.attrs["reason"], noPeerIntention)
			})

			tc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{
				InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*plainCert},
			})
			if err == nil {
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = tc.Write([]byte("x"))
				_, err = tc.Read(make([]byte, 1))
				tc.Close()
			}
			if err == nil {
				t.Fatal("the partner's web as a plain TLS client got data back")
			}
		})
	}
}

// (b) An intention whose source names the partner's peer admits the
// partner's service, and only it; when it goes, the open connection is
// closed.
func TestFederatedPeerAllowedByPeerIntention(t *testing.T) {
	f := newFederation(t)
	api := f.localService(t, "api")
	l := listen(t, api)
	serve(t, l, echo)
	localWeb := f.localService(t, "web")
	partnerWeb := f.partnerService(t, "web")
	partnerDB := f.partnerService(t, "db")

	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[
		{"Name":"web","Peer":"partner.test","Action":"allow"},
		{"Name":"*","Action":"deny"}]}`)
	c, err := dialLocal(t, partnerWeb, "api", l.Addr().String())
	if err != nil {
		t.Fatalf("partner web: %v", err)
	}
	roundTrip(t, c, "from the partner")

	err = noConn(dialLocal(t, partnerDB, "api", l.Addr().String()))
	wantDenied(t, err, `no intention for peer "partner.test" matches (default deny)`)
	err = noConn(localWeb.Dial(poll.Context(t, 5*time.Second), "api"))
	wantDenied(t, err, "intention * → api denies (precedence 8)")

	// The peer's intention goes, the local web's stays: the open
	// connection from the partner's web is closed.
	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Action":"allow"},{"Name":"*","Action":"allow"}]}`)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && isTimeout(err) {
		t.Fatalf("connection still open after its intention went: %v", err)
	}
	c.Close()
}

// The access record and decision of an admitted partner connection name
// the peer's intention.
func TestFederatedPeerAccessRecord(t *testing.T) {
	f := newFederation(t)
	api := f.localService(t, "api")
	l := listen(t, api)
	serve(t, l, echo)
	partnerWeb := f.partnerService(t, "web")
	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"partner.test","Action":"allow"}]}`)
	c, err := dialLocal(t, partnerWeb, "api", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "x")
	c.Close()
	rec := f.local.logs.waitFor(t, "ztn connection", func(r logRecord) bool { return r.attrs["side"] == "server" })
	if rec.attrs["source"] != "spiffe://partner.test/ns/default/dc/dc1/svc/web" ||
		rec.attrs["reason"] != "intention partner.test:web → api allows (precedence 9)" {
		t.Fatalf("access record %v", rec.attrs)
	}
}

// (c) Requests follow the same rule: AuthorizeRequest for the partner's
// web never uses the local web's L7 intention.
func TestFederatedPeerL7(t *testing.T) {
	f := newFederation(t)
	api := f.localService(t, "api")
	l, err := api.Listen(context.Background(), "tcp", "127.0.0.1:0", withL7Enforced())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	peers := make(chan ztn.ServiceID, 4)
	serve(t, l, func(c net.Conn) { peers <- c.(*Conn).peer; echo(c) })
	localWeb := f.localService(t, "web")
	partnerWeb := f.partnerService(t, "web")

	get := func(path string) *authz.HTTPRequest { return &authz.HTTPRequest{Method: "GET", Path: path} }
	post := func(path string) *authz.HTTPRequest { return &authz.HTTPRequest{Method: "POST", Path: path} }

	// Only the local web has an (L7) intention: the partner's web is not
	// even admitted at connection level, and its requests are denied.
	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[
		{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/"}}]}]}`)
	err = noConn(dialLocal(t, partnerWeb, "api", l.Addr().String()))
	wantDenied(t, err, `no intention for peer "partner.test" matches (default deny)`)
	c, err := localWeb.Dial(poll.Context(t, 5*time.Second), "api")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	localPeer := recvPeer(t, peers)
	if d := api.authorizeRequest(context.Background(), localPeer, post("/admin")); !d.Allowed {
		t.Fatalf("local web POST /admin: %v", d)
	}
	partnerPeer := partnerWeb.ID()
	if d := api.authorizeRequest(context.Background(), partnerPeer, post("/admin")); d.Allowed ||
		d.Reason() != `no intention for peer "partner.test" matches (default deny)` {
		t.Fatalf("partner web POST /admin under the local web's intention: %v", d)
	}

	// With its own L7 intention the partner's web is admitted and judged
	// by it, request by request.
	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[
		{"Name":"web","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/"}}]},
		{"Name":"web","Peer":"partner.test","Permissions":[{"Action":"allow","HTTP":{"PathPrefix":"/public/","Methods":["GET"]}}]}]}`)
	c, err = dialLocal(t, partnerWeb, "api", l.Addr().String())
	if err != nil {
		t.Fatalf("partner web with a peer L7 intention: %v", err)
	}
	defer c.Close()
	roundTrip(t, c, "l7")
	partnerPeer = recvPeer(t, peers)
	if partnerPeer.TrustDomain != partnerTrustDomain || partnerPeer.Name != "web" {
		t.Fatalf("server sees peer %v", partnerPeer)
	}
	for _, tc := range []struct {
		req     *authz.HTTPRequest
		allowed bool
		reason  string
	}{
		{get("/public/x"), true, "L7 intention partner.test:web → api: permission 1 (GET prefix /public/) allows"},
		{post("/admin"), false, "L7 intention partner.test:web → api: no permission matched (default deny)"},
		{get("/admin"), false, "L7 intention partner.test:web → api: no permission matched (default deny)"},
	} {
		if d := api.authorizeRequest(context.Background(), partnerPeer, tc.req); d.Allowed != tc.allowed || d.Reason() != tc.reason {
			t.Errorf("partner web %s %s: %v; want allowed=%v %q", tc.req.Method, tc.req.Path, d, tc.allowed, tc.reason)
		}
	}
	if d := api.authorizeRequest(context.Background(), localPeer, get("/admin")); !d.Allowed {
		t.Errorf("local web GET /admin: %v", d)
	}
}

func recvPeer(t testing.TB, ch <-chan ztn.ServiceID) ztn.ServiceID {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("the server accepted no connection")
		return ztn.ServiceID{}
	}
}

// (d) Dial reaches a federated server only when told its trust domain, and
// a server of the other trust domain never passes for the one asked for.
func TestDialFederatedServer(t *testing.T) {
	f := newFederation(t)
	partnerAPI := f.partnerService(t, "api")
	pl := listen(t, partnerAPI)
	serve(t, pl, echo)
	localAPI := f.localService(t, "api")
	ll := listen(t, localAPI)
	serve(t, ll, echo)
	// The partner lets the local web in; the local mesh lets it in too.
	f.partner.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"ztn.test","Action":"allow"}]}`)
	f.local.allow(t, "web->api")
	web := f.localService(t, "web")
	ctx := poll.Context(t, 10*time.Second)

	// Default: the server must be in the local trust domain.
	err := noConn(web.dialAddress(ctx, "api", pl.Addr().String()))
	var rejected *RejectedError
	if !errors.As(err, &rejected) || !strings.Contains(rejected.Reason, `trust domain "partner.test"`) ||
		!strings.Contains(rejected.Reason, `"ztn.test"`) {
		t.Fatalf("dial to the partner's api without WithServerTrustDomain: %v; want a RejectedError naming both trust domains", err)
	}

	// Told, it works, through DialAddress and through Dial.
	c, err := web.dialAddress(ctx, "api", pl.Addr().String(), WithServerTrustDomain(partnerTrustDomain))
	if err != nil {
		t.Fatalf("dial to the partner's api: %v", err)
	}
	if got := c.peerID.String(); got != "spiffe://partner.test/ns/default/dc/dc1/svc/api" {
		t.Fatalf("peer %s", got)
	}
	roundTrip(t, c, "to the partner")
	c.Close()
	webP := f.localService(t, "web", WithResolver(f.partner.Catalog()))
	c, err = webP.Dial(ctx, "api", WithServerTrustDomain(partnerTrustDomain))
	if err != nil {
		t.Fatalf("Dial to the partner's api: %v", err)
	}
	roundTrip(t, c, "through the resolver")
	c.Close()
	// The partner's server judged the local web as a caller of its peer
	// "ztn.test".
	rec := f.partner.logs.waitFor(t, "ztn connection", func(r logRecord) bool { return r.attrs["side"] == "server" })
	if rec.attrs["reason"] != "intention ztn.test:web → api allows (precedence 9)" {
		t.Fatalf("partner's access record %v", rec.attrs)
	}

	// Expecting the partner's trust domain, the local api is rejected:
	// neither side can stand in for the other.
	err = noConn(web.dialAddress(ctx, "api", ll.Addr().String(), WithServerTrustDomain(partnerTrustDomain)))
	if !errors.As(err, &rejected) || !strings.Contains(rejected.Reason, `trust domain "ztn.test"`) {
		t.Fatalf("dial expecting the partner, reaching the local api: %v", err)
	}
	// And the local trust domain named explicitly is the default.
	c, err = web.dialAddress(ctx, "api", ll.Addr().String(), WithServerTrustDomain(localTrustDomain))
	if err != nil {
		t.Fatalf("dial to the local api naming the local trust domain: %v", err)
	}
	c.Close()

	// A trust domain that is not federated: Dial fails at once, saying so.
	other := spiffeid.RequireTrustDomainFromString("other.test")
	for _, dial := range []func() error{
		func() error { return noConn(web.Dial(ctx, "api", WithServerTrustDomain(other))) },
		func() error {
			return noConn(web.dialAddress(ctx, "api", pl.Addr().String(), WithServerTrustDomain(other)))
		},
	} {
		err := dial()
		if err == nil || !strings.Contains(err.Error(), `trust domain "other.test" is neither the local one ("ztn.test") nor federated`) {
			t.Fatalf("dial with an unfederated server trust domain: %v", err)
		}
	}
	// A service that does not federate the partner cannot be told to
	// dial it either.
	lone := f.local.service(t, "lone")
	if err := noConn(lone.dialAddress(ctx, "api", pl.Addr().String(), WithServerTrustDomain(partnerTrustDomain))); err == nil ||
		!strings.Contains(err.Error(), `trust domain "partner.test" is neither the local one`) {
		t.Fatalf("dial to a trust domain the client does not federate: %v", err)
	}
}

// A federated CA cannot mint a certificate for a local service name: even
// one that carries the local trust domain in its SPIFFE ID does not chain
// to the local bundle, whatever WithServerTrustDomain says.
func TestFederatedCACannotImpersonateLocalService(t *testing.T) {
	f := newFederation(t)
	f.local.allow(t, "web->api")
	// A partner CA without name constraints, federated by the local web.
	rogue, err := certs.NewDevCA(partnerTrustDomain, certs.WithoutNameConstraints())
	if err != nil {
		t.Fatal(err)
	}
	src, err := f.local.CA().Source(context.Background(), "dc1", "web", time.Hour, certs.WithLogger(slog.New(f.local.logs)))
	if err != nil {
		t.Fatal(err)
	}
	web := f.local.service(t, "web", withOwnedSource(fedSource{Rotator: src, others: []*certs.DevCA{rogue}}),
		WithFederatedPeer(partnerTD, partnerTrustDomain))

	for _, id := range []string{
		"spiffe://ztn.test/ns/default/dc/dc1/svc/api",     // a local name
		"spiffe://partner.test/ns/default/dc/dc1/svc/api", // its own, under the local name "api"
	} {
		cert := signedBy(t, rogue, leafTemplate(id))
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
			MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert,
			NextProtos: []string{alpnVerdict},
		})
		if err != nil {
			t.Fatal(err)
		}
		serve(t, l, func(c net.Conn) { _ = c.(*tls.Conn).Handshake(); _, _ = c.Write([]byte{0}); echo(c) })
		for _, opts := range [][]DialOption{nil, {WithServerTrustDomain(localTrustDomain)}} {
			err := noConn(web.dialAddress(poll.Context(t, 5*time.Second), "api", l.Addr().String(), opts...))
			var rejected *RejectedError
			if !errors.As(err, &rejected) {
				t.Fatalf("%s posing as the local api: %v; want a RejectedError", id, err)
			}
		}
	}
}

// (e) A policy file with Peer sources, loaded into the mesh's policy, is
// enforced on real connections.
func TestFederatedPeerPolicyFile(t *testing.T) {
	f := newFederation(t)
	api := f.localService(t, "api")
	l := listen(t, api)
	serve(t, l, echo)
	partnerWeb := f.partnerService(t, "web")
	partnerCron := f.partnerService(t, "cron")
	localCron := f.localService(t, "cron")

	path := filepath.Join(t.TempDir(), "intentions.json")
	if err := os.WriteFile(path, []byte(`[
		{"Kind":"service-intentions","Name":"api","Sources":[
			{"Name":"web","Action":"allow"},
			{"name":"*","peer":"partner.test","action":"allow"},
			{"Name":"web","Peer":"partner.test","Action":"deny"}]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.local.Policy().LoadFile(path); err != nil {
		t.Fatal(err)
	}
	c, err := dialLocal(t, partnerCron, "api", l.Addr().String())
	if err != nil {
		t.Fatalf("partner cron (partner.test:*): %v", err)
	}
	c.Close()
	err = noConn(dialLocal(t, partnerWeb, "api", l.Addr().String()))
	wantDenied(t, err, "intention partner.test:web → api denies (precedence 9)")
	err = noConn(localCron.Dial(poll.Context(t, 5*time.Second), "api"))
	wantDenied(t, err, "no intention matches (default deny)")
}

// WithFederatedPeer names a federated trust domain's peer, for intentions
// written for a Consul peering; New refuses ambiguous names.
func TestWithFederatedPeer(t *testing.T) {
	f := newFederation(t)
	api := f.localService(t, "api", WithFederatedPeer("partner", partnerTrustDomain))
	l := listen(t, api)
	serve(t, l, echo)
	partnerWeb := f.partnerService(t, "web")

	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"partner.test","Action":"allow"}]}`)
	err := noConn(dialLocal(t, partnerWeb, "api", l.Addr().String()))
	wantDenied(t, err, `no intention for peer "partner" matches (default deny)`)
	f.local.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"partner","Action":"allow"}]}`)
	c, err := dialLocal(t, partnerWeb, "api", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	other := spiffeid.RequireTrustDomainFromString("other.test")
	for _, tc := range []struct {
		opts []Option
		err  string
	}{
		{[]Option{WithFederatedPeer("", partnerTrustDomain)}, `peer name of trust domain "partner.test" is empty`},
		{[]Option{WithFederatedPeer("part*", partnerTrustDomain)}, `peer name "part*" of trust domain "partner.test" contains the wildcard`},
		{[]Option{WithFederatedPeer("partner", partnerTrustDomain), WithFederatedPeer("partner", other)}, `trust domains "other.test" and "partner.test" have the same peer name "partner"`},
		{[]Option{WithFederatedPeer("other.test", other), WithFederatedPeer("other.test", partnerTrustDomain)}, `trust domains "other.test" and "partner.test" have the same peer name "other.test"`},
		{[]Option{WithFederatedPeer("x", localTrustDomain)}, `"ztn.test" is the local trust domain`},
	} {
		src, err := f.local.CA().Source(context.Background(), "dc1", "x", time.Hour, certs.WithLogger(slog.New(f.local.logs)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(context.Background(), "x", append([]Option{withOwnedSource(src), WithResolver(discovery.NewStatic(nil))}, tc.opts...)...)
		if err == nil {
			s.Close()
			t.Fatalf("New accepted %d options; want %q", len(tc.opts), tc.err)
		}
		_ = src.Close()
		if !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "ztnet: ") {
			t.Fatalf("New: %v; want %q", err, tc.err)
		}
	}
}

// WithRemoteService names the trust domain of a federated service once, for
// every Dial and DialAddress to it (the adapters' clients dial through
// DialAddress with no ztnet options); other services stay local.
func TestWithRemoteService(t *testing.T) {
	f := newFederation(t)
	partnerAPI := f.partnerService(t, "api")
	pl := listen(t, partnerAPI)
	serve(t, pl, echo)
	f.partner.intentions(t, `{"Kind":"service-intentions","Name":"api","Sources":[{"Name":"web","Peer":"ztn.test","Action":"allow"}]}`)
	ctx := poll.Context(t, 10*time.Second)

	web := f.localService(t, "web", WithRemoteService("api", partnerTrustDomain))
	c, err := web.dialAddress(ctx, "api", pl.Addr().String())
	if err != nil {
		t.Fatalf("DialAddress to the remote api: %v", err)
	}
	roundTrip(t, c, "remote")
	c.Close()
	// Another service name is still expected in the local trust domain.
	var rejected *RejectedError
	if err := noConn(web.dialAddress(ctx, "billing", pl.Addr().String())); !errors.As(err, &rejected) {
		t.Fatalf("DialAddress billing at the partner: %v, want a RejectedError", err)
	}
	// A trust domain that is not federated is refused by New.
	_, err = f.local.Service(ctx, "web2", WithRemoteService("api", spiffeid.RequireTrustDomainFromString("nowhere.test")))
	if err == nil || !strings.Contains(err.Error(), "not federated") {
		t.Fatalf("New with an unfederated remote service: %v", err)
	}
}
