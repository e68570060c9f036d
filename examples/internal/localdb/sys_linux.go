package localdb

import "syscall"

// sysProcAttr: the kernel kills the server when the program dies without
// stopping it; it runs as u when u is set.
func sysProcAttr(u *runAs) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	return a
}
