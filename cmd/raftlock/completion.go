package main

import (
	"errors"

	"github.com/spf13/cobra"
)

const completionAbout = `Prints a script that completes raftlock's commands and flags in bash, zsh
or fish. The script asks raftlock itself what to complete (through the
hidden command "raftlock __complete"), so it follows the installed
version. Load it in each new shell, or install it once:

  bash  raftlock completion bash > /etc/bash_completion.d/raftlock
        (needs the bash-completion package), or in ~/.bashrc:
        source <(raftlock completion bash)
  zsh   raftlock completion zsh > "${fpath[1]}/_raftlock"
        (needs "autoload -U compinit; compinit" in ~/.zshrc)
  fish  raftlock completion fish > ~/.config/fish/completions/raftlock.fish

The completion takes effect in shells started afterwards.`

const completionExample = `  raftlock completion bash > /etc/bash_completion.d/raftlock
  source <(raftlock completion bash)
  raftlock completion zsh > "${fpath[1]}/_raftlock"
  raftlock completion fish > ~/.config/fish/completions/raftlock.fish`

// newCompletionCommand returns "raftlock completion", bound to e. It
// prints cobra's completion script for the shell on stdout.
func newCompletionCommand(e *env) *cobra.Command {
	shells := map[string]func(root *cobra.Command) error{
		"bash": func(root *cobra.Command) error { return root.GenBashCompletionV2(e.stdout, true) },
		"zsh":  func(root *cobra.Command) error { return root.GenZshCompletion(e.stdout) },
		"fish": func(root *cobra.Command) error { return root.GenFishCompletion(e.stdout, true) },
	}
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "print the shell completion script (bash, zsh or fish)",
		Long:      completionAbout,
		Example:   completionExample,
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: e.action(func(c *cobra.Command, args []string) int {
			if len(args) != 1 || shells[args[0]] == nil {
				return e.usageError(c, errors.New("want one shell: bash, zsh or fish"))
			}
			if err := shells[args[0]](c.Root()); err != nil {
				return e.fail("write the completion script: %v", err)
			}
			return exitOK
		}),
	}
}
