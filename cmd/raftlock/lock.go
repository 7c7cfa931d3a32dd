package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

const lockAbout = `Opens a session, waits for lock NAME (for ever by default), and runs CMD
while holding it, with stdin, stdout and stderr passed through and these
variables added to its environment:

  RAFTLOCK_NAME     the lock's name
  RAFTLOCK_TOKEN    the fencing token of the grant: give it to the resource
                    you protect, and let it refuse a token lower than one it
                    has seen
  RAFTLOCK_SESSION  the session's ID

When CMD exits, what it left running (background jobs, processes that left
its process group) gets SIGTERM, and SIGKILL after --kill-grace; then the
lock is released, the session closed, and raftlock exits with CMD's exit
code (128+N when a signal N killed CMD).

CMD runs in its own process group. If the lock is lost while CMD runs (the
session expired, or an operator closed it), the group gets SIGTERM at once
and SIGKILL (with every other descendant of CMD) after --kill-grace, and
raftlock exits 4 whatever CMD's code.
SIGINT, SIGTERM and SIGHUP to raftlock are passed to CMD's group; raftlock
releases the lock once CMD has exited. While waiting for the lock, they
abandon the wait (exit 128+N) and CMD never runs.

Exit codes: CMD's own code; 1 error before CMD ran; 2 usage; 3 the lock is
held (--try, or --wait ran out) and CMD did not run; 4 lock lost while CMD
ran; 126 CMD could not be started; 127 CMD not found.

Because CMD has its own process group, it cannot read from the terminal
(pipe its input instead).

If raftlock itself dies, even by SIGKILL, CMD dies with it (Linux): CMD
runs under a small supervisor (raftlock run again) that sees raftlock go,
sends SIGTERM to CMD's group and every descendant of CMD at once, and
SIGKILL after --kill-grace or a quarter of --ttl, whichever is shorter:
before the session, and so the lock, can expire (at least about two
thirds of --ttl after raftlock's last renewal). Not even this can hold for
a frozen machine or a stopped (SIGSTOP) raftlock and supervisor: the lease
runs out on the cluster's clock while nothing runs here, so give the
resource the fencing token. Nor for processes that ask another service to
start work (systemd-run, at, ssh): those are not CMD's descendants. On
other systems CMD outlives a killed raftlock.`

const lockExample = `  raftlock lock nightly-backup -- ./backup.sh --full
  raftlock lock --try --ttl 30s jobs/reindex -- sh -c 'reindex --fence "$RAFTLOCK_TOKEN"'
  raftlock lock --wait 1m deploy -- make deploy || echo "exit $?"`

// lockOptions are the flags and arguments of "raftlock lock".
type lockOptions struct {
	name  string
	argv  []string // CMD and its arguments
	ttl   time.Duration
	owner string
	try   bool
	wait  time.Duration // 0: for ever
	grace time.Duration // --kill-grace
	quiet bool          // no "waiting for …" line
}

// newLockCommand returns "raftlock lock", bound to e.
func newLockCommand(e *env) *cobra.Command {
	o := &lockOptions{}
	c := &cobra.Command{
		Use:     "lock [flags] NAME -- CMD [ARGS...]",
		Short:   "run a command while holding a lock",
		Long:    lockAbout,
		Example: lockExample,
		RunE: e.action(func(c *cobra.Command, args []string) int {
			if err := o.parseArgs(c, args); err != nil {
				return e.usageError(c, err)
			}
			return runLock(c.Context(), e, c, o)
		}),
	}
	o.addFlags(c.Flags())
	return c
}

// addFlags registers the flags of "raftlock lock" on fs. They are not
// interspersed: cobra parses those before NAME, parseArgs those between
// NAME and CMD.
func (o *lockOptions) addFlags(fs *pflag.FlagSet) {
	fs.SetInterspersed(false)
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "session TTL: the lock is lost this long after raftlock stops renewing it")
	fs.StringVar(&o.owner, "owner", "", "owner label shown to others (default hostname:pid)")
	fs.BoolVar(&o.try, "try", false, "try once; if the lock is held, exit 3 without running CMD")
	fs.DurationVar(&o.wait, "wait", 0, "wait at most this long for the lock, then exit 3 (default: wait for ever)")
	fs.DurationVar(&o.grace, "kill-grace", 5*time.Second, "after the lock is lost, time between SIGTERM and SIGKILL to CMD")
	fs.BoolVar(&o.quiet, "quiet", false, "do not say on stderr that the lock is held and raftlock waits for it")
}

