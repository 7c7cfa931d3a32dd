package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
)

// newLocksCommand returns "raftlock locks", bound to e.
func newLocksCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "locks [flags]",
		Short: "list the locks that are held or waited for",
		Long: `Lists the locks that are held or have waiters, sorted by name: holder
session and owner, fencing token, since when, and the number of waiters.
A lock held shared shows "shared:N" (N holders) as its session; lock-info
lists them.`,
		Example: `  raftlock locks --prefix jobs/
  raftlock locks --output json | jq '.locks[].name'`,
	}
	prefix := c.Flags().String("prefix", "", "only locks whose name starts with this prefix")
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkListArgs(args, *prefix, *output); err != nil {
			return e.usageError(c, err)
		}
		return runLocks(c.Context(), e, c, *prefix, *output)
	})
	return c
}

func runLocks(ctx context.Context, e *env, c *cobra.Command, prefix, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	locks, err := cl.Locks(ctx, prefix)
	if err != nil {
		return e.fail("list locks: %v", err)
	}
	if locks == nil {
		locks = []api.Lock{}
	}
	if output == "json" {
		return e.writeJSON(api.LockList{Locks: locks})
	}
	if len(locks) == 0 {
		fmt.Fprintln(e.stdout, "no locks are held or waited for")
		return exitOK
	}
	now := time.Now()
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "NAME\tSESSION\tOWNER\tTOKEN\tSINCE\tWAITERS")
	for _, l := range locks {
		if h := l.Holder; h != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", l.Name, h.Session, orDash(h.Owner), h.Token, formatTime(h.Since, now), len(l.Waiters))
		} else if len(l.Holders) > 0 {
			fmt.Fprintf(tw, "%s\tshared:%d\t-\t-\t-\t%d\n", l.Name, len(l.Holders), len(l.Waiters))
		} else {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d\n", l.Name, len(l.Waiters))
		}
	}
	tw.Flush()
	return exitOK
}

// newLockInfoCommand returns "raftlock lock-info", bound to e.
func newLockInfoCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "lock-info [flags] NAME",
		Short: "show one lock: holder, fencing token, since, waiters",
		Long: `Shows one lock: its holder (session and owner), the fencing token of the
grant, since when it is held, and its waiters in queue order. A free lock
has no holder; a lock held shared lists its holders, each with its token.`,
		Example: `  raftlock lock-info nightly-backup
  raftlock lock-info jobs/nightly --output json`,
	}
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkLockArg(args, *output); err != nil {
			return e.usageError(c, err)
		}
		return runLockInfo(c.Context(), e, c, args[0], *output)
	})
	return c
}

// checkListArgs checks the arguments of a command that lists (there are
// none), its --prefix and its --output.
func checkListArgs(args []string, prefix, output string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	return api.ValidateLockPrefix(prefix)
}

// checkLockArg checks the arguments of a command that takes one lock NAME,
// and its --output.
func checkLockArg(args []string, output string) error {
	if len(args) != 1 {
		return fmt.Errorf("want exactly one lock NAME, got %d arguments", len(args))
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	return api.ValidateLockName(args[0])
}

func runLockInfo(ctx context.Context, e *env, c *cobra.Command, name, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	l, err := cl.LockInfo(ctx, name)
	if err != nil {
		return e.fail("lock %s: %v", name, err)
	}
	if l.Waiters == nil {
		l.Waiters = []api.Waiter{}
	}
	if output == "json" {
		return e.writeJSON(l)
	}
	writeLock(e.stdout, l, time.Now())
	return exitOK
}

// writeLock writes l as a key/value block and a table of its waiters.
func writeLock(w io.Writer, l *api.Lock, now time.Time) {
	tw := newTable(w)
	fmt.Fprintf(tw, "NAME\t%s\n", l.Name)
	var shared []api.Holder
	switch h := l.Holder; {
	case h != nil:
		fmt.Fprintf(tw, "HOLDER\tsession %s (owner %q)\n", h.Session, h.Owner)
		fmt.Fprintf(tw, "TOKEN\t%d\n", h.Token)
		fmt.Fprintf(tw, "SINCE\t%s\n", formatTime(h.Since, now))
	case len(l.Holders) > 0:
		shared = l.Holders
		fmt.Fprintf(tw, "HOLDER\tshared by %d sessions\n", len(shared))
	default:
		fmt.Fprintf(tw, "HOLDER\tnone (free)\n")
	}
	fmt.Fprintf(tw, "WAITERS\t%d\n", len(l.Waiters))
	tw.Flush()
	writeHolders(w, shared, now)
	writeWaiters(w, l.Waiters, now)
}

// writeHolders writes, after a blank line, a table of holders (shared
// holders of a lock, holders of a semaphore's permits); nothing when there
// are none.
func writeHolders(w io.Writer, hs []api.Holder, now time.Time) {
	if len(hs) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "HOLDER\tSESSION\tOWNER\tTOKEN\tSINCE")
	for i, h := range hs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", i+1, h.Session, orDash(h.Owner), h.Token, formatTime(h.Since, now))
	}
	tw.Flush()
}

// writeWaiters writes, after a blank line, a table of waiters in queue
// order (with their mode when one waits shared); nothing when there are
// none.
func writeWaiters(w io.Writer, ws []api.Waiter, now time.Time) {
	if len(ws) == 0 {
		return
	}
	withMode := false
	for _, wt := range ws {
		withMode = withMode || wt.Mode != ""
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	if withMode {
		fmt.Fprintln(tw, "#\tSESSION\tOWNER\tMODE\tSINCE")
	} else {
		fmt.Fprintln(tw, "#\tSESSION\tOWNER\tSINCE")
	}
	for i, wt := range ws {
		if withMode {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strconv.Itoa(i+1), wt.Session, orDash(wt.Owner), modeOf(wt.Mode), formatTime(wt.Since, now))
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strconv.Itoa(i+1), wt.Session, orDash(wt.Owner), formatTime(wt.Since, now))
		}
	}
	tw.Flush()
}

// modeOf names a waiter's mode: "shared", or "exclusive" when absent.
func modeOf(mode string) string {
	if mode == "" {
		return api.ModeExclusive
	}
	return mode
}

// writeJSON writes v to stdout as JSON and returns the exit code.
func (e *env) writeJSON(v any) int {
	if err := writeJSON(e.stdout, v); err != nil {
		return e.fail("write output: %v", err)
	}
	return exitOK
}
