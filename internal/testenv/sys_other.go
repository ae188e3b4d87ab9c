//go:build !linux

package testenv

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; servers are
// stopped by Main and t.Cleanup only.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processAlive: assume alive, so no temp folder is ever removed by mistake.
func processAlive(int) bool { return true }
