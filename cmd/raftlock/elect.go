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

const electAbout = `Opens a session, campaigns in election NAME with VALUE (the identity or
address observers see as the leader) and waits to lead, for ever by default.
Once leading it prints "leading NAME as VALUE, term N" on stdout; the term
is the leadership's fencing token.

Without CMD it leads until SIGINT, SIGTERM or SIGHUP (then it resigns, so
the next candidate leads at once, and exits 0), or until the leadership is
lost (the session expired, or an operator closed it): exit 4.

With CMD it runs CMD only while leading, with stdin, stdout and stderr passed
through and these variables added to its environment:

  RAFTLOCK_NAME     the election's name
  RAFTLOCK_TERM     the term of the leadership (fencing token): give it to
                    the resource you protect, and let it refuse a term lower
                    than one it has seen
  RAFTLOCK_VALUE    VALUE
  RAFTLOCK_SESSION  the session's ID

When CMD exits, what it left running gets SIGTERM, and SIGKILL after
--kill-grace; then raftlock resigns, closes the session and exits with
CMD's exit code (128+N when a signal N killed CMD). CMD runs in its own
process group: if the leadership is lost while CMD runs, the group gets
SIGTERM at once and SIGKILL (with every other descendant of CMD) after
--kill-grace, and raftlock exits 4 whatever CMD's code. If raftlock dies,
even by SIGKILL, CMD and its descendants die with it before the leadership
can pass on (Linux; see "raftlock help lock"). SIGINT, SIGTERM and SIGHUP to raftlock are passed to CMD's group;
raftlock resigns once CMD has exited. While campaigning, they abandon the
campaign (exit 128+N) and CMD never runs.

Exit codes: 0 resigned after a signal (no CMD); CMD's own code; 1 error; 2
usage; 3 --wait ran out before leading (CMD did not run); 4 leadership lost;
126 CMD could not be started; 127 CMD not found.`

const electExample = `  raftlock elect scheduler 10.0.0.7:8080
  raftlock elect --ttl 5s scheduler "$(hostname)" -- ./scheduler --fence-from-env
  raftlock elect --wait 30s jobs/compactor host-a -- sh -c 'compact --term "$RAFTLOCK_TERM"'`

// electOptions are the flags and arguments of "raftlock elect".
type electOptions struct {
	name, value string
	argv        []string // CMD and its arguments; empty: lead without CMD
	ttl         time.Duration
	owner       string
	wait        time.Duration // 0: for ever
	grace       time.Duration // --kill-grace
	quiet       bool          // no "election … is led by …; waiting" line
}

// newElectCommand returns "raftlock elect", bound to e.
func newElectCommand(e *env) *cobra.Command {
	o := &electOptions{}
	c := &cobra.Command{
		Use:     "elect [flags] NAME VALUE [-- CMD [ARGS...]]",
		Short:   "lead an election, running a command while leading",
		Long:    electAbout,
		Example: electExample,
		RunE: e.action(func(c *cobra.Command, args []string) int {
			if err := o.parseArgs(c, args); err != nil {
				return e.usageError(c, err)
			}
			return runElect(c.Context(), e, c, o)
		}),
	}
	o.addFlags(c.Flags())
	return c
}

// addFlags registers the flags of "raftlock elect" on fs. They are not
// interspersed: cobra parses those before NAME, parseArgs those between
// NAME, VALUE and CMD.
func (o *electOptions) addFlags(fs *pflag.FlagSet) {
	fs.SetInterspersed(false)
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "session TTL: the leadership is lost this long after raftlock stops renewing it")
	fs.StringVar(&o.owner, "owner", "", "owner label shown to others (default hostname:pid)")
	fs.DurationVar(&o.wait, "wait", 0, "campaign at most this long, then exit 3 (default: for ever)")
	fs.DurationVar(&o.grace, "kill-grace", 5*time.Second, "after the leadership is lost, time between SIGTERM and SIGKILL to CMD")
	fs.BoolVar(&o.quiet, "quiet", false, "do not say on stderr that another session leads and raftlock waits for its turn")
}

// parseArgs completes o from the arguments that follow the flags before
// NAME: NAME, more flags, VALUE, more flags, then the optional CMD after
// "--" (or from the first argument after VALUE that is not a flag), whose
// own flags are left to it. It checks the flags.
func (o *electOptions) parseArgs(c *cobra.Command, args []string) error {
	var pos []string
	for len(pos) < 2 {
		if len(args) == 0 {
			if len(pos) == 0 {
				return errors.New("missing election NAME and VALUE")
			}
			return errors.New("missing VALUE: the identity or address observers see as the leader")
		}
		pos = append(pos, args[0])
		var err error
		if args, err = parseFlagsAfter(c, args[1:]); err != nil {
			return err
		}
	}
	o.name, o.value, o.argv = pos[0], pos[1], args
	switch {
	case o.value == "":
		return errors.New("VALUE is empty: give the identity or address observers see as the leader")
	case len(o.value) > api.MaxValueSize:
		return fmt.Errorf("VALUE is %d bytes long: at most %d are allowed", len(o.value), api.MaxValueSize)
	case o.wait < 0:
		return fmt.Errorf("--wait %v is negative", o.wait)
	case o.ttl <= 0:
		return fmt.Errorf("--ttl %v must be positive", o.ttl)
	case o.grace < 0:
		return fmt.Errorf("--kill-grace %v is negative", o.grace)
	}
	if err := api.ValidateLockName(o.name); err != nil {
		return fmt.Errorf("election %w", err)
	}
	if o.owner == "" {
		host, _ := os.Hostname()
		o.owner = fmt.Sprintf("%s:%d", orDash(host), os.Getpid())
	}
	return nil
}

