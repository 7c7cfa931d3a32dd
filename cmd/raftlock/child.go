package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/raftlock/raftlock/client"
)

// child runs CMD while raftlock holds something on its behalf (a lock, a
// leadership), and ends it when that is lost. lock, elect and sidecar share
// it.
//
// CMD runs in its own process group (procAttr) with raftlock's streams. When
// lostC or doneC closes while CMD runs, the group gets SIGTERM at once and
// SIGKILL after grace. A signal on sigC is passed to the group; when ctx
// ends the group gets SIGTERM (no SIGKILL: raftlock's caller is stopping it,
// and waits for CMD).
type child struct {
	e     *env
	argv  []string // CMD and its arguments
	vars  []string // KEY=VALUE added to CMD's environment, replacing inherited ones
	grace time.Duration
	sigC  <-chan os.Signal // nil: signals are not passed on
	what  string           // what is held, for messages: "lock jobs/x"
	lostC <-chan struct{}  // closed when the hold is lost
	doneC <-chan struct{}  // closed when the session ends (nil: unused)
	// reason says why the hold was lost, for messages.
	reason func() string
}

// run starts CMD and waits for it; it returns the exit code and whether the
// hold was lost while CMD ran. A CMD that cannot start gives exitNotFound
// or exitCannotRun.
func (ch *child) run(ctx context.Context) (code int, lost bool) {
	e, name := ch.e, ch.argv[0]
	cmd := exec.Command(name, ch.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	var names []string
	for _, kv := range ch.vars {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	cmd.Env = append(environWithout(os.Environ(), names...), ch.vars...)
	cmd.SysProcAttr = procAttr()
	// Stop waiting for CMD's output pipes (only used when the streams are
	// not files) this long after CMD exits, should a child of CMD keep them.
	cmd.WaitDelay = time.Second
	if err := startCmd(cmd); err != nil {
		fmt.Fprintf(e.stderr, "raftlock: run %s: %v\n", name, err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return exitNotFound, false
		}
		return exitCannotRun, false
	}
	pgid := cmd.Process.Pid // Setpgid: the group's ID is CMD's PID
	waitC := make(chan error, 1)
	go func() { waitC <- cmd.Wait() }()

	lostC, doneC, ctxDone := ch.lostC, ch.doneC, ctx.Done()
	var killC <-chan time.Time
	var killTimer *time.Timer
	defer func() {
		if killTimer != nil {
			killTimer.Stop()
		}
	}()
	// onLost ends CMD when the hold is lost: SIGTERM now, SIGKILL after the grace.
	onLost := func() {
		lostC, doneC = nil, nil
		lost = true
		signalGroup(e, pgid, syscall.SIGTERM)
		fmt.Fprintf(e.stderr, "raftlock: %s lost (%s); sent SIGTERM to %s (process group %d), SIGKILL follows in %v\n",
			ch.what, ch.reason(), name, pgid, ch.grace)
		killTimer = time.NewTimer(ch.grace)
		killC = killTimer.C
	}
	for {
		select {
		case err := <-waitC:
			if !lost && (closed(lostC) || closed(doneC)) {
				lost = true
				fmt.Fprintf(e.stderr, "raftlock: %s lost (%s) by the time %s exited\n", ch.what, ch.reason(), name)
			}
			return exitCode(cmd, err), lost
		case <-lostC:
			onLost()
		case <-doneC:
			onLost()
		case <-killC:
			killC = nil
			signalGroup(e, pgid, syscall.SIGKILL)
			fmt.Fprintf(e.stderr, "raftlock: %s still running %v after SIGTERM; sent SIGKILL to process group %d\n", name, ch.grace, pgid)
		case sig := <-ch.sigC:
			signalGroup(e, pgid, sig.(syscall.Signal))
		case <-ctxDone:
			ctxDone = nil
			signalGroup(e, pgid, syscall.SIGTERM)
		}
	}
}

// sessionLostReason says why a hold of sess was lost, as far as the session
// knows.
func sessionLostReason(sess *client.Session) string {
	if err := sess.Err(); err != nil {
		return fmt.Sprintf("session %s ended: %v", sess.ID(), err)
	}
	return fmt.Sprintf("session %s no longer holds it", sess.ID())
}

// signalGroup sends sig to process group pgid; a group that is gone is fine.
func signalGroup(e *env, pgid int, sig syscall.Signal) {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(e.stderr, "raftlock: send %v to process group %d: %v\n", sig, pgid, err)
	}
}

// exitCode returns the exit code for CMD's end: its own code, or 128+N when
// signal N killed it.
func exitCode(cmd *exec.Cmd, err error) int {
	ps := cmd.ProcessState
	if ps == nil {
		return exitError
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func signum(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 0
}

func closed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// environWithout returns env without the variables named.
func environWithout(env []string, names ...string) []string {
	out := make([]string, 0, len(env)+len(names))
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
