package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/raftlock/raftlock/api"
)

func runLocks(ctx context.Context, e *env, args []string) int {
	s := e.newSubcommand("locks", "locks [flags]",
		`Lists the locks that are held or have waiters, sorted by name: holder
session and owner, fencing token, since when, and the number of waiters.`,
		`  raftlock locks --prefix jobs/
  raftlock locks --output json | jq '.locks[].name'`)
	prefix := s.fs.String("prefix", "", "only locks whose name starts with this prefix")
	output := outputFlag(s.fs)
	pos, err := s.parse(args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected arguments %q", pos)
	}
	if err == nil {
		err = checkOutput(*output)
	}
	if err == nil {
		err = api.ValidateLockPrefix(*prefix)
	}
	if err != nil {
		return s.parseError(err)
	}
	c, code := s.newClient()
	if c == nil {
		return code
	}
	defer c.Close()
	locks, err := c.Locks(ctx, *prefix)
	if err != nil {
		return e.fail("list locks: %v", err)
	}
	if locks == nil {
		locks = []api.Lock{}
	}
	if *output == "json" {
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
		} else {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%d\n", l.Name, len(l.Waiters))
		}
	}
	tw.Flush()
	return exitOK
}

func runLockInfo(ctx context.Context, e *env, args []string) int {
	s := e.newSubcommand("lock-info", "lock-info [flags] NAME",
		`Shows one lock: its holder (session and owner), the fencing token of the
grant, since when it is held, and its waiters in queue order. A free lock
has no holder.`,
		`  raftlock lock-info nightly-backup
  raftlock lock-info jobs/nightly --output json`)
	output := outputFlag(s.fs)
	pos, err := s.parse(args)
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("want exactly one lock NAME, got %d arguments", len(pos))
	}
	if err == nil {
		err = checkOutput(*output)
	}
	if err == nil {
		err = api.ValidateLockName(pos[0])
	}
	if err != nil {
		return s.parseError(err)
	}
	c, code := s.newClient()
	if c == nil {
		return code
	}
	defer c.Close()
	l, err := c.LockInfo(ctx, pos[0])
	if err != nil {
		return e.fail("lock %s: %v", pos[0], err)
	}
	if l.Waiters == nil {
		l.Waiters = []api.Waiter{}
	}
	if *output == "json" {
		return e.writeJSON(l)
	}
	writeLock(e.stdout, l, time.Now())
	return exitOK
}

// writeLock writes l as a key/value block and a table of its waiters.
func writeLock(w io.Writer, l *api.Lock, now time.Time) {
	tw := newTable(w)
	fmt.Fprintf(tw, "NAME\t%s\n", l.Name)
	if h := l.Holder; h != nil {
		fmt.Fprintf(tw, "HOLDER\tsession %s (owner %q)\n", h.Session, h.Owner)
		fmt.Fprintf(tw, "TOKEN\t%d\n", h.Token)
		fmt.Fprintf(tw, "SINCE\t%s\n", formatTime(h.Since, now))
	} else {
		fmt.Fprintf(tw, "HOLDER\tnone (free)\n")
	}
	fmt.Fprintf(tw, "WAITERS\t%d\n", len(l.Waiters))
	tw.Flush()
	if len(l.Waiters) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "#\tSESSION\tOWNER\tSINCE")
	for i, wt := range l.Waiters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strconv.Itoa(i+1), wt.Session, orDash(wt.Owner), formatTime(wt.Since, now))
	}
	tw.Flush()
}

// writeJSON writes v to stdout as JSON and returns the exit code.
func (e *env) writeJSON(v any) int {
	if err := writeJSON(e.stdout, v); err != nil {
		return e.fail("write output: %v", err)
	}
	return exitOK
}
