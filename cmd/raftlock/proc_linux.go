package main

import (
	"os/exec"
	"runtime"
	"syscall"
)

// procAttr puts CMD in its own process group, and has the kernel send it
// SIGTERM should raftlock die without cleaning up (SIGKILL to raftlock): a
// CMD should not outlive the process that renews its lock. The session, and
// so the lock, lasts until its TTL runs out, which leaves CMD that long to
// stop.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// startCmd starts cmd on a locked OS thread: Pdeathsig fires when the thread
// that started the child exits, and a locked thread is not reused by the
// runtime for other goroutines before it is unlocked; the runtime keeps
// unlocked threads alive.
func startCmd(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
