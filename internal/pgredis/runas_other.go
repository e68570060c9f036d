//go:build !linux

package pgredis

import "syscall"

// SysProcAttr: switching users and the parent-death signal are implemented
// on Linux only; elsewhere the server runs as the program's user (and
// PostgreSQL refuses root).
func SysProcAttr(*User) *syscall.SysProcAttr { return nil }
