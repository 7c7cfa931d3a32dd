package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

// newMemberCommand is "raftlock member list|add|remove|promote".
func newMemberCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "member COMMAND [flags] [args]",
		Short: "list, add, remove and promote the cluster's members",
		Long: `Changes the cluster's membership through the Raft log, one change at a time
(admin once auth is on). To grow the cluster, add a learner, start it, promote
it once it has caught up; to replace a dead member, remove it, then add the
new one. See OPERATIONS.md.`,
		Example: "  raftlock member list\n  raftlock member add https://10.0.0.4:7071 --learner\n  raftlock member promote 4\n  raftlock member remove 2",
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want list, add, remove or promote"))
		}),
	}
	c.AddCommand(newMemberListCommand(e), newMemberAddCommand(e), newMemberRemoveCommand(e), newMemberPromoteCommand(e))
	return c
}

func newMemberListCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "list [flags]",
		Short:   "list the members",
		Example: "  raftlock member list\n  raftlock member list -o json",
	}
	output := outputFlag(c.Flags())
	check := func(args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected arguments %q", args)
		}
		return checkOutput(*output)
	}
	c.RunE = e.authRun(check, func(ctx context.Context, cl *client.Client, _ []string) int {
		ms, err := cl.Members(ctx)
		if err != nil {
			return e.fail("member list: %v", err)
		}
		return e.printMembers(*output, ms)
	})
	return c
}

// printMembers prints ms as a table, or as {"members":[…]} with -o json.
func (e *env) printMembers(output string, ms []api.Member) int {
	if output == "json" {
		return e.writeJSON(api.MemberList{Members: ms})
	}
	fmt.Fprintf(e.stdout, "%-4s %-8s %-32s %s\n", "ID", "ROLE", "PEER URL", "CLIENT URL")
	for _, m := range ms {
		role := "voter"
		if m.Learner {
			role = "learner"
		}
		client := m.ClientURL
		if client == "" {
			client = "(not started)"
		}
		fmt.Fprintf(e.stdout, "%-4d %-8s %-32s %s\n", m.ID, role, m.PeerURL, client)
	}
	return exitOK
}

func newMemberAddCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "add [flags] PEER_URL",
		Short: "add a member at PEER_URL and print how to start it",
		Long: `Adds a member whose peer URL (its --advertise-peer) is PEER_URL; the cluster
chooses its ID. Then start it with that ID, an empty data dir,
--initial-cluster-state existing and --initial-cluster naming every member:
the command prints that line. With --learner it receives the log without
voting until "raftlock member promote ID": adding a learner never weakens the
quorum. An add whose answer was lost is not retried: list the members.`,
		Example: "  raftlock member add https://10.0.0.4:7071 --learner",
	}
	learner := c.Flags().Bool("learner", false, "add it as a learner (promote it once it has caught up)")
	output := outputFlag(c.Flags())
	check := func(args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want one PEER_URL, got %d arguments", len(args))
		}
		if err := api.ValidatePeerURL("PEER_URL", args[0]); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "raftlock: invalid_argument: "))
		}
		return checkOutput(*output)
	}
	c.RunE = e.authRun(check, func(ctx context.Context, cl *client.Client, args []string) int {
		added, err := cl.AddMember(ctx, args[0], *learner)
		if err != nil {
			return e.fail("member add: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(added)
		}
		role := "voter"
		if added.Member.Learner {
			role = "learner"
		}
		fmt.Fprintf(e.stdout, "added member %d (%s) at %s\n", added.Member.ID, role, added.Member.PeerURL)
		fmt.Fprintf(e.stdout, "start it with an empty data dir and:\n  raftlockd --id %d --advertise-peer %s --initial-cluster-state existing --initial-cluster %s\n",
			added.Member.ID, added.Member.PeerURL, initialCluster(added.Members, added.Member))
		return exitOK
	})
	return c
}

// initialCluster renders ms (with m, which the list may not show yet) as
// --initial-cluster's ID=URL,...
func initialCluster(ms []api.Member, m api.Member) string {
	if !slices.ContainsFunc(ms, func(x api.Member) bool { return x.ID == m.ID }) {
		ms = append(slices.Clone(ms), m)
	}
	slices.SortFunc(ms, func(a, b api.Member) int { return int(a.ID) - int(b.ID) })
	parts := make([]string, len(ms))
	for i, x := range ms {
		parts[i] = fmt.Sprintf("%d=%s", x.ID, x.PeerURL)
	}
	return strings.Join(parts, ",")
}

func newMemberIDCommand(e *env, use, short, long, verb string, do func(*client.Client, context.Context, uint64) ([]api.Member, error)) *cobra.Command {
	c := &cobra.Command{Use: use + " [flags] ID", Short: short, Long: long, Example: "  raftlock member " + use + " 4"}
	output := outputFlag(c.Flags())
	check := func(args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("want one member ID, got %d arguments", len(args))
		}
		if id, err := strconv.ParseUint(args[0], 10, 64); err != nil || id == 0 {
			return fmt.Errorf("member ID %q: want a positive integer", args[0])
		}
		return checkOutput(*output)
	}
	c.RunE = e.authRun(check, func(ctx context.Context, cl *client.Client, args []string) int {
		id, _ := strconv.ParseUint(args[0], 10, 64)
		ms, err := do(cl, ctx, id)
		if err != nil {
			return e.fail("member %s: %v", use, err)
		}
		if *output != "json" {
			fmt.Fprintf(e.stdout, "member %d %s\n", id, verb)
		}
		return e.printMembers(*output, ms)
	})
	return c
}

func newMemberRemoveCommand(e *env) *cobra.Command {
	return newMemberIDCommand(e, "remove", "remove member ID for good",
		`Removes member ID from the cluster for good: it stops itself, the others
refuse its messages, and its ID is never used again. Removing the leader first
hands leadership to another voter. Refused when too few started voters would
remain for a quorum.`, "removed", (*client.Client).RemoveMember)
}

func newMemberPromoteCommand(e *env) *cobra.Command {
	return newMemberIDCommand(e, "promote", "make learner ID a voter",
		`Makes learner ID a voter. Refused until the learner has caught up with the
leader's log (within 1,000 entries, holding the state of the leader's last
snapshot): retry shortly.`, "promoted", (*client.Client).PromoteMember)
}
