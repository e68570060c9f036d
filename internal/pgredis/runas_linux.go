package pgredis

import "syscall"

// SysProcAttr is the process attributes of a server: the kernel kills it
// when the program dies, and it runs as u when u is set (uid and gid, no
// supplementary groups; Go sets the parent-death signal after the
// credentials, so it survives the switch).
func SysProcAttr(u *User) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID}
	}
	return a
}