// runElect runs "raftlock elect" with the parsed o; c is the command, for
// its usage.
func runElect(ctx context.Context, e *env, c *cobra.Command, o *electOptions) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()

	sigC := make(chan os.Signal, 4)
	signal.Notify(sigC, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigC)

	sess, err := cl.NewSession(ctx, client.WithTTL(o.ttl), client.WithOwner(o.owner))
	if err != nil {
		return e.fail("open session: %v", err)
	}
	el := &elector{e: e, c: cl, sess: sess, o: o, sigC: sigC, el: sess.NewElection(o.name)}
	code = el.run(ctx)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	defer cancel()
	if err := sess.Close(cctx); err != nil && code != exitLost {
		fmt.Fprintf(e.stderr, "raftlock: close session %s: %v (it ends when its TTL runs out)\n", sess.ID(), err)
	}
	return code
}

// elector runs one "raftlock elect".
type elector struct {
	e    *env
	c    *client.Client
	sess *client.Session
	o    *electOptions
	sigC chan os.Signal
	el   *client.Election
}

func (l *elector) cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), l.e.timeout)
}

// run campaigns, leads (running CMD, if any) and resigns; it returns the
// exit code.
func (l *elector) run(ctx context.Context) int {
	if code, ok := l.campaign(ctx); !ok {
		return code
	}
	term, lostC := l.el.Term(), l.el.Lost()
	fmt.Fprintf(l.e.stdout, "leading %s as %s, term %d\n", l.o.name, l.o.value, term)
	var code int
	var lost bool
	if len(l.o.argv) == 0 {
		code, lost = l.lead(ctx, lostC)
	} else {
		ch := &child{
			e:    l.e,
			argv: l.o.argv,
			vars: []string{
				"RAFTLOCK_NAME=" + l.o.name,
				"RAFTLOCK_TERM=" + strconv.FormatUint(term, 10),
				"RAFTLOCK_VALUE=" + l.o.value,
				"RAFTLOCK_SESSION=" + l.sess.ID().String(),
			},
			grace:  l.o.grace,
			ttl:    l.o.ttl,
			sigC:   l.sigC,
			what:   "leadership of election " + l.o.name,
			lostC:  lostC,
			doneC:  l.sess.Done(),
			reason: func() string { return sessionLostReason(l.sess) },
		}
		code, lost = ch.run(ctx)
	}
	if lost {
		return exitLost
	}
	cctx, cancel := l.cleanupCtx(ctx)
	defer cancel()
	if err := l.el.Resign(cctx); err != nil {
		fmt.Fprintf(l.e.stderr, "raftlock: resign election %s: %v (closing the session ends the leadership)\n", l.o.name, err)
	}
	return code
}

// lead holds the leadership without CMD until a signal or ctx ends it
// (exit 0, not lost) or it is lost.
func (l *elector) lead(ctx context.Context, lostC <-chan struct{}) (int, bool) {
	select {
	case <-lostC:
	case <-l.sess.Done():
	case sig := <-l.sigC:
		fmt.Fprintf(l.e.stderr, "raftlock: %v: resigning election %s\n", sig, l.o.name)
		return exitOK, false
	case <-ctx.Done():
		return exitOK, false
	}
	fmt.Fprintf(l.e.stderr, "raftlock: leadership of election %s lost (%s)\n", l.o.name, sessionLostReason(l.sess))
	return exitLost, true
}

// campaign waits to lead, and reports whether it does; if not, with the
// exit code.
func (l *elector) campaign(ctx context.Context) (int, bool) {
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
		if !l.o.quiet {
			// Say once who leads, before waiting behind it.
			if el, err := l.c.ElectionInfo(waitCtx, l.o.name); err == nil && el.Leader != nil && el.Leader.Session != l.sess.ID() {
				l.waiting(el.Leader)
			}
		}
		errC <- l.el.Campaign(waitCtx, l.o.value)
	}()
	var err error
	select {
	case err = <-errC:
	case sig := <-l.sigC:
		cancel()
		<-errC // Campaign resigns a leadership that won the race
		fmt.Fprintf(l.e.stderr, "raftlock: %v while campaigning in election %s; not leading\n", sig, l.o.name)
		return 128 + signum(sig), false
	}
	switch {
	case err == nil:
		return exitOK, true
	case l.o.wait > 0 && waitCtx.Err() != nil && actx.Err() == nil:
		cctx, cancel := l.cleanupCtx(ctx)
		defer cancel()
		what := "nobody leads it now"
		if el, err := l.c.ElectionInfo(cctx, l.o.name); err == nil && el.Leader != nil {
			ld := el.Leader
			what = fmt.Sprintf("it is led by session %s (owner %q, value %q, term %d, since %s)",
				ld.Session, ld.Owner, ld.Value, ld.Term, ld.Since.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(l.e.stderr, "raftlock: waited %v to lead election %s: %s; not leading\n", l.o.wait, l.o.name, what)
		return exitHeld, false
	}
	return l.e.fail("campaign in election %s: %v", l.o.name, err), false
}

// waiting says on stderr, once, that ld leads the election and raftlock
// waits for its turn (--quiet: not).
func (l *elector) waiting(ld *api.Leader) {
	until := ""
	if l.o.wait > 0 {
		until = fmt.Sprintf(", at most %v", l.o.wait)
	}
	fmt.Fprintf(l.e.stderr, "raftlock: election %s is led by session %s (owner %q, value %q, since %s); waiting to lead%s\n",
		l.o.name, ld.Session, ld.Owner, ld.Value, ld.Since.UTC().Format(time.RFC3339), until)
}
