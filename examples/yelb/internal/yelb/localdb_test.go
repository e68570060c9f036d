package yelb_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ztnlabs/ztn/examples/internal/localdb"
	"github.com/ztnlabs/ztn/examples/yelb/internal/yelb"
	"github.com/ztnlabs/ztn/internal/test/testenv"
)

// The demo's own servers: started, reached with a client certificate (and
// refused without one), stopped and removed.
func TestLocalDB(t *testing.T) {
	bins := localdb.Find()
	if m := bins.Missing(); m != "" {
		msg := "not installed: " + m + " (scripts/deps.sh installs them)"
		switch strings.ToLower(os.Getenv("ZTN_REQUIRE_TOOLS")) { // as testenv reads it
		case "", "0", "false", "no":
		default:
			t.Fatal(msg + " (ZTN_REQUIRE_TOOLS is set)")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca := testenv.NewTestCA(t, "demo CA")
	st := ca.ServerTLS(t)
	srvTLS := localdb.TLS{Cert: st.Cert, Key: st.Key, ClientCAs: st.ClientCAs}
	pg, err := localdb.StartPostgres(ctx, bins, srvTLS, yelb.Database, dbUser)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	rd, err := localdb.StartRedis(ctx, bins, srvTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Stop()

	cfg := testenv.ClientTLS(t, ca, ca, dbUser)
	votes, err := yelb.NewPostgres(pg.Addr, dbUser, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer votes.Close()
	views, err := yelb.NewRedis(rd.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	if n, err := votes.Vote(ctx, "chipotle"); err != nil || n != 1 {
		t.Errorf("vote: %d, %v; want 1", n, err)
	}
	if n, err := views.PageView(ctx); err != nil || n != 1 {
		t.Errorf("page view: %d, %v; want 1", n, err)
	}

	bare := testenv.ClientTLS(t, ca, nil, "")
	noCert, _ := yelb.NewPostgres(pg.Addr, dbUser, bare)
	defer noCert.Close()
	if err := noCert.Ping(ctx); err == nil {
		t.Error("postgres accepted a client without a certificate")
	}
	noCertRedis, _ := yelb.NewRedis(rd.Addr, bare)
	defer noCertRedis.Close()
	if err := noCertRedis.Ping(ctx); err == nil {
		t.Error("redis accepted a client without a certificate")
	}

	for _, s := range []*localdb.Server{pg, rd} {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
			t.Errorf("%s still there after Stop: %v", s.Dir, err)
		}
	}
}
