package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

// newElectionsCommand returns "raftlock elections", bound to e.
func newElectionsCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "elections [flags]",
		Short: "list the elections that have a leader or candidates",
		Long: `Lists the elections that have a leader or candidates, sorted by name: the
leader's value, term (fencing token), session and owner, since when it
leads, and the number of candidates queued behind it.`,
		Example: `  raftlock elections --prefix jobs/
  raftlock elections --output json | jq -r '.elections[] | "\(.name) \(.leader.value)"'`,
	}
	prefix := c.Flags().String("prefix", "", "only elections whose name starts with this prefix")
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkListArgs(args, *prefix, *output); err != nil {
			return e.usageError(c, err)
		}
		return runElections(c.Context(), e, c, *prefix, *output)
	})
	return c
}

func runElections(ctx context.Context, e *env, c *cobra.Command, prefix, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	els, err := cl.Elections(ctx, prefix)
	if err != nil {
		return e.fail("list elections: %v", err)
	}
	if els == nil {
		els = []api.Election{}
	}
	for i := range els {
		if els[i].Candidates == nil {
			els[i].Candidates = []api.Candidate{}
		}
	}
	if output == "json" {
		return e.writeJSON(api.ElectionList{Elections: els})
	}
	if len(els) == 0 {
		fmt.Fprintln(e.stdout, "no elections have a leader or candidates")
		return exitOK
	}
	now := time.Now()
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "NAME\tLEADER\tTERM\tSESSION\tOWNER\tSINCE\tCANDIDATES")
	for _, el := range els {
		if l := el.Leader; l != nil {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\n", el.Name, cell(l.Value), l.Term, l.Session, cell(l.Owner), formatTime(l.Since, now), len(el.Candidates))
		} else {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%d\n", el.Name, len(el.Candidates))
		}
	}
	tw.Flush()
	return exitOK
}

// newElectionInfoCommand returns "raftlock election-info", bound to e.
func newElectionInfoCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "election-info [flags] NAME",
		Short: "show one election: leader, term, since, candidates",
		Long: `Shows one election: its leader (value, session and owner), the term of the
leadership (its fencing token), since when it leads, and the candidates in
queue order (the first leads next). An election nobody runs in has no
leader.`,
		Example: `  raftlock election-info scheduler
  raftlock election-info jobs/compactor --output json`,
	}
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkElectionArg(args, *output); err != nil {
			return e.usageError(c, err)
		}
		return runElectionInfo(c.Context(), e, c, args[0], *output)
	})
	return c
}

// checkElectionArg checks the arguments of a command that takes one
// election NAME, and its --output.
func checkElectionArg(args []string, output string) error {
	if len(args) != 1 {
		return fmt.Errorf("want exactly one election NAME, got %d arguments", len(args))
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	if err := api.ValidateLockName(args[0]); err != nil {
		return fmt.Errorf("election %w", err)
	}
	return nil
}

func runElectionInfo(ctx context.Context, e *env, c *cobra.Command, name, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	el, err := cl.ElectionInfo(ctx, name)
	if err != nil {
		return e.fail("election %s: %v", name, err)
	}
	if el.Candidates == nil {
		el.Candidates = []api.Candidate{}
	}
	if output == "json" {
		return e.writeJSON(el)
	}
	writeElection(e.stdout, el, time.Now())
	return exitOK
}

// writeElection writes el as a key/value block and a table of its candidates.
func writeElection(w io.Writer, el *api.Election, now time.Time) {
	tw := newTable(w)
	fmt.Fprintf(tw, "NAME\t%s\n", el.Name)
	if l := el.Leader; l != nil {
		fmt.Fprintf(tw, "LEADER\t%s\n", strconv.Quote(l.Value))
		fmt.Fprintf(tw, "SESSION\t%s (owner %q)\n", l.Session, l.Owner)
		fmt.Fprintf(tw, "TERM\t%d\n", l.Term)
		fmt.Fprintf(tw, "SINCE\t%s\n", formatTime(l.Since, now))
	} else {
		fmt.Fprintf(tw, "LEADER\tnone\n")
	}
	fmt.Fprintf(tw, "CANDIDATES\t%d\n", len(el.Candidates))
	tw.Flush()
	if len(el.Candidates) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "#\tSESSION\tOWNER\tVALUE\tSINCE")
	for i, cd := range el.Candidates {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, cd.Session, cell(cd.Owner), cell(cd.Value), formatTime(cd.Since, now))
	}
	tw.Flush()
}

// cell returns s for a table cell or a line of fields: "-" when empty,
// quoted when it has spaces or characters that are not printable.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || !strconv.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

const observeAbout = `Follows the leader of election NAME and prints one line per change until
SIGINT or SIGTERM (exit 0). The first line is the leader when observe
starts (type "state"), then every change in order, "nobody leads"
included. Text lines are

  REVISION TYPE VALUE TERM SESSION

with TYPE state, elected, proclaimed, resigned, expired or no_leader, and
VALUE, TERM and SESSION those of the leader after the change ("-" when
nobody leads; a VALUE with spaces is quoted). REVISION is the log index of
the change. --output json prints one object per line instead:
{"revision":N,"type":"...","leader":{...} or null}.

The stream resumes across reconnections and node failures without losing
a change; should a node no longer hold the changes since the last one
seen, a new "state" line gives the current leader. The cluster must answer
when observe starts (else exit 1).`

// newObserveCommand returns "raftlock observe", bound to e.
func newObserveCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "observe [flags] NAME",
		Short: "print each leader change of an election",
		Long:  observeAbout,
		Example: `  raftlock observe scheduler
  raftlock observe --output json scheduler | jq -r '.leader.value // "none"'`,
	}
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		if err := checkElectionArg(args, *output); err != nil {
			return e.usageError(c, err)
		}
		return runObserve(c.Context(), e, c, args[0], *output)
	})
	return c
}

func runObserve(ctx context.Context, e *env, c *cobra.Command, name, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The stream retries for ever; fail fast when the cluster does not
	// answer at all.
	if _, err := cl.ElectionInfo(ctx, name); err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return e.fail("election %s: %v", name, err)
	}
	for ev := range cl.Observe(ctx, name) {
		var err error
		if output == "json" {
			var b []byte
			b, err = json.Marshal(api.LeaderEvent(ev)) // every field of the server's message
			if err == nil {
				_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			}
		} else {
			_, err = fmt.Fprintln(e.stdout, leaderEventLine(ev))
		}
		if err != nil {
			return e.fail("write output: %v", err)
		}
	}
	return exitOK
}

// leaderEventLine formats ev as "REVISION TYPE VALUE TERM SESSION".
func leaderEventLine(ev client.LeaderEvent) string {
	if l := ev.Leader; l != nil {
		return fmt.Sprintf("%d %s %s %d %s", ev.Revision, ev.Type, cell(l.Value), l.Term, l.Session)
	}
	return fmt.Sprintf("%d %s - - -", ev.Revision, ev.Type)
}
