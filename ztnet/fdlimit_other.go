//go:build !unix

package ztnet

// fdLimitNow reports no limit where there is no RLIMIT_NOFILE.
func fdLimitNow() (uint64, bool) { return 0, false }

// countOpenFDs reports no count where descriptors cannot be listed.
func countOpenFDs() (int, bool) { return 0, false }
