package main

// startProc starts CMD under a supervisor (supervise_linux.go): CMD's
// process group and every other descendant of CMD end with CMD, and with
// raftlock, even when raftlock is killed with SIGKILL.
func startProc(e *env, spec procSpec) (cmdProc, error) { return startSupervised(e, spec) }
