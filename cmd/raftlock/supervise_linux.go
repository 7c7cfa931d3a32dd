package main

// The supervisor of CMD (Linux).
//
// raftlock lock, elect and sidecar run CMD through a small supervisor: the
// raftlock binary itself, run again (/proc/self/exe) with the hidden first
// argument supervisorArg. The process tree is
//
//	raftlock ── supervisor (own process group) ── CMD (own process group) ── ...
//
// The supervisor marks itself PR_SET_CHILD_SUBREAPER, so every process that
// descends from CMD and loses its parent (CMD's background jobs, double
// forks, processes that left CMD's group or session with setpgid or
// setsid) is re-parented to it rather than to init: it can find them (by
// their parent, in /proc) and it reaps them. It ends all of them:
//
//   - when CMD exits: what is left gets SIGTERM, and SIGKILL after the kill
//     grace; then the supervisor reports CMD's exit status to raftlock, so
//     that raftlock releases the lock only after every descendant is gone;
//   - when raftlock dies, however it dies (SIGKILL included): the
//     supervisor sees its control pipe close (and gets SIGTERM as its
//     parent-death signal, Pdeathsig), sends SIGTERM to CMD's group and every
//     descendant at once, and SIGKILL after orphanGrace (at most a quarter
//     of the session's TTL), long before the session, and so the lock, can
//     expire;
//   - when raftlock asks (the hold was lost and the kill grace ran out).
//
// CMD itself has SIGKILL as its parent-death signal: should the supervisor
// be killed, CMD dies with it (its descendants then live on; raftlock, if
// alive, sends SIGKILL to CMD's group).
//
// What no process in user space can guarantee is in the lock command's
// help (lockAbout) and the README: a machine or process that is frozen
// (SIGSTOP, a suspended VM, swap storms) runs nothing, the supervisor
// included, while the lease runs out on the cluster's clock; the SIGKILL of
// both raftlock and the supervisor at once (a kill of a cgroup, an OOM
// kill of the pair) leaves CMD's descendants to the next subreaper; a
// descendant that asks another process to start work (systemd-run, at,
// a container runtime, ssh) is not a descendant of that work.
//
// Protocol, one line per message: raftlock → supervisor on fd 3:
// "signal N" (to CMD's process group), "kill" (SIGKILL to the group and
// every descendant). supervisor → raftlock on fd 4: "started PID", or
// "error notfound|cannotrun MESSAGE", then "exit WAITSTATUS" once CMD and
// every descendant are gone.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// supervisorArg is the hidden first argument that makes raftlock the
// supervisor of a CMD.
const supervisorArg = "__raftlock_supervise"

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

// startSupervised starts the supervisor, which starts CMD, and returns once
// CMD runs (or could not start).
func startSupervised(e *env, spec procSpec) (*supervised, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the supervisor: %w", err)
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, fmt.Errorf("start the supervisor: %w", err)
	}
	args := []string{"raftlock", supervisorArg, strconv.Itoa(os.Getpid()), spec.grace.String(), spec.orphanGrace.String(), "--"}
	// /proc/self/exe is this very binary, even if its file was replaced or
	// removed since raftlock started.
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: append(args, spec.argv...), Env: spec.env}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.stdin, spec.stdout, spec.stderr
	cmd.ExtraFiles = []*os.File{ctlR, stW} // fd 3 and 4
	// Its own process group: a signal to raftlock's group (a terminal's ^C,
	// kill -- -PGID) does not reach it; raftlock passes signals on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Stop waiting for the output pipes (only used when the streams are not
	// files) this long after the supervisor exits.
	cmd.WaitDelay = time.Second
	err = startLocked(cmd)
	ctlR.Close()
	stW.Close()
	if err != nil {
		ctlW.Close()
		stR.Close()
		return nil, fmt.Errorf("start the supervisor: %w", err)
	}
	br := bufio.NewReader(stR)
	line, _ := br.ReadString('\n')
	word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	pid, perr := strconv.Atoi(rest)
	if word != "started" || perr != nil || pid <= 0 {
		werr := cmd.Wait()
		ctlW.Close()
		stR.Close()
		if kind, msg, ok := strings.Cut(rest, " "); word == "error" && ok {
			return nil, &startError{notFound: kind == "notfound", err: errors.New(msg)}
		}
		return nil, fmt.Errorf("the supervisor ended before CMD started (%v)", werr)
	}
	p := &supervised{e: e, name: spec.argv[0], pid: pid, ctl: ctlW, doneC: make(chan struct{})}
	go p.wait(cmd, br, stR)
	return p, nil
}

