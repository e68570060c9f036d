package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/examples/chat/internal/store"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/meshtest"
	"github.com/ztnlabs/ztn/internal/test/testenv"
	"github.com/ztnlabs/ztn/ztnet/ztntest"
)

// TestGRPCurl: grpcurl, a gRPC client nobody here wrote, calls chat-store
// (serveStore on the dev mesh, under config/'s intentions) with
// certificates written to files as any outside tool needs them: as
// chat-web it may call what chat-web's intention allows; as chat-bot a
// method only chat-web may use is PermissionDenied naming the intention;
// with a certificate of another CA, or none, the handshake fails.
func TestGRPCurl(t *testing.T) {
	grpcurl := testenv.Tool(t, "grpcurl")
	m, mem := ztntest.NewMesh(t), store.NewMemory()
	addr := startStore(t, m, mem)
	other, err := certs.NewDevCA(m.Dev().CA().TrustDomain())
	if err != nil {
		t.Fatal(err)
	}
	asWeb, asBot, asStranger := svidFiles(t, m.Dev().CA(), svcWeb), svidFiles(t, m.Dev().CA(), svcBot), svidFiles(t, other, svcWeb)

	call := func(cert []string, method, data string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		// -insecure: the server's certificate names a SPIFFE ID, no host
		// name for grpcurl to check; the server checks the client's.
		args := append([]string{"-insecure", "-max-time", "10", "-import-path", "internal/storegrpc/storepb", "-proto", "store.proto"}, cert...)
		out, err := exec.CommandContext(ctx, grpcurl, append(args, "-d", data, addr, "chat.store.v1.Store/"+method)...).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("grpcurl %s hung: %s", method, out)
		}
		return string(out), err
	}

	out, err := call(asWeb, "CreateUser", `{"email":"ann@example.com","password_hash":"$2a$04$x"}`)
	if err != nil || !strings.Contains(out, `"email": "ann@example.com"`) {
		t.Fatalf("CreateUser as chat-web: %v\n%s", err, out)
	}
	if out, err = call(asWeb, "FindUsers", `{"limit":10}`); err != nil || !strings.Contains(out, `"total": 1`) || strings.Contains(out, "$2a$") {
		t.Fatalf("FindUsers as chat-web: %v\n%s", err, out)
	}
	// chat-bot's intention lists its RPCs; FindUsers is not one of them.
	out, err = call(asBot, "FindUsers", `{"limit":10}`)
	if err == nil || !strings.Contains(out, "Code: PermissionDenied") || !strings.Contains(out, "spiffe://"+m.Dev().CA().TrustDomain().Name()+"/ns/default/dc/dc1/svc/chat-bot") ||
		!strings.Contains(out, "intention chat-bot → chat-store") || strings.Contains(out, "ann@example.com") {
		t.Fatalf("FindUsers as chat-bot: %v\n%s\nwant PermissionDenied naming the intention", err, out)
	}
	t.Logf("grpcurl as chat-bot: %s", strings.TrimSpace(out))
	// chat-web's neither lists CountMessages.
	if out, err = call(asWeb, "CountMessages", `{}`); err == nil || !strings.Contains(out, "Code: PermissionDenied") {
		t.Fatalf("CountMessages as chat-web: %v\n%s\nwant PermissionDenied", err, out)
	}
	// No handshake with a certificate from another CA, or without one.
	for name, cert := range map[string][]string{"another CA's certificate": asStranger, "no certificate": nil} {
		out, err := call(cert, "GetPosition", `{}`)
		if err == nil || strings.Contains(out, "Code: PermissionDenied") || strings.Contains(out, "messageId") ||
			!strings.Contains(out, "Failed to dial target host") || !strings.Contains(out, "tls: bad certificate") {
			t.Fatalf("%s: %v\n%s\nwant a failed handshake", name, err, out)
		}
		t.Logf("grpcurl with %s: %s", name, strings.TrimSpace(out))
	}
	if p, err := mem.FindUsers(t.Context(), store.Query{Limit: 10}); err != nil || p.Total != 1 {
		t.Fatalf("users stored: %v, %v", p, err)
	}
}

// svidFiles writes an SVID of name from ca to files, as an outside tool
// takes it, and returns grpcurl's flags naming them.
func svidFiles(t *testing.T, ca *certs.DevCA, name string) []string {
	t.Helper()
	certFile, keyFile := certstest.SVIDFiles(t, meshtest.DevSource(t, ca, name), t.TempDir(), name)
	return []string{"-cert", certFile, "-key", keyFile}
}
