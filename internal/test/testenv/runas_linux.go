package testenv

import "syscall"

// runAsAttr is sysProcAttr() for a process that runs as u (the test runs as
// root): its uid and gid, no supplementary groups. Go sets the parent-death
// signal after the credentials, so it survives the switch.
func runAsAttr(u *osUser) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Pdeathsig:  syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid},
	}
}
