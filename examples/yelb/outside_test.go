package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelbtest"
	"github.com/ztnlabs/ztn/internal/test/certstest"
	"github.com/ztnlabs/ztn/internal/test/poll"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// Peers nobody here wrote, against the programs of the mesh mode (each a
// process, on a real Consul, Vault, Postgres and Redis): curl doing the
// spec's calls through the gateway, in plain HTTP and in HTTPS with the
// Vault-issued certificate (TLS 1.3; TLS 1.2 refused); psql and redis-cli
// refused without a client certificate, with one of another CA, with
// another back-end service's or the app server's own of the back end's
// mesh PKI, and admitted with the app server's one of the databases' PKI
// (so the servers enforce it, not only our Go client; Redis logs each
// refusal's reason); openssl s_client refused by the app server's
// ztn port without a client certificate.
func TestMeshOutsidePeers(t *testing.T) {
	p := programs{
		curl: testenv.Program(t, "curl", "curl"), psql: testenv.Program(t, "psql", "postgresql-client"),
		redisCLI: testenv.Program(t, "redis-cli", "redis-tools"), openssl: testenv.Program(t, "openssl", "openssl"),
	}
	f := newMeshFixture(t, 0)
	app := f.startAppServer(t, "appserver-1")
	f.startFront(t)
	f.waitAnswers(t, "/api/hostname")
	httpsBase, httpsGW := f.startHTTPSGateway(t)
	dir := t.TempDir()
	frontCA := writeFile(t, dir, "front-ca.pem", f.rootPEM(t, f.front))
	dbCA := writeFile(t, dir, "db-ca.pem", f.rootPEM(t, f.db))

	t.Run("curl", func(t *testing.T) {
		gw := f.gateway
		p.curlExpect(t, 200, yelbtest.VotesJSON(0, 0, 0, 0), gw+"/api/getvotes")
		p.curlExpect(t, 200, "1", gw+"/api/ihop")
		p.curlExpect(t, 200, yelbtest.VotesJSON(0, 0, 1, 0), gw+"//api/getvotes")
		p.curlExpect(t, 200, "1", gw+"/api/pageviews")
		p.curlExpect(t, 200, `{"hostname":"appserver-1","pageviews":2}`, gw+"/api/getstats")
		p.curlExpect(t, 200, "appserver-1", gw+"/api/hostname")
		p.curlExpect(t, 404, "", gw+"/api/pizzahut")
		p.curlExpect(t, 403, "", "-X", "POST", gw+"/api/ihop")

		// HTTPS, TLS 1.3, the gateway's certificate checked against the
		// front end's CA.
		tls13 := []string{"--cacert", frontCA, "--tlsv1.3"}
		out := p.curlExpect(t, 200, "1", append(tls13, "-v", httpsBase+"/api/chipotle")...)
		if !strings.Contains(out, "SSL connection using TLSv1.3") {
			t.Errorf("curl over HTTPS did not say TLS 1.3:\n%s", out)
		}
		p.curlExpect(t, 200, yelbtest.VotesJSON(0, 0, 1, 1), append(tls13, httpsBase+"/api/getvotes")...)
		p.curlExpect(t, 200, "3", append(tls13, httpsBase+"/api/pageviews")...)
		p.curlExpect(t, 200, `{"hostname":"appserver-1","pageviews":4}`, append(tls13, httpsBase+"//api/getstats")...)

		// Refused: TLS 1.2 at most (the gateway logs the handshake's
		// failure), and a client that does not trust the front end's CA.
		code, out := p.curlRun(t, "--cacert", frontCA, "--tls-max", "1.2", httpsBase+"/api/ihop")
		if code == 0 {
			t.Errorf("curl --tls-max 1.2 succeeded:\n%s", out)
		} else {
			t.Logf("curl --tls-max 1.2: exit %d: %s", code, lastLine(out))
		}
		poll.Eventually(t, 10*time.Second, func() error {
			if !strings.Contains(httpsGW.Output(), "TLS handshake error") {
				return errors.New("the HTTPS gateway did not log the refused handshake")
			}
			return nil
		})
		if code, out := p.curlRun(t, httpsBase+"/api/ihop"); code != 60 {
			t.Errorf("curl without the front end's CA: exit %d; want 60 (certificate not trusted):\n%s", code, out)
		}
		p.curlExpect(t, 200, yelbtest.VotesJSON(0, 0, 1, 1), gw+"/api/getvotes") // none of the refused ones voted
	})

	t.Run("stores", func(t *testing.T) {
		ctx := poll.Context(t, time.Minute)
		// The app server's certificate for the databases, as its process
		// gets it from Vault.
		appCert, appKey := certstest.SVIDFiles(t, f.dbIdentity(ctx, t), dir, "appserver")
		// Its certificate of the back end's mesh PKI, and one of that PKI
		// for another service.
		meshCert, meshKey := certstest.SVIDFiles(t, f.backService(ctx, t, appName).src, dir, "appserver-mesh")
		otherCert, otherKey := certstest.SVIDFiles(t, f.backService(ctx, t, "intruder-b").src, dir, "intruder-b")
		// One of another CA, for the right user.
		outsider := testenv.NewTestCA(t, "outsider CA")
		certPEM, keyPEM, _ := outsider.Issue(t, appName, false)
		outCert, outKey := writeFile(t, dir, "outsider.crt", certPEM), writeFile(t, dir, "outsider.key", keyPEM)
		none := filepath.Join(dir, "none") // no such file: libpq sends no certificate

		// The rows as the gateway answers them, read with psql.
		var votes []struct {
			Name  string
			Value int
		}
		body := p.curlExpect(t, 200, "", f.gateway+"/api/getvotes")
		if err := json.Unmarshal([]byte(body), &votes); err != nil {
			t.Fatalf("getvotes %q: %v", body, err)
		}
		var want []string
		for _, v := range votes {
			want = append(want, fmt.Sprintf("%s=%d", v.Name, v.Value))
		}
		slices.Sort(want)
		rows := "SELECT rtrim(name) || '=' || count FROM restaurants ORDER BY name"
		for _, tc := range []struct {
			name, cert, key string
			refusal         string // "" if admitted
		}{
			{"the app server's Vault certificate", appCert, appKey, ""},
			{"no certificate", none, none, "certificate"},
			{"a certificate of another CA", outCert, outKey, "unknown ca"},
			{"another back-end service's certificate", otherCert, otherKey, "unknown ca"},
			{"the app server's mesh certificate", meshCert, meshKey, "unknown ca"},
		} {
			code, out := p.psqlRun(t, f.pg.Addr, dbCA, tc.cert, tc.key, rows)
			switch {
			case tc.refusal == "" && (code != 0 || out != strings.Join(want, "\n")+"\n"):
				t.Errorf("psql with %s: exit %d, %q; want the rows %q", tc.name, code, out, want)
			case tc.refusal != "" && (code == 0 || !strings.Contains(out, tc.refusal)):
				t.Errorf("psql with %s: exit %d, %q; want refused (%q)", tc.name, code, out, tc.refusal)
			case tc.refusal != "":
				t.Logf("psql with %s: refused: %s", tc.name, lastLine(out))
			}
		}

		// Redis: the page views the gateway counted, read with redis-cli;
		// each refusal's reason in Redis's log.
		n := p.curlExpect(t, 200, "", f.gateway+"/api/pageviews")
		const verify = "Error accepting a client connection: error:0A000086:SSL routines::certificate verify failed"
		for _, tc := range []struct {
			name, cert, key string
			admitted        bool
			logs            string
		}{
			{"the app server's Vault certificate", appCert, appKey, true, ""},
			{"no certificate", "", "", false, "Error accepting a client connection: error:0A0000C7:SSL routines::peer did not return a certificate"},
			{"a certificate of another CA", outCert, outKey, false, verify},
			{"another back-end service's certificate", otherCert, otherKey, false, verify},
			{"the app server's mesh certificate", meshCert, meshKey, false, verify},
		} {
			logged := len(readLog(t, f.rd.LogPath))
			code, out := p.redisCLIRun(t, f.rd.Addr, dbCA, tc.cert, tc.key, "GET", "pageviews")
			if tc.logs != "" {
				poll.Eventually(t, 10*time.Second, func() error {
					if !strings.Contains(readLog(t, f.rd.LogPath)[logged:], tc.logs) {
						return fmt.Errorf("redis-cli with %s: no %q in Redis's log", tc.name, tc.logs)
					}
					return nil
				})
			}
			switch {
			case tc.admitted && (code != 0 || out != n+"\n"):
				t.Errorf("redis-cli with %s: exit %d, %q; want %s", tc.name, code, out, n)
			case !tc.admitted && strings.TrimSpace(out) == n:
				t.Errorf("redis-cli with %s: read the page views (exit %d, %q)", tc.name, code, out)
			case !tc.admitted && !strings.Contains(strings.ToLower(out), "error"):
				t.Errorf("redis-cli with %s: exit %d, %q; want an error", tc.name, code, out)
			case !tc.admitted:
				t.Logf("redis-cli with %s: refused: exit %d: %s", tc.name, code, lastLine(out))
			}
		}
	})

	t.Run("openssl", func(t *testing.T) {
		// The app server's ztn port asks every client for a certificate of
		// a trust domain it knows; openssl has none, or the ui's SPIFFE ID
		// signed by another CA, or offers TLS 1.2. Each refusal is in the
		// app server's log with its reason.
		forged, err := certs.NewDevCA(f.front.td)
		if err != nil {
			t.Fatal(err)
		}
		id, err := forged.Issuer("dc1", uiName, time.Hour).Issue(poll.Context(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := id.SVID.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		forgedCert, forgedKey := writeFile(t, dir, "forged-ui.crt", certPEM), writeFile(t, dir, "forged-ui.key", keyPEM)
		for _, tc := range []struct {
			name        string
			args        []string
			alert, logs string
		}{
			{"no client certificate", []string{"-tls1_3"}, "alert bad certificate", "peer presented no certificate"},
			{"the ui's SPIFFE ID from another CA", []string{"-tls1_3", "-cert", forgedCert, "-key", forgedKey},
				"alert bad certificate", "unknown authority"},
			{"TLS 1.2", []string{"-tls1_2"}, "alert protocol version", "client offered only unsupported versions"},
		} {
			out := p.sClient(t, app.Addr, tc.args...)
			if strings.Contains(out, "HTTP/1.1 ") || !strings.Contains(out, tc.alert) {
				t.Errorf("openssl s_client with %s: want the handshake refused (%q):\n%s", tc.name, tc.alert, out)
			} else {
				t.Logf("openssl s_client with %s: refused: %s", tc.name, grepLine(out, tc.alert))
			}
			poll.Eventually(t, 10*time.Second, func() error {
				if !strings.Contains(grepLine(app.Output(), tc.logs), "ztn connection refused") {
					return fmt.Errorf("no refusal with %q in the app server's log", tc.logs)
				}
				return nil
			})
		}
	})
}

// programs are the outside peers' paths.
type programs struct{ curl, psql, redisCLI, openssl string }

// run runs name with args, in an environment of PATH only (no user
// settings: ~/.postgresql, REDISCLI_*, proxies), with stdin, and returns
// its exit code and its output (stdout and stderr).
func run(t *testing.T, stdin string, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("%s %q: %v\n%s", name, args, err, out.String())
	return 0, ""
}

// curl runs curl -sS (silent, but errors) and returns its exit code and
// output: the body, then a line with the status.
func (p programs) curlRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return run(t, "", p.curl, append([]string{"-sS", "--path-as-is", "--max-time", "10", "-w", "\n%{http_code}"}, args...)...)
}

// curlExpect runs curl and checks the status and, unless want is "", the
// body; it returns the body (with -v, the whole output).
func (p programs) curlExpect(t *testing.T, code int, want string, args ...string) string {
	t.Helper()
	exit, out := p.curlRun(t, args...)
	i := strings.LastIndexByte(out, '\n')
	body, status := out[:max(i, 0)], out[i+1:]
	verbose := false
	for _, a := range args {
		verbose = verbose || a == "-v"
	}
	got := body
	if verbose {
		got = body[strings.LastIndexByte(body, '\n')+1:] // the body is the last line
	}
	if exit != 0 || status != fmt.Sprint(code) || (want != "" && got != want) {
		t.Errorf("curl %q: exit %d, %s %q; want %d %q", args, exit, status, got, code, want)
	}
	if verbose {
		return out
	}
	return body
}

// psql runs sql as the app server's database user over TLS (the server's
// certificate checked against ca), presenting cert and key.
func (p programs) psqlRun(t *testing.T, addr, ca, cert, key, sql string) (int, string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	conn := fmt.Sprintf("host=%s port=%s user=%s dbname=yelbdatabase connect_timeout=10 sslmode=verify-full sslrootcert=%s sslcert=%s sslkey=%s",
		host, port, appName, ca, cert, key)
	return run(t, "", p.psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, conn)
}

// redisCLI runs a command over TLS (the server's certificate checked
// against ca), presenting cert and key unless they are "".
func (p programs) redisCLIRun(t *testing.T, addr, ca, cert, key string, command ...string) (int, string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-h", host, "-p", port, "--tls", "--cacert", ca}
	if cert != "" {
		args = append(args, "--cert", cert, "--key", key)
	}
	return run(t, "", p.redisCLI, append(args, command...)...)
}

// sClient opens a TLS connection to addr with openssl s_client, sends an
// HTTP request and returns everything it printed.
func (p programs) sClient(t *testing.T, addr string, args ...string) string {
	t.Helper()
	_, out := run(t, "GET /api/hostname HTTP/1.1\r\nHost: yelb-appserver\r\n\r\n", p.openssl,
		append([]string{"s_client", "-connect", addr, "-ign_eof", "-alpn", "http/1.1"}, args...)...)
	return out
}

// backService is a service of the back end's trust domain with its
// Vault-issued identity, as the app server's process builds it.
func (f *meshFixture) backService(ctx context.Context, t *testing.T, name string) *meshService {
	t.Helper()
	env := meshEnv{consulAddr: f.consul.Addr, vaultAddr: f.vault.HTTPAddr(), vaultToken: f.token(t, f.back, name),
		mount: f.back.mount, role: "{service}", datacenter: "dc1", td: f.back.td}
	ms, err := newMeshService(ctx, env, name, name, &peerSpec{Name: f.front.peer, TD: f.front.td, Mount: f.front.mount},
		meshConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.close() })
	return ms
}

// writeFile writes b to dir/name, readable by its owner only.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readLog is the log file at path.
func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
