//go:build !linux

package lab

import (
	"errors"
	"os"
	"syscall"
)

// The lab needs Linux network namespaces; elsewhere these stubs keep the
// package compiling and every operation fails with errNotLinux.

var errNotLinux = errors.New("the lab needs Linux network namespaces")

func procAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int, sig syscall.Signal) error { return errNotLinux }

func killPid(pid int, sig syscall.Signal) error { return errNotLinux }

func flock(f *os.File) error { return errNotLinux }
