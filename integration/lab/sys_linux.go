package lab

import (
	"os"
	"syscall"
)

// procAttr puts a started process in its own process group, so Stop can
// signal it together with its children.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup signals the process group led by pid.
func killGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// killPid signals one process.
func killPid(pid int, sig syscall.Signal) error {
	return syscall.Kill(pid, sig)
}

// flock takes an exclusive advisory lock on f, held until f is closed.
func flock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
}
