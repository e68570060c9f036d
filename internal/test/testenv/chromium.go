package testenv

import "testing"

// Chromium returns the path of a headless-capable Chromium (Debian package
// chromium; ZTN_CHROMIUM_BIN overrides), or skips the test (fails it under
// ZTN_REQUIRE_TOOLS). The examples' browser tests drive it through
// internal/test/browser.
func Chromium(t testing.TB) string {
	t.Helper()
	return systemBinary(t, "Chromium", "chromium", "ZTN_CHROMIUM_BIN",
		"chromium", "chromium-browser", "/usr/lib/chromium/chromium")
}
