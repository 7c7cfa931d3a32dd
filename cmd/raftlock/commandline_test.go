package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/testserver"
)

// parseLock parses the arguments of "raftlock lock" as run does: cobra
// parses the flags before NAME, then parseArgs the rest.
func parseLock(e *env, args []string) (*cobra.Command, *lockOptions, error) {
	c, o := &cobra.Command{Use: "lock"}, &lockOptions{}
	o.addFlags(c.Flags())
	if err := c.ParseFlags(args); err != nil {
		return c, nil, err
	}
	if err := o.parseArgs(c, c.Flags().Args()); err != nil {
		return c, nil, err
	}
	return c, o, nil
}

// parseElect is parseLock for "raftlock elect".
func parseElect(e *env, args []string) (*cobra.Command, *electOptions, error) {
	c, o := &cobra.Command{Use: "elect"}, &electOptions{}
	o.addFlags(c.Flags())
	if err := c.ParseFlags(args); err != nil {
		return c, nil, err
	}
	if err := o.parseArgs(c, c.Flags().Args()); err != nil {
		return c, nil, err
	}
	return c, o, nil
}

// The table of commands and the commands it builds agree on the names.
func TestCommandNames(t *testing.T) {
	e := &env{getenv: func(string) string { return "" }}
	for _, c := range commands() {
		if got := c.newCmd(e).Name(); got != c.name {
			t.Errorf("commands() has %q, but its command is named %q", c.name, got)
		}
	}
}

