//go:build !linux

package localdb

import "syscall"

// sysProcAttr: switching users is implemented on Linux only; elsewhere the
// server runs as the program's user (and Postgres refuses root).
func sysProcAttr(*runAs) *syscall.SysProcAttr { return nil }
