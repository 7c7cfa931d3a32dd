package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// CMD runs in its own process group with raftlock's streams; on Linux
// through a supervisor (supervise_linux.go) that ends CMD's process group
// and every other descendant of CMD when CMD exits, and when raftlock dies,
// even by SIGKILL. When lostC or doneC closes while CMD runs, the group
// gets SIGTERM at once and SIGKILL (with every descendant) after grace. A
// signal on sigC is passed to the group; when ctx ends the group gets
// SIGTERM (no SIGKILL: raftlock's caller is stopping it, and waits for
// CMD).
type child struct {
	e     *env
	argv  []string // CMD and its arguments
	vars  []string // KEY=VALUE added to CMD's environment, replacing inherited ones
	grace time.Duration
	// ttl is the session's TTL: should raftlock die, what is left of CMD
	// gets SIGKILL after orphanGrace(grace, ttl), well before the session
	// can expire.
	ttl   time.Duration
	sigC  <-chan os.Signal // nil: signals are not passed on
	what  string           // what is held, for messages: "lock jobs/x"
	lostC <-chan struct{}  // closed when the hold is lost
	doneC <-chan struct{}  // closed when the session ends (nil: unused)
	// reason says why the hold was lost, for messages.
	reason func() string
}

// orphanGrace is the time between SIGTERM and SIGKILL to what is left of
// CMD after raftlock died: the kill grace, but at most a quarter of the
// session's TTL. The session outlives raftlock by at least about two
// thirds of its TTL (it is renewed every third of it), so the kill comes
// well before the lock can pass on.
func orphanGrace(grace, ttl time.Duration) time.Duration {
	if ttl > 0 {
		grace = min(grace, ttl/4)
	}
	return grace
}

// procSpec says how to start CMD.
type procSpec struct {
	argv               []string
	env                []string
	stdin              io.Reader
	stdout, stderr     io.Writer
	grace, orphanGrace time.Duration
}

// cmdProc is a started CMD (startProc, per platform).
type cmdProc interface {
	// pgid is CMD's process group ID (CMD's PID), for messages.
	pgid() int
	// signal sends sig to CMD's process group.
	signal(sig syscall.Signal)
	// kill sends SIGKILL to CMD's process group and, where supervised, to
	// every other descendant of CMD.
	kill()
	// done is closed once CMD has exited and, where supervised, every
	// other descendant of CMD too; code is then the exit code.
	done() <-chan struct{}
	code() int
}

// startError is a CMD that could not be started; notFound tells exit code
// 127 from 126.
type startError struct {
	notFound bool
	err      error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// run starts CMD and waits for it; it returns the exit code and whether the
// hold was lost while CMD ran. A CMD that cannot start gives exitNotFound
// or exitCannotRun.
func (ch *child) run(ctx context.Context) (code int, lost bool) {
	e, name := ch.e, ch.argv[0]
	var names []string
	for _, kv := range ch.vars {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	p, err := startProc(e, procSpec{
		argv:  ch.argv,
		env:   append(environWithout(os.Environ(), names...), ch.vars...),
		stdin: e.stdin, stdout: e.stdout, stderr: e.stderr,
		grace: ch.grace, orphanGrace: orphanGrace(ch.grace, ch.ttl),
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "raftlock: run %s: %v\n", name, err)
		if se := (*startError)(nil); errors.As(err, &se) && se.notFound {
			return exitNotFound, false
		}
		return exitCannotRun, false
	}
	pgid := p.pgid()

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
		p.signal(syscall.SIGTERM)
		fmt.Fprintf(e.stderr, "raftlock: %s lost (%s); sent SIGTERM to %s (process group %d), SIGKILL follows in %v\n",
			ch.what, ch.reason(), name, pgid, ch.grace)
		killTimer = time.NewTimer(ch.grace)
		killC = killTimer.C
	}
	for {
		select {
		case <-p.done():
			if !lost && (closed(lostC) || closed(doneC)) {
				lost = true
				fmt.Fprintf(e.stderr, "raftlock: %s lost (%s) by the time %s exited\n", ch.what, ch.reason(), name)
			}
			return p.code(), lost
		case <-lostC:
			onLost()
		case <-doneC:
			onLost()
		case <-killC:
			killC = nil
			p.kill()
			fmt.Fprintf(e.stderr, "raftlock: %s still running %v after SIGTERM; sent SIGKILL to process group %d\n", name, ch.grace, pgid)
		case sig := <-ch.sigC:
			p.signal(sig.(syscall.Signal))
		case <-ctxDone:
			ctxDone = nil
			p.signal(syscall.SIGTERM)
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

// directProc is CMD started by raftlock itself, in its own process group
// (the platforms without a supervisor). When raftlock dies, CMD lives on.
type directProc struct {
	e     *env
	cmd   *exec.Cmd
	doneC chan struct{}
	exit  int
}

// startDirect starts spec's CMD as raftlock's child, in its own process group.
func startDirect(e *env, spec procSpec) (*directProc, error) {
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.stdin, spec.stdout, spec.stderr
	cmd.Env = spec.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Stop waiting for CMD's output pipes (only used when the streams are
	// not files) this long after CMD exits, should a child of CMD keep them.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, &startError{notFound: isNotFound(err), err: err}
	}
	p := &directProc{e: e, cmd: cmd, doneC: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.exit = exitCode(cmd, err)
		close(p.doneC)
	}()
	return p, nil
}

// isNotFound reports whether a start error means that CMD does not exist.
func isNotFound(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

func (p *directProc) pgid() int { return p.cmd.Process.Pid } // Setpgid: the group's ID is CMD's PID

func (p *directProc) signal(sig syscall.Signal) { signalGroup(p.e, p.pgid(), sig) }

func (p *directProc) kill() { signalGroup(p.e, p.pgid(), syscall.SIGKILL) }

func (p *directProc) done() <-chan struct{} { return p.doneC }

func (p *directProc) code() int { return p.exit }
