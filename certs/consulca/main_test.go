package consulca

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztnlabs/ztn/certs"
	"github.com/ztnlabs/ztn/internal/test/certstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testTD = certstest.TD

// testLogger logs into the test's output (shown with -v or on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestCA(t testing.TB, opts ...certs.DevCAOption) *certs.DevCA {
	t.Helper()
	ca, err := certs.NewDevCA(testTD, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
