package ztn

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestParse(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("ztn.test")
	for _, tc := range []struct {
		in   string
		want ServiceID
		err  string
	}{
		{in: "spiffe://ztn.test/ns/default/dc/dc1/svc/web", want: ServiceID{td, "default", "default", "dc1", "web"}},
		{in: "spiffe://ztn.test/ap/part1/ns/ns1/dc/dc2/svc/api-v2", want: ServiceID{td, "part1", "ns1", "dc2", "api-v2"}},
		{in: "spiffe://ztn.test/ns/default/dc/dc1/svc/", err: "trailing slash"},
		{in: "spiffe://ztn.test/agent/client/dc/dc1/id/x", err: "not a service"},
		{in: "spiffe://ztn.test/ns/default/dc/dc1/svc/web/extra", err: "not a service"},
		{in: "spiffe://ztn.test/ap/p/ns/default/dc/dc1/gw/web", err: "not a service"},
		{in: "spiffe://ztn.test/xx/p/ns/default/dc/dc1/svc/web", err: "not a service"},
		{in: "spiffe://ztn.test", err: "not a service"},
		{in: "spiffe://ztn.test/ns/default/dc/dc1/svc/we%2Fb", err: "path segment characters"},
		{in: "spiffe://ztn.test/ns/default/dc/dc1/svc/-web", err: "not a service"},
		{in: "https://ztn.test/ns/default/dc/dc1/svc/web", err: "scheme"},
	} {
		got, err := ParseServiceID(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseServiceID(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseServiceID(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.in {
			t.Errorf("round trip %q -> %q", tc.in, s)
		}
	}
}

func TestParseErrNotService(t *testing.T) {
	_, err := ParseServiceID("spiffe://ztn.test/workload")
	if !errors.Is(err, ErrNotService) {
		t.Fatalf("err = %v, want ErrNotService", err)
	}
	if _, err := ServiceIDFromURI(nil); !errors.Is(err, ErrNotService) {
		t.Fatalf("ServiceIDFromURI(nil) = %v", err)
	}
}

func TestNewValidate(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("ztn.test")
	id, err := NewServiceID(td, "dc1", "fortune").SPIFFEID()
	if err != nil || id.String() != "spiffe://ztn.test/ns/default/dc/dc1/svc/fortune" {
		t.Fatalf("ID() = %v, %v", id, err)
	}
	for _, bad := range []ServiceID{
		NewServiceID(td, "dc1", ""), NewServiceID(td, "", "x"), NewServiceID(td, "dc1", "a/b"), NewServiceID(spiffeid.TrustDomain{}, "dc1", "x"),
		{TrustDomain: td, Namespace: "", Datacenter: "dc1", Name: "x"},
	} {
		if _, err := bad.SPIFFEID(); err == nil {
			t.Errorf("ID() of %+v succeeded", bad)
		}
	}
}

// FuzzParse checks that any string either fails to parse or parses to an ID
// that round-trips and whose segments are valid names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"spiffe://ztn.test/ns/default/dc/dc1/svc/web",
		"spiffe://ztn.test/ap/p/ns/n/dc/d/svc/s",
		"spiffe://ztn.test/ns//dc/dc1/svc/web",
		"spiffe://a/ns/b/dc/c/svc/d/e",
		"spiffe://ztn.test/ns/default/dc/dc1/svc/web%00",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseServiceID(s)
		if err != nil {
			return
		}
		id, err := got.SPIFFEID()
		if err != nil {
			t.Fatalf("parsed %q to %+v, which does not build an ID: %v", s, got, err)
		}
		again, err := ServiceIDFromSPIFFEID(id)
		if err != nil || again != got {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, again, err, got)
		}
		u, _ := url.Parse(id.String())
		if viaURI, err := ServiceIDFromURI(u); err != nil || viaURI != got {
			t.Fatalf("ServiceIDFromURI(%q) = %+v, %v", u, viaURI, err)
		}
	})
}
