package testenv

import "syscall"

// sysProcAttr makes the kernel kill a server when the test binary dies
// without stopping it (a panic, a timeout, a package without Main).
//
// Pdeathsig fires when the thread that started the child exits. The Go
// runtime does not end threads, except one whose goroutine exits while
// locked to it (runtime.LockOSThread), so this holds unless test code does
// that; Main and t.Cleanup stop servers explicitly in any case.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processAlive reports whether a process with this PID exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
