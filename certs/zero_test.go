package certs

import (
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/internal/test/zerotest"
)

// Sources not made by their constructor fail with an error that names the
// constructor; none panics.
func TestZeroValuesFailCleanly(t *testing.T) {
	errs := zerotest.Methods(t, &Files{}, &Rotator{}, &Static{})
	for _, name := range []string{"*certs.Files.GetX509SVID", "*certs.Files.GetX509BundleForTrustDomain",
		"*certs.Rotator.GetX509SVID", "*certs.Rotator.GetX509BundleForTrustDomain",
		"*certs.Static.GetX509SVID", "*certs.Static.GetX509BundleForTrustDomain", "*certs.Static.Close"} {
		if err := errs[name]; err == nil || !strings.Contains(err.Error(), "not created with") {
			t.Errorf("%s: error %v, want one saying it was not created with its constructor", name, err)
		}
	}
}
