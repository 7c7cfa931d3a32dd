package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

// newLockCheckCommand is "raftlock lock-check NAME TOKEN".
func newLockCheckCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "lock-check [flags] NAME TOKEN",
		Short: "tell whether TOKEN is the current fencing token of lock NAME (exit 0), or not (exit 3)",
		Long: `Asks the cluster whether TOKEN is the fencing token of NAME's holder now
(POST /v1/locks/{name}/check: a linearizable read, no log entry), or the
token of one of its shared holders. For a
resource driven by a script that cannot remember the highest token it
accepted: check before each write, and refuse it when the exit code is 3.
Needs the read permission on NAME once auth is on.`,
		Example: `  raftlock lock-check nightly-backup "$RAFTLOCK_TOKEN" && write-the-thing
  raftlock lock-check jobs/a 42 -o json`,
	}
	output := outputFlag(c.Flags())
	check := func(args []string) error {
		if len(args) != 2 {
			return fmt.Errorf("want NAME and TOKEN, got %d arguments", len(args))
		}
		if err := api.ValidateLockName(args[0]); err != nil {
			return err
		}
		if t, err := strconv.ParseUint(args[1], 10, 64); err != nil || t == 0 {
			return fmt.Errorf("TOKEN %q: want a positive integer", args[1])
		}
		return checkOutput(*output)
	}
	c.RunE = e.authRun(check, func(ctx context.Context, cl *client.Client, args []string) int {
		token, _ := strconv.ParseUint(args[1], 10, 64)
		got, err := cl.CheckToken(ctx, args[0], token)
		if err != nil {
			return e.fail("lock-check: %v", err)
		}
		if *output == "json" {
			e.writeJSON(got)
		} else if got.Current {
			fmt.Fprintf(e.stdout, "token %d is the current token of lock %q (session %s)\n", token, args[0], tokenHolder(got, token))
		} else if got.Holder != nil {
			fmt.Fprintf(e.stdout, "token %d is not current: lock %q is held by session %s with token %d\n", token, args[0], got.Holder.Session, got.Holder.Token)
		} else if len(got.Holders) > 0 {
			fmt.Fprintf(e.stdout, "token %d is not current: lock %q is held shared by %d sessions\n", token, args[0], len(got.Holders))
		} else {
			fmt.Fprintf(e.stdout, "token %d is not current: lock %q is free\n", token, args[0])
		}
		if !got.Current {
			return exitHeld
		}
		return exitOK
	})
	return c
}

// tokenHolder returns the session holding token according to a check's
// answer: the exclusive holder, or the shared holder with that token ("-"
// when the answer names neither).
func tokenHolder(got *api.CheckResponse, token uint64) string {
	if got.Holder != nil && got.Holder.Token == token {
		return got.Holder.Session.String()
	}
	for _, h := range got.Holders {
		if h.Token == token {
			return h.Session.String()
		}
	}
	return "-"
}
