package workloadapi

import (
	"strings"
	"testing"

	"github.com/ztnlabs/ztn/internal/test/zerotest"
)

// A Source not made by New fails with an error that names New; it does not
// panic.
func TestZeroValueFailsCleanly(t *testing.T) {
	errs := zerotest.Methods(t, &Source{})
	for _, name := range []string{"*workloadapi.Source.GetX509SVID", "*workloadapi.Source.GetX509BundleForTrustDomain", "*workloadapi.Source.Close"} {
		if err := errs[name]; err == nil || !strings.Contains(err.Error(), "not created with New") {
			t.Errorf("%s: error %v, want one saying it was not created with New", name, err)
		}
	}
}
