package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"
)

type testKeyCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func makeCert(t *testing.T, cn string, notAfter time.Time, isCA bool, parent *testKeyCert) *testKeyCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notAfter.Add(-100 * time.Hour),
		NotAfter:              notAfter,
		IsCA:                  isCA,
		BasicConstraintsValid: true,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testKeyCert{cert, key}
}

func TestRootKeeper(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rootA := makeCert(t, "A", t0.Add(1000*time.Hour), true, nil)
	rootB := makeCert(t, "B", t0.Add(1000*time.Hour), true, nil)
	// B cross-signed by A: same subject and key as B.
	crossB := func() *x509.Certificate {
		tmpl := *rootB.cert
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, rootA.cert, rootB.key.Public(), rootA.key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}()
	leaf := func(root *testKeyCert, notAfter time.Duration) *x509.Certificate {
		return makeCert(t, "leaf", t0.Add(notAfter), false, root).cert
	}
	roots := map[string]*x509.Certificate{"A": rootA.cert, "B": rootB.cert}
	chains := map[string][]*x509.Certificate{
		"a10":     {leaf(rootA, 10*time.Minute)},
		"a20":     {leaf(rootA, 20*time.Minute)},
		"b30":     {leaf(rootB, 30*time.Minute)},
		"b40+AB":  {leaf(rootB, 40*time.Minute), crossB},     // chains to B, and to A through the cross-signed B
		"a50+A":   {leaf(rootA, 50*time.Minute), rootA.cert}, // chain that includes its root
		"foreign": {makeCert(t, "leaf", t0.Add(time.Hour), false, makeCert(t, "C", t0.Add(time.Hour), true, nil)).cert},
	}

	type step struct {
		at       time.Duration // since t0
		reported []string      // names of roots
		chain    string        // "" for a bundle-only report, "-" for a prune only
		want     []string      // trusted roots afterwards
		changed  bool
		added    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"new roots are trusted at once", []step{
			{0, []string{"A"}, "", []string{"A"}, true, true},
			{time.Minute, []string{"A", "B"}, "", []string{"A", "B"}, true, true},
			{2 * time.Minute, []string{"B", "A"}, "", []string{"A", "B"}, false, false},
		}},
		{"a root no known leaf chains to is dropped with its report", []step{
			{0, []string{"A"}, "", []string{"A"}, true, true},
			{time.Minute, []string{"B"}, "", []string{"B"}, true, true},
		}},
		{"an empty report drops roots without leaves", []step{
			{0, []string{"A"}, "", []string{"A"}, true, true},
			{time.Minute, nil, "", nil, true, false},
		}},
		{"an unreported root is kept until its last leaf expires", []step{
			{0, []string{"A"}, "a10", []string{"A"}, true, true},
			{time.Minute, []string{"A"}, "a20", []string{"A"}, false, false},
			{2 * time.Minute, []string{"B"}, "b30", []string{"A", "B"}, true, true},
			{19 * time.Minute, []string{"B"}, "", []string{"A", "B"}, false, false},
			{20*time.Minute + time.Second, []string{"B"}, "", []string{"B"}, true, false},
		}},
		{"a leaf issued under a root its own report omits keeps the root", []step{
			{0, []string{"A"}, "", []string{"A"}, true, true},
			{time.Minute, []string{"B"}, "a10", []string{"A", "B"}, true, true},
			{10*time.Minute + time.Second, nil, "-", []string{"B"}, true, false},
		}},
		{"prune drops roots on time without a report", []step{
			{0, []string{"A"}, "a10", []string{"A"}, true, true},
			{time.Minute, []string{"B"}, "", []string{"A", "B"}, true, true},
			{9 * time.Minute, nil, "-", []string{"A", "B"}, false, false},
			{10*time.Minute + time.Second, nil, "-", []string{"B"}, true, false},
		}},
		{"a cross-signed chain keeps the old root", []step{
			{0, []string{"A"}, "a10", []string{"A"}, true, true},
			{time.Minute, []string{"A", "B"}, "b40+AB", []string{"A", "B"}, true, true},
			{2 * time.Minute, []string{"B"}, "", []string{"A", "B"}, false, false},
			{39 * time.Minute, []string{"B"}, "", []string{"A", "B"}, false, false},
			{41 * time.Minute, []string{"B"}, "", []string{"B"}, true, false},
		}},
		{"a chain that includes its root", []step{
			{0, []string{"A"}, "a50+A", []string{"A"}, true, true},
			{time.Minute, []string{"B"}, "", []string{"A", "B"}, true, true},
			{49 * time.Minute, []string{"B"}, "", []string{"A", "B"}, false, false},
			{51 * time.Minute, []string{"B"}, "", []string{"B"}, true, false},
		}},
		{"a root that comes back is reported again", []step{
			{0, []string{"A"}, "a10", []string{"A"}, true, true},
			{time.Minute, []string{"B"}, "", []string{"A", "B"}, true, true},
			{2 * time.Minute, []string{"A", "B"}, "", []string{"A", "B"}, false, true},
			{time.Hour, []string{"A", "B"}, "", []string{"A", "B"}, false, false},
		}},
		{"a leaf of another CA changes nothing", []step{
			{0, []string{"A"}, "foreign", []string{"A"}, true, true},
			{time.Minute, []string{"B"}, "", []string{"B"}, true, true},
		}},
		{"duplicate roots in a report count once", []step{
			{0, []string{"A", "A"}, "", []string{"A"}, true, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k rootKeeper
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				var changed, added bool
				if s.chain == "-" {
					changed = k.prune(now)
				} else {
					var reported []*x509.Certificate
					for _, n := range s.reported {
						reported = append(reported, roots[n])
					}
					changed, added = k.observe(now, reported, chains[s.chain])
				}
				var got []string
				for _, c := range k.certs() {
					got = append(got, c.Subject.CommonName)
				}
				slices.Sort(got)
				if !slices.Equal(got, s.want) || changed != s.changed || added != s.added {
					t.Fatalf("step %d: roots %v changed %v added %v; want %v %v %v",
						i, got, changed, added, s.want, s.changed, s.added)
				}
			}
		})
	}
}

func TestRootKeeperNextDrop(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	rootA := makeCert(t, "A", t0.Add(1000*time.Hour), true, nil)
	rootB := makeCert(t, "B", t0.Add(1000*time.Hour), true, nil)
	var k rootKeeper
	k.observe(t0, []*x509.Certificate{rootA.cert}, []*x509.Certificate{makeCert(t, "l", t0.Add(10*time.Minute), false, rootA).cert})
	if got := k.nextDrop(); !got.IsZero() {
		t.Fatalf("nextDrop with every root reported = %v, want zero", got)
	}
	k.observe(t0, []*x509.Certificate{rootB.cert}, nil)
	if got, want := k.nextDrop(), t0.Add(10*time.Minute); !got.Equal(want) {
		t.Fatalf("nextDrop = %v, want %v", got, want)
	}
}
