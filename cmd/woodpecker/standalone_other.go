//go:build !linux

package main

import "syscall"

// childProcAttr: the child shares this process's group and signals.
func childProcAttr() *syscall.SysProcAttr { return nil }
