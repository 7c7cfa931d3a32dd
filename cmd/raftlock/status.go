package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
)

// newStatusCommand returns "raftlock status", bound to e.
func newStatusCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "status [flags]",
		Short: "show the answering node's view of the cluster",
		Long: `Shows the answering node's view of the cluster: its ID, the leader, the
Raft term, the commit and applied indexes, whether it is ready, and the
members. With several --endpoints, the first one that answers is shown.`,
		Example: `  raftlock status
  raftlock --endpoints http://127.0.0.1:7080 status --output json`,
	}
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, args []string) int {
		err := checkOutput(*output)
		if len(args) > 0 {
			err = fmt.Errorf("unexpected arguments %q", args)
		}
		if err != nil {
			return e.usageError(c, err)
		}
		return runStatus(c.Context(), e, c, *output)
	})
	return c
}

func runStatus(ctx context.Context, e *env, c *cobra.Command, output string) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return e.fail("status: %v", err)
	}
	if st.Members == nil {
		st.Members = []api.Member{}
	}
	if output == "json" {
		return e.writeJSON(st)
	}
	tw := newTable(e.stdout)
	fmt.Fprintf(tw, "NODE\t%d\n", st.ID)
	if st.Leader == 0 {
		fmt.Fprintf(tw, "LEADER\tunknown\n")
	} else {
		fmt.Fprintf(tw, "LEADER\t%d (%s)\n", st.Leader, orDash(st.LeaderURL))
	}
	fmt.Fprintf(tw, "TERM\t%d\n", st.Term)
	fmt.Fprintf(tw, "COMMIT\t%d\n", st.Commit)
	fmt.Fprintf(tw, "APPLIED\t%d\n", st.Applied)
	fmt.Fprintf(tw, "READY\t%t\n", st.Ready)
	tw.Flush()
	fmt.Fprintln(e.stdout)
	members := slices.Clone(st.Members)
	slices.SortFunc(members, func(a, b api.Member) int { return cmp.Compare(a.ID, b.ID) })
	tw = newTable(e.stdout)
	fmt.Fprintln(tw, "MEMBER\tROLE\tCLIENT URL\tPEER URL\tMATCH\tBEHIND\tREACHABLE")
	for _, m := range members {
		role := "follower"
		switch {
		case m.Learner:
			role = "learner"
		case st.Leader == 0:
			role = "-"
		case m.ID == st.Leader:
			role = "leader"
		}
		if m.ID == st.ID {
			role += " (answered)"
		}
		// The leader's view of each member's log; "-" from a follower.
		match, behind, reachable := "-", "-", "-"
		if p := m.Progress; p != nil {
			match, behind, reachable = strconv.FormatUint(p.Match, 10), strconv.FormatUint(p.Behind, 10), strconv.FormatBool(p.Reachable)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, role, orDash(m.ClientURL), orDash(m.PeerURL), match, behind, reachable)
	}
	tw.Flush()
	return exitOK
}
