package main

import "syscall"

// childProcAttr puts a child server (MinIO) in a process group of its own,
// so that Ctrl-C in a terminal reaches this process only and it stops the
// child in order, and makes the kernel kill the child if this process dies
// without stopping it.
//
// Pdeathsig fires when the thread that started the child exits; the Go
// runtime does not end threads unless a goroutine exits while locked to
// one, which this command never does.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
