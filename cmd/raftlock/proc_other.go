//go:build unix && !linux

package main

// startProc starts CMD directly, in its own process group: without
// PR_SET_CHILD_SUBREAPER and a parent-death signal there is no supervisor,
// and CMD outlives a raftlock killed with SIGKILL.
func startProc(e *env, spec procSpec) (cmdProc, error) { return startDirect(e, spec) }

// supervisorMode is false: this platform has no supervisor.
func supervisorMode(args []string) (int, bool) { return 0, false }