// startLocked starts cmd on a locked OS thread: a parent-death signal fires
// when the thread that started the child exits, and a locked thread is not
// reused by the runtime for other goroutines before it is unlocked; the
// runtime keeps unlocked threads alive.
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// supervised is a CMD run by a supervisor: raftlock's side.
type supervised struct {
	e     *env
	name  string
	pid   int // CMD's PID and process group ID
	doneC chan struct{}
	exit  int

	mu  sync.Mutex
	ctl *os.File // nil once the supervisor is gone
}

// wait waits for the supervisor's report of CMD's end, and for the
// supervisor.
func (p *supervised) wait(cmd *exec.Cmd, br *bufio.Reader, stR *os.File) {
	line, _ := br.ReadString('\n')
	werr := cmd.Wait()
	stR.Close()
	p.mu.Lock()
	p.ctl.Close()
	p.ctl = nil
	p.mu.Unlock()
	word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	ws, err := strconv.ParseUint(rest, 10, 32)
	if word == "exit" && err == nil {
		p.exit = waitCode(syscall.WaitStatus(ws))
	} else {
		// The supervisor died without a word (killed). CMD died with it
		// (its parent-death signal); its group may not have.
		signalGroup(p.e, p.pid, syscall.SIGKILL)
		fmt.Fprintf(p.e.stderr, "raftlock: the supervisor of %s ended (%v) before reporting its exit; sent SIGKILL to process group %d\n", p.name, werr, p.pid)
		p.exit = exitError
	}
	close(p.doneC)
}

// send writes one control line to the supervisor. A supervisor that is
// gone is fine: wait reports it.
func (p *supervised) send(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctl == nil {
		return
	}
	if _, err := p.ctl.WriteString(msg + "\n"); err != nil && !errors.Is(err, syscall.EPIPE) {
		fmt.Fprintf(p.e.stderr, "raftlock: tell the supervisor of %s %q: %v\n", p.name, msg, err)
	}
}

func (p *supervised) pgid() int                 { return p.pid }
func (p *supervised) signal(sig syscall.Signal) { p.send("signal " + strconv.Itoa(int(sig))) }
func (p *supervised) kill()                     { p.send("kill") }
func (p *supervised) done() <-chan struct{}     { return p.doneC }
func (p *supervised) code() int                 { return p.exit }

// waitCode returns the exit code for a wait status: the code, or 128+N
// when signal N ended the process.
func waitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// supervisorMode runs the supervisor when args (os.Args[1:]) start with
// supervisorArg, and returns its exit code and true; otherwise 0, false.
func supervisorMode(args []string) (int, bool) {
	if len(args) == 0 || args[0] != supervisorArg {
		return 0, false
	}
	return supervise(args[1:]), true
}