// parseArgs completes o from the arguments that follow the flags before
// NAME: NAME, more flags, then CMD after "--" (or from the first argument
// that is not a flag), whose own flags are left to it. It checks the flags.
func (o *lockOptions) parseArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return errors.New("missing lock NAME")
	}
	o.name = args[0]
	argv, err := parseFlagsAfter(c, args[1:])
	if err != nil {
		return err
	}
	o.argv = argv
	switch {
	case len(o.argv) == 0:
		return errors.New("missing CMD: write it after --, as in raftlock lock NAME -- CMD [ARGS...]")
	case o.try && o.wait != 0:
		return errors.New("--try and --wait exclude each other")
	case o.wait < 0:
		return fmt.Errorf("--wait %v is negative", o.wait)
	case o.ttl <= 0:
		return fmt.Errorf("--ttl %v must be positive", o.ttl)
	case o.grace < 0:
		return fmt.Errorf("--kill-grace %v is negative", o.grace)
	}
	if err := api.ValidateLockName(o.name); err != nil {
		return err
	}
	if o.owner == "" {
		host, _ := os.Hostname()
		o.owner = fmt.Sprintf("%s:%d", orDash(host), os.Getpid())
	}
	return nil
}

// runLock runs "raftlock lock" with the parsed o; c is the command, for
// its usage.
func runLock(ctx context.Context, e *env, c *cobra.Command, o *lockOptions) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()

	// Signals are ours from now on: they abandon the wait for the lock, or
	// go to CMD once it runs.
	sigC := make(chan os.Signal, 4)
	signal.Notify(sigC, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigC)

	sess, err := cl.NewSession(ctx, client.WithTTL(o.ttl), client.WithOwner(o.owner))
	if err != nil {
		return e.fail("open session: %v", err)
	}
	l := &locker{e: e, c: cl, sess: sess, o: o, sigC: sigC}
	code = l.run(ctx)
	if err := l.closeSession(ctx); err != nil && code != exitLost {
		fmt.Fprintf(e.stderr, "raftlock: close session %s: %v (its locks are freed when its TTL runs out)\n", sess.ID(), err)
	}
	return code
}

// locker runs one "raftlock lock".
type locker struct {
	e    *env
	c    *client.Client
	sess *client.Session
	o    *lockOptions
	sigC chan os.Signal
}

// cleanupCtx returns a context for releasing and closing: not cancelled with
// ctx (the caller may be stopping us), bounded by the request timeout.
func (l *locker) cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), l.e.timeout)
}

func (l *locker) closeSession(ctx context.Context) error {
	cctx, cancel := l.cleanupCtx(ctx)
	defer cancel()
	return l.sess.Close(cctx)
}

// run acquires the lock, runs CMD and releases the lock, and returns the exit code.
func (l *locker) run(ctx context.Context) int {
	mu := l.sess.NewMutex(l.o.name)
	if code, ok := l.acquire(ctx, mu); !ok {
		return code
	}
	lostC := mu.Lost() // of this hold
	code, lost := l.runCmd(ctx, mu, lostC)
	if lost {
		return exitLost
	}
	cctx, cancel := l.cleanupCtx(ctx)
	defer cancel()
	if err := mu.Unlock(cctx); err != nil {
		fmt.Fprintf(l.e.stderr, "raftlock: release lock %s: %v (closing the session releases it)\n", l.o.name, err)
	}
	return code
}

