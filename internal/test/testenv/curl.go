package testenv

import "testing"

// Curl returns the path of curl (Debian package curl; ZTN_CURL_BIN
// overrides), or skips the test (fails it under ZTN_REQUIRE_TOOLS). Tests
// use it as a client nobody here wrote.
func Curl(t testing.TB) string {
	t.Helper()
	return systemBinary(t, "curl", "curl", "ZTN_CURL_BIN", "curl")
}
