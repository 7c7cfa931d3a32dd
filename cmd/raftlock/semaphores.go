package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
)

// newSemaphoresCommand returns "raftlock semaphores", bound to e: the
// semaphore version of "raftlock locks".
func newSemaphoresCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "semaphores [flags]",
		Short: "list the semaphores that have holders or waiters",
		Long: `Lists the semaphores that have permits held or waiters, sorted by name:
the limit, the number of permits held, and the number of waiters.`,
		Example: `  raftlock semaphores --prefix backups
  raftlock semaphores --output json | jq '.semaphores[] | {name, held: (.holders | length)}'`,
	}
	prefix := c.Flags().String("prefix", "", "only semaphores whose name starts with this prefix")
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkListArgs(args, *prefix, *output); err != nil {
			return e.usageError(c, err)
		}
		return runSemaphores(c.Context(), e, c, *prefix, *output)
	})
	return c
}

func runSemaphores(ctx context.Context, e *env, c *cobra.Command, prefix, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	sems, err := cl.Semaphores(ctx, prefix)
	if err != nil {
		return e.fail("list semaphores: %v", err)
	}
	for i := range sems {
		nonNil(&sems[i])
	}
	if output == "json" {
		return e.writeJSON(api.SemaphoreList{Semaphores: sems})
	}
	if len(sems) == 0 {
		fmt.Fprintln(e.stdout, "no semaphores have holders or waiters")
		return exitOK
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "NAME\tLIMIT\tHELD\tWAITERS")
	for _, s := range sems {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", s.Name, s.Limit, len(s.Holders), len(s.Waiters))
	}
	tw.Flush()
	return exitOK
}

// nonNil makes the lists of s empty rather than null, as the API writes
// them.
func nonNil(s *api.Semaphore) {
	if s.Holders == nil {
		s.Holders = []api.Holder{}
	}
	if s.Waiters == nil {
		s.Waiters = []api.Waiter{}
	}
}

// newSemaphoreInfoCommand returns "raftlock semaphore-info", bound to e:
// the semaphore version of "raftlock lock-info".
func newSemaphoreInfoCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "semaphore-info [flags] NAME",
		Short: "show one semaphore: limit, holders of its permits, waiters",
		Long: `Shows one semaphore: its limit, the holders of its permits (session,
owner, token, since when) in grant order, and its waiters in queue order.
A semaphore nobody holds a permit of has limit 0.`,
		Example: `  raftlock semaphore-info backups
  raftlock semaphore-info backups --output json`,
	}
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkLockArg(args, *output); err != nil {
			return e.usageError(c, err)
		}
		return runSemaphoreInfo(c.Context(), e, c, args[0], *output)
	})
	return c
}

func runSemaphoreInfo(ctx context.Context, e *env, c *cobra.Command, name, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	s, err := cl.SemaphoreInfo(ctx, name)
	if err != nil {
		return e.fail("semaphore %s: %v", name, err)
	}
	nonNil(s)
	if output == "json" {
		return e.writeJSON(s)
	}
	writeSemaphore(e.stdout, s, time.Now())
	return exitOK
}

// writeSemaphore writes s as a key/value block and tables of its holders
// and waiters.
func writeSemaphore(w io.Writer, s *api.Semaphore, now time.Time) {
	tw := newTable(w)
	fmt.Fprintf(tw, "NAME\t%s\n", s.Name)
	fmt.Fprintf(tw, "LIMIT\t%d\n", s.Limit)
	fmt.Fprintf(tw, "HELD\t%d\n", len(s.Holders))
	fmt.Fprintf(tw, "WAITERS\t%d\n", len(s.Waiters))
	tw.Flush()
	writeHolders(w, s.Holders, now)
	writeWaiters(w, s.Waiters, now)
}