// acquire takes the lock, and reports whether it did; if not, with the exit code.
func (l *locker) acquire(ctx context.Context, mu *client.Mutex) (int, bool) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var waitCtx context.Context = actx
	if l.o.wait > 0 {
		var wcancel context.CancelFunc
		waitCtx, wcancel = context.WithTimeout(actx, l.o.wait)
		defer wcancel()
	}
	errC := make(chan error, 1)
	go func() {
		if l.o.try {
			errC <- mu.TryLock(waitCtx)
			return
		}
		if !l.o.quiet {
			// Try first, so that a wait is said once, with the holder.
			err := mu.TryLock(waitCtx)
			var le *client.LockedError
			if !errors.As(err, &le) {
				errC <- err
				return
			}
			h := le.Holder
			l.waiting(&h)
		}
		errC <- mu.Lock(waitCtx)
	}()
	var err error
	select {
	case err = <-errC:
	case sig := <-l.sigC:
		cancel()
		<-errC // a grant that won the race is freed with the session
		fmt.Fprintf(l.e.stderr, "raftlock: %v while waiting for lock %s; CMD not run\n", sig, l.o.name)
		return 128 + signum(sig), false
	}
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, api.ErrLockHeld):
		var le *client.LockedError
		if errors.As(err, &le) && le.Holder.Session != 0 {
			h := le.Holder
			l.held("", &h)
		} else {
			l.held("", l.holder(ctx))
		}
		return exitHeld, false
	case l.o.wait > 0 && waitCtx.Err() != nil && actx.Err() == nil:
		l.held(fmt.Sprintf("waited %v: ", l.o.wait), l.holder(ctx))
		return exitHeld, false
	}
	return l.e.fail("acquire lock %s: %v", l.o.name, err), false
}

// holder asks who holds the lock now, nil if that is unknown.
func (l *locker) holder(ctx context.Context) *api.Holder {
	cctx, cancel := l.cleanupCtx(ctx)
	defer cancel()
	info, err := l.c.LockInfo(cctx, l.o.name)
	if err != nil {
		return nil
	}
	return info.Holder
}

// waiting says on stderr, once, that the lock is held and raftlock waits
// for it (--quiet: not).
func (l *locker) waiting(h *api.Holder) {
	until := "until it is free"
	if l.o.wait > 0 {
		until = fmt.Sprintf("at most %v", l.o.wait)
	}
	if h == nil || h.Session == 0 {
		fmt.Fprintf(l.e.stderr, "raftlock: lock %s is held by another session; waiting %s\n", l.o.name, until)
		return
	}
	fmt.Fprintf(l.e.stderr, "raftlock: lock %s is held by session %s (owner %q, since %s); waiting %s\n",
		l.o.name, h.Session, h.Owner, h.Since.UTC().Format(time.RFC3339), until)
}

// held says on stderr, after prefix, that the lock is held, and by whom
// when known.
func (l *locker) held(prefix string, h *api.Holder) {
	if h == nil {
		fmt.Fprintf(l.e.stderr, "raftlock: %slock %s is held by another session; CMD not run\n", prefix, l.o.name)
		return
	}
	fmt.Fprintf(l.e.stderr, "raftlock: %slock %s is held by session %s (owner %q, token %d, since %s); CMD not run\n",
		prefix, l.o.name, h.Session, h.Owner, h.Token, h.Since.UTC().Format(time.RFC3339))
}

// runCmd runs CMD under the lock and returns its exit code, and whether the
// lock was lost while it ran.
func (l *locker) runCmd(ctx context.Context, mu *client.Mutex, lostC <-chan struct{}) (code int, lost bool) {
	ch := &child{
		e:    l.e,
		argv: l.o.argv,
		vars: []string{
			"RAFTLOCK_NAME=" + l.o.name,
			"RAFTLOCK_TOKEN=" + strconv.FormatUint(mu.Token(), 10),
			"RAFTLOCK_SESSION=" + l.sess.ID().String(),
		},
		grace:  l.o.grace,
		ttl:    l.o.ttl,
		sigC:   l.sigC,
		what:   "lock " + l.o.name,
		lostC:  lostC,
		doneC:  l.sess.Done(),
		reason: func() string { return sessionLostReason(l.sess) },
	}
	return ch.run(ctx)
}