// What the standard flag package did and cobra would do differently unless
// told: each of these is a behaviour of raftlock before it used cobra.
func TestCommandLineAsBeforeCobra(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	viaEnv := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	echoArgs := []string{"sh", "-c", `echo "$RAFTLOCK_NAME $*"`, "sh"} // CMD prints the lock and its arguments

	for _, c := range []struct {
		what   string
		env    map[string]string
		args   []string
		stdout string // the whole stdout, trimmed
	}{
		{"flags after NAME; CMD from the first non-flag; CMD's flags stay CMD's",
			viaEnv, append([]string{"lock", "job", "--ttl", "5s", "--owner", "me"}, append(echoArgs, "--ttl", "-x", "--")...), "job --ttl -x --"},
		{"after --, everything is CMD's",
			viaEnv, append([]string{"lock", "job", "--"}, append(echoArgs, "--", "--try", "-h")...), "job -- --try -h"},
		{"a NAME that looks like a flag, after --",
			viaEnv, append([]string{"lock", "--", "-job", "--"}, echoArgs...), "-job"},
		{"global flag after the command and after NAME",
			nil, append([]string{"lock", "--timeout", "5s", "job", "--endpoints", s.URL}, echoArgs...), "job"},
		{"global flag before the command beats RAFTLOCK_ENDPOINTS",
			map[string]string{"RAFTLOCK_ENDPOINTS": "http://127.0.0.1:1"}, append([]string{"--endpoints", s.URL, "lock", "job", "--"}, echoArgs...), "job"},
		{"elect: flags between NAME, VALUE and CMD",
			viaEnv, []string{"elect", "--ttl", "5s", "e1", "--wait", "5s", "v1", "--endpoints", s.URL, "sh", "-c", `echo "$RAFTLOCK_VALUE $*"`, "sh", "--wait", "1s"},
			"v1 --wait 1s"},
		{"-o, the short form of --output", viaEnv, []string{"lock-info", "-o", "json", "job"}, "}"},
	} {
		got := runCLI(t, c.env, c.args...)
		if got.code != exitOK || !strings.HasSuffix(strings.TrimSpace(got.stdout), c.stdout) {
			t.Errorf("%s: raftlock %q: exit %d (want 0), stdout %q (want %q), stderr %q", c.what, c.args, got.code, got.stdout, c.stdout, got.stderr)
		}
	}

	// --try and --wait after NAME are raftlock's: on a held lock, exit 3 at once.
	holder := r.session("30s", "other")
	r.acquire("held", holder)
	for _, args := range [][]string{
		{"lock", "held", "--try", "--", "true"},
		{"lock", "held", "--wait", "100ms", "true"},
		{"lock", "--ttl", "5s", "held", "--wait", "100ms", "--", "true"},
	} {
		if got := runCLI(t, viaEnv, args...); got.code != exitHeld {
			t.Errorf("raftlock %q on a held lock: exit %d, want %d; stderr %q", args, got.code, exitHeld, got.stderr)
		}
	}
	r.do("DELETE", api.SessionPath(holder), "", nil)

	// Help: on stdout, exit 0, wherever it is asked for.
	for _, args := range [][]string{
		{"help", "lock"}, {"lock", "--help"}, {"lock", "-h"}, {"lock", "job", "--help"}, {"elect", "e", "v", "-h"},
		{"help", "status"}, {"status", "--output", "json", "--help"}, {"help", "completion"},
	} {
		got := runCLI(t, nil, args...)
		want := "Usage: raftlock " + args[0] + " "
		if args[0] == "help" {
			want = "Usage: raftlock " + args[1] + " "
		}
		if got.code != exitOK || !strings.HasPrefix(got.stdout, want) || got.stderr != "" {
			t.Errorf("raftlock %q: exit %d (want 0), stdout %q (want it to start with %q), stderr %q", args, got.code, got.stdout, want, got.stderr)
		}
	}

	// Usage errors: exit 2, the reason and the usage on stderr, nothing on stdout.
	for _, c := range []struct {
		args   []string
		stderr []string
	}{
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`, "Usage: raftlock [global flags]"}},
		{[]string{"lokc", "job", "--", "true"}, []string{`unknown command "lokc"`, "lock"}},
		{[]string{"help", "frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"--bogus", "status"}, []string{"unknown flag: --bogus", "Usage: raftlock [global flags]"}},
		{[]string{"status", "--bogus"}, []string{"unknown flag: --bogus", "Usage: raftlock status"}},
		{[]string{"lock", "--bogus", "job", "--", "true"}, []string{"unknown flag: --bogus", "Usage: raftlock lock"}},
		{[]string{"lock", "job", "--bogus", "--", "true"}, []string{"unknown flag: --bogus", "Usage: raftlock lock"}},
		{[]string{"elect", "e", "v", "--bogus"}, []string{"unknown flag: --bogus", "Usage: raftlock elect"}},
		{[]string{"lock", "job", "--ttl"}, []string{"--ttl", "Usage: raftlock lock"}},
		// The standard flag package took -ttl for --ttl; cobra does not, and says so.
		{[]string{"lock", "-ttl", "1s", "job", "--", "true"}, []string{"two dashes: --ttl"}},
		{[]string{"lock", "job", "-try", "--", "true"}, []string{"two dashes: --try"}},
		{[]string{"-endpoints", s.URL, "status"}, []string{"two dashes: --endpoints"}},
		{[]string{"completion"}, []string{"bash, zsh or fish"}},
		{[]string{"completion", "tcsh"}, []string{"bash, zsh or fish"}},
	} {
		got := runCLI(t, viaEnv, c.args...)
		ok := got.code == exitUsage && got.stdout == ""
		for _, w := range c.stderr {
			ok = ok && strings.Contains(got.stderr, w)
		}
		if !ok {
			t.Errorf("raftlock %q: exit %d (want 2), stdout %q (want none), stderr %q (want %q)", c.args, got.code, got.stdout, got.stderr, c.stderr)
		}
	}
}

// raftlock completion SHELL prints cobra's script for SHELL, and the
// script's helper command answers.
func TestCompletion(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_raftlock",
		"zsh":  "#compdef raftlock",
		"fish": "complete -c raftlock",
	} {
		got := runCLI(t, nil, "completion", shell)
		if got.code != exitOK || !strings.Contains(got.stdout, marker) || got.stderr != "" {
			t.Errorf("completion %s: exit %d (want 0), stderr %q, stdout lacks %q:\n%.300s", shell, got.code, got.stderr, marker, got.stdout)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"lock", "lock-info", "elect", "sidecar", "completion", "help"}},
		{[]string{"lock", "--t"}, []string{"--try", "--ttl", "--timeout"}},
		{[]string{"status", "-"}, []string{"--output", "--endpoints"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"help", "elect"}, []string{"elect", "election-info", "elections"}},
	} {
		got := runCLI(t, nil, append([]string{"__complete"}, c.args...)...)
		for _, w := range c.want {
			if got.code != exitOK || !strings.Contains(got.stdout, w+"\t") && !strings.Contains(got.stdout, w+"\n") {
				t.Errorf("__complete %q: exit %d, want %q among:\n%s%s", c.args, got.code, w, got.stdout, got.stderr)
			}
		}
	}
}