// supervise is the supervisor's main: args are raftlock's PID, the kill
// grace, the orphan grace, "--" and CMD.
func supervise(args []string) int {
	// CMD's parent-death signal follows the thread that starts it: this
	// one, locked for good.
	runtime.LockOSThread()
	if len(args) < 5 || args[3] != "--" {
		fmt.Fprintf(os.Stderr, "raftlock: %s is raftlock's own: not for use by hand\n", supervisorArg)
		return exitUsage
	}
	parent, err1 := strconv.Atoi(args[0])
	grace, err2 := time.ParseDuration(args[1])
	orphan, err3 := time.ParseDuration(args[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		fmt.Fprintf(os.Stderr, "raftlock: supervisor: %v\n", err)
		return exitUsage
	}
	argv := args[4:]
	ctl, st := os.NewFile(3, "raftlock-control"), os.NewFile(4, "raftlock-status")
	if ctl == nil || st == nil {
		fmt.Fprintln(os.Stderr, "raftlock: supervisor: no control pipes")
		return exitUsage
	}
	syscall.CloseOnExec(3) // not CMD's
	syscall.CloseOnExec(4)
	// Caught, not ignored (an ignored signal stays ignored in CMD):
	// SIGPIPE, so that a write to a closed stderr cannot kill the
	// supervisor; SIGTERM, its parent-death signal; the others, so that
	// only raftlock decides what CMD gets.
	sigC := make(chan os.Signal, 8)
	signal.Notify(sigC, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	fail := func(kind string, err error) int {
		fmt.Fprintf(st, "error %s %s\n", kind, strings.ReplaceAll(err.Error(), "\n", " "))
		return exitCannotRun
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fail("cannotrun", fmt.Errorf("supervisor: prctl(PR_SET_CHILD_SUBREAPER): %w", errno))
	}
	if os.Getppid() != parent {
		return exitError // raftlock died already: nothing to run
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		kind := "cannotrun"
		if isNotFound(err) {
			kind = "notfound"
		}
		return fail(kind, err)
	}
	s := &supervisor{
		pid: cmd.Process.Pid, parent: parent, grace: grace, orphan: orphan,
		exitC: make(chan syscall.WaitStatus, 1), goneC: make(chan struct{}),
	}
	go s.reap()
	fmt.Fprintf(st, "started %d\n", s.pid)
	ctlC := make(chan string)
	go func() {
		defer close(ctlC)
		sc := bufio.NewScanner(ctl)
		for sc.Scan() {
			ctlC <- sc.Text()
		}
	}()
	for {
		select {
		case ws := <-s.exitC:
			s.end(s.grace)
			fmt.Fprintf(st, "exit %d\n", uint32(ws))
			return exitOK
		case msg, ok := <-ctlC:
			if !ok {
				s.orphaned("its control pipe closed")
				return exitOK
			}
			s.command(msg)
		case sig := <-sigC:
			if os.Getppid() != s.parent {
				s.orphaned(fmt.Sprintf("%v, parent gone", sig))
				return exitOK
			}
			// raftlock is alive and passes signals on itself.
		}
	}
}

// supervisor is the state of the supervisor process.
type supervisor struct {
	pid           int // CMD's PID and process group ID
	parent        int // raftlock's PID
	grace, orphan time.Duration

	exitC  chan syscall.WaitStatus // CMD's wait status once reaped
	goneC  chan struct{}           // closed when the supervisor has no child left
	reaped atomic.Bool             // CMD was reaped: its PID may be reused, no more kill(-pid)
}

// reap reaps every child (CMD, and the descendants re-parented to the
// subreaper) until none is left.
func (s *supervisor) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
		case err != nil: // ECHILD: nobody left
			close(s.goneC)
			return
		case pid == s.pid:
			s.reaped.Store(true)
			s.exitC <- ws
		}
	}
}

// command carries out one control line from raftlock.
func (s *supervisor) command(msg string) {
	switch word, arg, _ := strings.Cut(msg, " "); word {
	case "signal":
		if n, err := strconv.Atoi(arg); err == nil && n > 0 && !s.reaped.Load() {
			_ = syscall.Kill(-s.pid, syscall.Signal(n))
		}
	case "kill":
		s.signalAll(syscall.SIGKILL)
	}
}

// orphaned ends CMD and every descendant after raftlock died.
func (s *supervisor) orphaned(why string) {
	start := time.Now()
	s.end(s.orphan)
	// Said after the fact: stderr may be a pipe nobody reads any more.
	fmt.Fprintf(os.Stderr, "raftlock: supervisor: raftlock (pid %d) is gone (%s): ended process group %d and every descendant in %v (SIGTERM, SIGKILL after %v)\n",
		s.parent, why, s.pid, time.Since(start).Round(time.Millisecond), s.orphan)
}

// end ends every process left under the supervisor: SIGTERM, then
// SIGKILL after grace, until none is left (all reaped).
func (s *supervisor) end(grace time.Duration) {
	if s.signalAll(syscall.SIGTERM) == 0 {
		return
	}
	if s.gone(grace) {
		return
	}
	for !s.gone(10 * time.Millisecond) {
		s.signalAll(syscall.SIGKILL)
	}
}

// gone waits at most d for the supervisor to have no child left.
func (s *supervisor) gone(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.goneC:
		return true
	case <-t.C:
		return false
	}
}

// signalAll sends sig to CMD's process group (while CMD is not reaped) and
// to every descendant of the supervisor, and returns how many it reached.
func (s *supervisor) signalAll(sig syscall.Signal) int {
	n := 0
	if !s.reaped.Load() && syscall.Kill(-s.pid, sig) == nil {
		n++
	}
	for _, pid := range descendants(os.Getpid()) {
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}

// descendants returns the processes that descend from root, read from
// /proc (their parents' PIDs).
func descendants(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}
