package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/raftlock/raftlock/api"
)

func runStatus(ctx context.Context, e *env, args []string) int {
	s := e.newSubcommand("status", "status [flags]",
		`Shows the answering node's view of the cluster: its ID, the leader, the
Raft term, the commit and applied indexes, whether it is ready, and the
members. With several --endpoints, the first one that answers is shown.`,
		`  raftlock status
  raftlock --endpoints http://127.0.0.1:7080 status --output json`)
	output := outputFlag(s.fs)
	pos, err := s.parse(args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected arguments %q", pos)
	}
	if err == nil {
		err = checkOutput(*output)
	}
	if err != nil {
		return s.parseError(err)
	}
	c, code := s.newClient()
	if c == nil {
		return code
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		return e.fail("status: %v", err)
	}
	if st.Members == nil {
		st.Members = []api.Member{}
	}
	if *output == "json" {
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
	fmt.Fprintln(tw, "MEMBER\tROLE\tCLIENT URL\tPEER URL")
	for _, m := range members {
		role := "follower"
		switch {
		case st.Leader == 0:
			role = "-"
		case m.ID == st.Leader:
			role = "leader"
		}
		if m.ID == st.ID {
			role += " (answered)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.ID, role, orDash(m.ClientURL), orDash(m.PeerURL))
	}
	tw.Flush()
	return exitOK
}
