package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/client"
)

// newLeaderCommand is "raftlock leader transfer [ID]".
func newLeaderCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "leader COMMAND [flags] [args]",
		Short:   "operate the cluster's Raft leadership",
		Example: "  raftlock leader transfer      # to the voter whose log is furthest along\n  raftlock leader transfer 2",
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want transfer"))
		}),
	}
	c.AddCommand(newLeaderTransferCommand(e))
	return c
}

func newLeaderTransferCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "transfer [flags] [ID]",
		Short: "hand leadership to member ID (default: the most caught-up voter) and wait until it leads",
		Long: `Hands the Raft leadership to member ID, or without ID to the voter whose log
is furthest along, and waits until another member leads (admin once auth is
on). Do it before restarting the leader: the cluster then waits for no
election timeout. Exits 1 when leadership did not move within the election
timeout.`,
		Example: "  raftlock leader transfer\n  raftlock leader transfer 3 -o json",
	}
	output := outputFlag(c.Flags())
	check := func(args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("want at most one member ID, got %q", args)
		}
		if len(args) == 1 {
			if id, err := strconv.ParseUint(args[0], 10, 64); err != nil || id == 0 {
				return fmt.Errorf("member ID %q: want a positive integer", args[0])
			}
		}
		return checkOutput(*output)
	}
	c.RunE = e.authRun(check, func(ctx context.Context, cl *client.Client, args []string) int {
		var to uint64
		if len(args) == 1 {
			to, _ = strconv.ParseUint(args[0], 10, 64)
		}
		lt, err := cl.TransferLeader(ctx, to)
		if err != nil {
			return e.fail("leader transfer: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(lt)
		}
		fmt.Fprintf(e.stdout, "member %d leads (term %d)\n", lt.Leader, lt.Term)
		return exitOK
	})
	return c
}
