package testenv

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pgQuery connects to a Postgres server the way a client library does (TLS
// when tlsCfg is set, after an SSLRequest), logs in as user to db and runs
// one query, returning the first column of the first row. testenv uses the
// standard library only, so this speaks the protocol itself.
func pgQuery(addr string, tlsCfg *tls.Config, user, db, query string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var conn net.Conn = c
	if tlsCfg != nil {
		if _, err := c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil { // SSLRequest
			return "", err
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return "", err
		}
		if b[0] != 'S' {
			return "", fmt.Errorf("server refused TLS (%q)", b[0])
		}
		tc := tls.Client(c, tlsCfg)
		if err := tc.Handshake(); err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	var startup bytes.Buffer
	startup.Write([]byte{0, 0, 0, 0, 0, 3, 0, 0}) // length (filled below), protocol 3.0
	for _, s := range []string{"user", user, "database", db, ""} {
		startup.WriteString(s)
		startup.WriteByte(0)
	}
	msg := startup.Bytes()
	binary.BigEndian.PutUint32(msg, uint32(len(msg)))
	if _, err := conn.Write(msg); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	queried := false
	var result string
	for {
		typ, body, err := pgRead(r)
		if err != nil {
			return "", err
		}
		switch typ {
		case 'E':
			return "", pgError(body)
		case 'R':
			if code := binary.BigEndian.Uint32(body); code != 0 {
				return "", fmt.Errorf("server asks for authentication method %d", code)
			}
		case 'D':
			if n := binary.BigEndian.Uint16(body); n > 0 {
				l := int32(binary.BigEndian.Uint32(body[2:]))
				if l >= 0 {
					result = string(body[6 : 6+l])
				}
			}
		case 'Z':
			if queried {
				return result, nil
			}
			queried = true
			q := append([]byte{'Q', 0, 0, 0, 0}, query...)
			q = append(q, 0)
			binary.BigEndian.PutUint32(q[1:], uint32(len(q)-1))
			if _, err := conn.Write(q); err != nil {
				return "", err
			}
		}
	}
}

func pgRead(r *bufio.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 1<<20 {
		return 0, nil, fmt.Errorf("bad message length %d", n)
	}
	body := make([]byte, n-4)
	_, err := io.ReadFull(r, body)
	return hdr[0], body, err
}

// pgError is the message field of an ErrorResponse.
func pgError(body []byte) error {
	for f := range bytes.SplitSeq(body, []byte{0}) {
		if len(f) > 1 && f[0] == 'M' {
			return errors.New(string(f[1:]))
		}
	}
	return fmt.Errorf("server error %q", body)
}

func TestPostgres(t *testing.T) {
	ca, otherCA := NewTestCA(t, "mesh CA"), NewTestCA(t, "other CA")
	srv := Postgres(t, ca.ServerTLS(t), PostgresDatabase("appdb", "app"))
	good := ClientTLS(t, ca, ca, "app")

	if got, err := pgQuery(srv.Addr, good, "app", "appdb", "SELECT current_user"); err != nil || got != "app" {
		t.Fatalf("client certificate for app: current_user = %q, %v; want app", got, err)
	}
	refused := []struct {
		name string
		cfg  *tls.Config
		user string
		want string // in the error
	}{
		{"no TLS", nil, "app", "no encryption"},
		{"TLS without a client certificate", ClientTLS(t, ca, nil, ""), "app", "certificate"},
		{"a certificate from another CA", ClientTLS(t, ca, otherCA, "app"), "app", ""},
		{"a certificate for another user", ClientTLS(t, ca, ca, "intruder"), "app", "certificate authentication failed"},
		{"the superuser over TCP", ClientTLS(t, ca, ca, "postgres"), "postgres", "rejects connection"},
	}
	for _, tc := range refused {
		got, err := pgQuery(srv.Addr, tc.cfg, tc.user, "appdb", "SELECT current_user")
		if err == nil {
			t.Errorf("%s: logged in (current_user %q)", tc.name, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}

	// The data survives a crash and a restart, on the same port.
	srv.ExecIn("appdb", "CREATE TABLE t (x integer); INSERT INTO t VALUES (7); GRANT SELECT ON t TO app")
	srv.Kill()
	if srv.Running() {
		t.Fatal("running after Kill")
	}
	if _, err := pgQuery(srv.Addr, good, "app", "appdb", "SELECT 1"); err == nil {
		t.Fatal("a query worked while the server was down")
	}
	srv.Start()
	if got, err := pgQuery(srv.Addr, good, "app", "appdb", "SELECT x FROM t"); err != nil || got != "7" {
		t.Fatalf("after Kill and Start: x = %q, %v; want 7", got, err)
	}
	srv.Restart()
	if got := srv.ExecIn("appdb", "SELECT x FROM t"); got != "7" {
		t.Fatalf("after Restart: x = %q; want 7", got)
	}
}
