//go:build unix && !linux

package main

import (
	"os/exec"
	"syscall"
)

// procAttr puts CMD in its own process group.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }
