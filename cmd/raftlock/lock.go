package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
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

Two flags change what is held, and nothing else (the environment, the
exit codes, what happens when the hold is lost):

  --shared   hold lock NAME shared: any number of --shared runs hold it
             together, while a run without --shared (or a Go Mutex) holds
             it alone. The queue is FIFO and fair both ways: a --shared run
             behind a waiting exclusive one waits for it.
  -n N       hold one of the N permits of semaphore NAME (as consul lock
             -n): at most N runs hold a permit at once, the others wait in
             FIFO order. -n always means a semaphore, even -n 1: semaphores
             are a namespace of their own (semaphore x and lock x are
             unrelated), so -n 1 does not exclude a run without -n. Every
             run of one semaphore must give the same N while any holds a
             permit (another N fails with limit_mismatch, exit 1).
             RAFTLOCK_TOKEN is the permit's token.

--shared and -n exclude each other.

Exit codes: CMD's own code; 1 error before CMD ran; 2 usage; 3 the lock is
held, or the semaphore full (--try, or --wait ran out), and CMD did not
run; 4 lock or permit lost while CMD ran; 126 CMD could not be started; 127
CMD not found.

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
  raftlock lock --wait 1m deploy -- make deploy || echo "exit $?"
  raftlock lock -n 3 backups -- ./backup.sh
  raftlock lock --shared schema -- ./read-report.sh`

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
	// shared: hold the lock shared (--shared).
	shared bool
	// limit > 0: hold a permit of semaphore name with limit permits (-n)
	// instead of the lock.
	limit int
}

// newLockCommand returns "raftlock lock", bound to e.
func newLockCommand(e *env) *cobra.Command {
	o := &lockOptions{}
	c := &cobra.Command{
		Use:     "lock [flags] NAME -- CMD [ARGS...]",
		Short:   "run a command while holding a lock (exclusive or shared) or a semaphore permit",
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
	fs.BoolVar(&o.shared, "shared", false, "hold the lock shared, together with other --shared holders (excludes -n)")
	fs.IntVarP(&o.limit, "limit", "n", 0, "hold one of the `N` permits of semaphore NAME instead of lock NAME (1 to 65536; excludes --shared)")
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
	case o.shared && c.Flags().Changed("limit"):
		return errors.New("--shared and -n exclude each other: --shared holds lock NAME shared, -n N a permit of semaphore NAME")
	case c.Flags().Changed("limit") && (o.limit < 1 || o.limit > api.MaxSemaphoreLimit):
		return fmt.Errorf("-n %d: a semaphore has 1 to %d permits", o.limit, api.MaxSemaphoreLimit)
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

// holding is what one "raftlock lock" holds: a lock, exclusive or shared,
// or a permit of a semaphore, behind the same five calls.
type holding struct {
	what               string // for messages: "lock jobs/x", "semaphore backups"
	try, wait, release func(context.Context) error
	token              func() uint64
	lost               func() <-chan struct{}
}

// holding returns what l's options ask to hold, in l's session.
func (l *locker) holding() *holding {
	switch {
	case l.o.limit > 0:
		sm := l.sess.NewSemaphore(l.o.name, l.o.limit)
		return &holding{what: "semaphore " + l.o.name, try: sm.TryAcquire, wait: sm.Acquire, release: sm.Release, token: sm.Token, lost: sm.Lost}
	case l.o.shared:
		rw := l.sess.NewRWMutex(l.o.name)
		return &holding{what: "lock " + l.o.name, try: rw.TryRLock, wait: rw.RLock, release: rw.RUnlock, token: rw.Token, lost: rw.Lost}
	}
	mu := l.sess.NewMutex(l.o.name)
	return &holding{what: "lock " + l.o.name, try: mu.TryLock, wait: mu.Lock, release: mu.Unlock, token: mu.Token, lost: mu.Lost}
}

// run acquires the lock (or permit), runs CMD and releases it, and returns
// the exit code.
func (l *locker) run(ctx context.Context) int {
	h := l.holding()
	if code, ok := l.acquire(ctx, h); !ok {
		return code
	}
	lostC := h.lost() // of this hold
	code, lost := l.runCmd(ctx, h, lostC)
	if lost {
		return exitLost
	}
	cctx, cancel := l.cleanupCtx(ctx)
	defer cancel()
	if err := h.release(cctx); err != nil {
		fmt.Fprintf(l.e.stderr, "raftlock: release %s: %v (closing the session releases it)\n", h.what, err)
	}
	return code
}

// acquire takes the lock or permit, and reports whether it did; if not,
// with the exit code.
func (l *locker) acquire(ctx context.Context, h *holding) (int, bool) {
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
			errC <- h.try(waitCtx)
			return
		}
		if !l.o.quiet {
			// Try first, so that a wait is said once, with the holder.
			err := h.try(waitCtx)
			b, ok := refusal(err)
			if !ok {
				errC <- err
				return
			}
			l.waiting(b)
		}
		errC <- h.wait(waitCtx)
	}()
	var err error
	select {
	case err = <-errC:
	case sig := <-l.sigC:
		cancel()
		<-errC // a grant that won the race is freed with the session
		fmt.Fprintf(l.e.stderr, "raftlock: %v while waiting for %s; CMD not run\n", sig, h.what)
		return 128 + signum(sig), false
	}
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, api.ErrLockHeld):
		if b, ok := refusal(err); ok && b.known() {
			l.held("", b)
		} else {
			l.held("", l.blocker(ctx))
		}
		return exitHeld, false
	case l.o.wait > 0 && waitCtx.Err() != nil && actx.Err() == nil:
		l.held(fmt.Sprintf("waited %v: ", l.o.wait), l.blocker(ctx))
		return exitHeld, false
	}
	return l.e.fail("acquire %s: %v", h.what, err), false
}

// blocker is who keeps raftlock out of a lock or semaphore, as far as it
// is known: the exclusive holder, or the shared holders (holders of
// permits), and a semaphore's limit.
type blocker struct {
	holder  *api.Holder
	holders []api.Holder
	limit   uint32
}

func (b blocker) known() bool { return b.holder != nil || len(b.holders) > 0 }

// refusal returns who keeps raftlock out, from the refusal of a try, and
// whether err is such a refusal.
func refusal(err error) (blocker, bool) {
	var le *client.LockedError
	if errors.As(err, &le) {
		b := blocker{holders: le.Holders}
		if le.Holder.Session != 0 {
			h := le.Holder
			b.holder = &h
		}
		return b, true
	}
	var fe *client.FullError
	if errors.As(err, &fe) {
		return blocker{holders: fe.Holders, limit: fe.Limit}, true
	}
	return blocker{}, false
}

// blocker asks who holds the lock or the semaphore's permits now; the
// zero blocker if that is unknown.
func (l *locker) blocker(ctx context.Context) blocker {
	cctx, cancel := l.cleanupCtx(ctx)
	defer cancel()
	if l.o.limit > 0 {
		sem, err := l.c.SemaphoreInfo(cctx, l.o.name)
		if err != nil {
			return blocker{}
		}
		return blocker{holders: sem.Holders, limit: sem.Limit}
	}
	info, err := l.c.LockInfo(cctx, l.o.name)
	if err != nil {
		return blocker{}
	}
	if info.Holder != nil {
		return blocker{holder: info.Holder}
	}
	return blocker{holders: info.Holders}
}

// describe says who keeps raftlock out: "lock x is held by session 12
// (owner "a", token 17, since …)" (withToken) or "semaphore b is full (2
// of 2 permits held, by sessions 12, 14)".
func (l *locker) describe(b blocker, withToken bool) string {
	if l.o.limit > 0 {
		if len(b.holders) == 0 {
			return fmt.Sprintf("semaphore %s is full", l.o.name)
		}
		ids := make([]string, len(b.holders))
		for i, h := range b.holders {
			ids[i] = h.Session.String()
		}
		return fmt.Sprintf("semaphore %s is full (%d of %d permits held, by sessions %s)", l.o.name, len(b.holders), b.limit, strings.Join(ids, ", "))
	}
	h := b.holder
	switch {
	case h != nil && withToken:
		return fmt.Sprintf("lock %s is held by session %s (owner %q, token %d, since %s)", l.o.name, h.Session, h.Owner, h.Token, h.Since.UTC().Format(time.RFC3339))
	case h != nil:
		return fmt.Sprintf("lock %s is held by session %s (owner %q, since %s)", l.o.name, h.Session, h.Owner, h.Since.UTC().Format(time.RFC3339))
	case len(b.holders) > 0 && l.o.shared:
		// Shared holders let a shared request in unless a writer waits.
		return fmt.Sprintf("lock %s is held shared by %d sessions, and an exclusive request waits ahead", l.o.name, len(b.holders))
	case len(b.holders) > 0:
		return fmt.Sprintf("lock %s is held shared by %d sessions", l.o.name, len(b.holders))
	}
	return fmt.Sprintf("lock %s is held by another session", l.o.name)
}

// waiting says on stderr, once, that the lock is held (the semaphore full)
// and raftlock waits for it (--quiet: not).
func (l *locker) waiting(b blocker) {
	until := "until it is free"
	if l.o.wait > 0 {
		until = fmt.Sprintf("at most %v", l.o.wait)
	} else if l.o.limit > 0 {
		until = "until a permit is free"
	}
	fmt.Fprintf(l.e.stderr, "raftlock: %s; waiting %s\n", l.describe(b, false), until)
}

// held says on stderr, after prefix, that the lock is held (the semaphore
// full), and by whom when known.
func (l *locker) held(prefix string, b blocker) {
	fmt.Fprintf(l.e.stderr, "raftlock: %s%s; CMD not run\n", prefix, l.describe(b, true))
}

// runCmd runs CMD under the lock or permit and returns its exit code, and
// whether the hold was lost while it ran.
func (l *locker) runCmd(ctx context.Context, h *holding, lostC <-chan struct{}) (code int, lost bool) {
	ch := &child{
		e:    l.e,
		argv: l.o.argv,
		vars: []string{
			"RAFTLOCK_NAME=" + l.o.name,
			"RAFTLOCK_TOKEN=" + strconv.FormatUint(h.token(), 10),
			"RAFTLOCK_SESSION=" + l.sess.ID().String(),
		},
		grace:  l.o.grace,
		ttl:    l.o.ttl,
		sigC:   l.sigC,
		what:   h.what,
		lostC:  lostC,
		doneC:  l.sess.Done(),
		reason: func() string { return sessionLostReason(l.sess) },
	}
	return ch.run(ctx)
}
