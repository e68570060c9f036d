//go:build unix

package ztnet

import (
	"os"
	"syscall"
)

// fdLimitNow returns the process's soft RLIMIT_NOFILE.
func fdLimitNow() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return rl.Cur, true
}

// countOpenFDs counts the process's open file descriptors where /proc or /dev
// lists them. Listing needs one descriptor itself: at the limit, it fails,
// and probeFDs counts without one where it can.
func countOpenFDs() (int, bool) {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if fds, err := os.ReadDir(dir); err == nil {
			return len(fds) - 1, true // less the one reading the directory
		}
	}
	return probeFDs()
}
