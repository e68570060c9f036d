//go:build !linux

package testenv

import "syscall"

// runAsAttr: switching users is implemented on Linux only; elsewhere the
// server runs as the test's user (and Postgres refuses root).
func runAsAttr(*osUser) *syscall.SysProcAttr { return nil }
