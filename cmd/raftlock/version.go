package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/version"
)

// newVersionCommand is "raftlock version": the CLI's own version (module
// version, VCS revision, Go version; see package version).
func newVersionCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "version [flags]",
		Short:   "print raftlock's version (module version, VCS revision, Go version)",
		Example: "  raftlock version\n  raftlock version -o json",
		Args:    cobra.NoArgs,
	}
	output := outputFlag(c.Flags())
	c.RunE = e.action(func(c *cobra.Command, _ []string) int {
		if err := checkOutput(*output); err != nil {
			return e.usageError(c, err)
		}
		v := version.Get()
		if *output == "json" {
			return e.writeJSON(v)
		}
		fmt.Fprintln(e.stdout, "raftlock", v)
		return exitOK
	})
	return c
}
