// Command raftlock is the command-line client of a raftlock cluster.
//
//	raftlock [global flags] COMMAND [flags] [args]
//
// Commands:
//
//	lock NAME -- CMD [ARGS...]          run CMD while holding lock NAME
//	locks [--prefix P]                  list the locks that are held or waited for
//	lock-info NAME                      show one lock: holder, token, since, waiters
//	elect NAME VALUE [-- CMD [ARGS...]] lead election NAME as VALUE (running CMD while leading)
//	observe NAME                        print each leader change of election NAME
//	elections [--prefix P]              list the elections that have a leader or candidates
//	election-info NAME                  show one election: leader, term, since, candidates
//	sidecar --election NAME --id ID     lead as ID and serve the leader over HTTP (/ready, ...)
//	status                              show the answering node's view of the cluster
//	auth user|role|token|whoami|enable  administer users, roles and tokens (admin)
//	lock-check NAME TOKEN               is TOKEN the holder's token now? (exit 0, else 3)
//	leader transfer [ID]                hand the Raft leadership over (admin)
//	member list|add|remove|promote      change the cluster's members (admin)
//	snapshot save|status FILE           back the state up; check a backup (admin)
//	version                             print the version
//	completion bash|zsh|fish            print the shell completion script
//	help [COMMAND]                      show the help of raftlock or of COMMAND
//
// Global flags, accepted before or after the command: --endpoints (comma-
// separated client URLs; default $RAFTLOCK_ENDPOINTS, else
// http://127.0.0.1:7070), --timeout (deadline of each request), and for a
// cluster with TLS or auth: --cacert (the CA that signed the members'
// client certificates; default $RAFTLOCK_CACERT, else the system's roots),
// --cert and --key (a client certificate, whose common name is the
// principal; $RAFTLOCK_CERT, $RAFTLOCK_KEY) and --auth-token-file (a file
// holding a bearer token; $RAFTLOCK_AUTH_TOKEN_FILE).
//
// Flags are spelt with two dashes, --ttl 10s or --ttl=10s; -h (--help) and
// -o (--output) are the only short forms. A command's flags may come before,
// between and after its arguments, up to a "--" after which every argument
// is an argument. lock and elect are the exception: their flags end where
// CMD begins (after "--", or at the first argument after NAME, or after
// NAME VALUE, that is not a flag), so that CMD's own flags stay CMD's:
//
//	raftlock lock --ttl 30s jobs/x --try ./script --verbose   # --verbose is the script's
//
// raftlock completion bash (zsh, fish) prints a script that completes
// commands and flags in that shell:
//
//	raftlock completion bash > /etc/bash_completion.d/raftlock
//
// # Exit codes
//
//	0       success; for lock and elect: CMD exited 0; elect without CMD,
//	        observe, sidecar: stopped by SIGINT or SIGTERM (elect and sidecar resign);
//	        help, --help and completion
//	1       an error: the cluster is unreachable, a request failed, ...
//	2       usage: unknown command, bad flag or argument
//	3       lock: the lock is held by another session (--try, or --wait ran out); CMD did not run
//	        elect: --wait ran out before it led; CMD did not run
//	4       lock: the lock was lost while CMD ran (its session expired or was
//	        closed by someone else); CMD got SIGTERM, then SIGKILL after --kill-grace
//	        elect: the leadership was lost (with CMD: CMD got SIGTERM, then SIGKILL)
//	126     lock, elect, sidecar: CMD was found but could not be started
//	127     lock, elect, sidecar: CMD was not found
//	128+N   lock, elect: raftlock got signal N while waiting for the lock or
//	        campaigning; or CMD was killed by signal N
//	other   lock, elect, sidecar: CMD's own exit code, passed through (sidecar:
//	        when CMD exits by itself while leading; sidecar then resigns)
//
// A CMD that itself exits with 1 to 4 cannot be told apart from raftlock's
// codes by the code alone; raftlock says on stderr whenever it, and not CMD,
// chose the code. A sidecar's CMD that ends because the leadership was lost
// does not end the sidecar: it campaigns again.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
	"github.com/raftlock/raftlock/version"
)

// Exit codes. See the package documentation.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitHeld      = 3
	exitLost      = 4
	exitCannotRun = 126
	exitNotFound  = 127
)

// defaultEndpoint is used when neither --endpoints nor RAFTLOCK_ENDPOINTS is set.
const defaultEndpoint = "http://127.0.0.1:7070"

func init() {
	// List the commands in the order commands() gives them (lock, locks,
	// lock-info, ...), not alphabetically. Set once, before anything runs.
	cobra.EnableCommandSorting = false
}

func main() {
	if code, ok := supervisorMode(os.Args[1:]); ok {
		os.Exit(code) // raftlock run again as the supervisor of a CMD
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// env is what a command gets from run: its streams, the environment and
// the global flags. Each run has its own env and command tree.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	endpoints string        // --endpoints; "" means $RAFTLOCK_ENDPOINTS or defaultEndpoint
	timeout   time.Duration // --timeout
	sec       security      // --cacert, --cert, --key, --auth-token-file

	code int // exit code of the command that ran (set by action)
}

// command is one subcommand of raftlock: its name (the first word of its
// Use) and newCmd, which builds it bound to an env.
type command struct {
	name   string
	newCmd func(e *env) *cobra.Command
}

// commands returns the subcommands, in the order the help lists them.
func commands() []command {
	return []command{
		{"lock", newLockCommand},
		{"locks", newLocksCommand},
		{"lock-info", newLockInfoCommand},
		{"lock-check", newLockCheckCommand},
		{"semaphores", newSemaphoresCommand},
		{"semaphore-info", newSemaphoreInfoCommand},
		{"elect", newElectCommand},
		{"observe", newObserveCommand},
		{"elections", newElectionsCommand},
		{"election-info", newElectionInfoCommand},
		{"sidecar", newSidecarCommand},
		{"status", newStatusCommand},
		{"auth", newAuthCommand},
		{"leader", newLeaderCommand},
		{"snapshot", newSnapshotCommand},
		{"member", newMemberCommand},
		{"version", newVersionCommand},
		{"completion", newCompletionCommand},
	}
}

// run runs the command line args (without the program name) and returns the
// exit code. It is main without os.Exit, so that tests can call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCommand(e)
	// Never nil: with nil args cobra reads os.Args.
	root.SetArgs(append([]string{}, args...))
	// Every error cobra returns is about the command line: an unknown
	// command or flag, a bad flag value. The commands report their own
	// errors and return their exit code through e.code.
	if c, err := root.ExecuteContextC(ctx); err != nil {
		return e.usageError(c, withDashHint(c, args, err))
	}
	return e.code
}

// withDashHint adds a hint to err when args, up to "--", spell one of c's
// flags with a single dash (-ttl), as the standard flag package allowed
// before raftlock used cobra: cobra reads -ttl as the short flags -t -t -l,
// and "-endpoints URL status" as the command URL.
func withDashHint(c *cobra.Command, args []string, err error) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if c.LocalFlags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil {
			return fmt.Errorf("%w\n(flags take two dashes: --%s)", err, name)
		}
	}
	return err
}

const rootAbout = `raftlock is the command-line client of a raftlock cluster.`

const rootExitCodes = `Exit codes: 0 ok; 1 error; 2 usage; 3 lock held or semaphore full (lock
--try or --wait), or elect --wait ran out; 4 lock, permit or leadership
lost; 126/127 CMD not runnable/not found; 128+N signal N; otherwise lock,
elect and sidecar pass CMD's exit code through.`

const rootExample = `  raftlock lock nightly-backup -- ./backup.sh --full
  raftlock --endpoints http://10.0.0.1:7070,http://10.0.0.2:7070 locks --prefix jobs/
  raftlock elect scheduler 10.0.0.7:8080 -- ./scheduler
  raftlock observe scheduler
  raftlock sidecar --election web --id "$POD_NAME" --listen :4040
  raftlock status --output json
  raftlock --endpoints https://10.0.0.1:7070 --cacert ca.pem --auth-token-file alice.token locks
  raftlock completion bash > /etc/bash_completion.d/raftlock`

// newRootCommand returns the command tree of raftlock, bound to e: the
// global flags, the subcommands, help, and the usage that goes with errors.
func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:     "raftlock [global flags] COMMAND [flags] [args]",
		Short:   "the command-line client of a raftlock cluster",
		Long:    rootAbout,
		Example: rootExample,
		// run prints errors and the usage, and chooses the exit code.
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true}, // ours is in commands()
		// --version prints what "raftlock version" prints.
		Version: version.Get().String(),
		// Runnable, so that "raftlock" alone is a usage error and not the
		// help; with arguments, cobra reports the unknown command.
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command"))
		}),
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetVersionTemplate("raftlock {{.Version}}\n")
	root.SetErr(e.stderr)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { writeUsage(c.OutOrStdout(), c) })
	root.SetUsageFunc(func(c *cobra.Command) error { writeUsage(c.OutOrStderr(), c); return nil })
	root.SetHelpCommand(newHelpCommand(e))
	fs := root.PersistentFlags()
	fs.StringVar(&e.endpoints, "endpoints", "", "comma-separated client URLs of the cluster (default $RAFTLOCK_ENDPOINTS, else "+defaultEndpoint+")")
	fs.DurationVar(&e.timeout, "timeout", 10*time.Second, "deadline of each request to the cluster")
	fs.StringVar(&e.sec.caCert, "cacert", "", "PEM file of the CA(s) that signed the cluster's client certificates, for https:// endpoints (default $"+envCACert+", else the system's roots)")
	fs.StringVar(&e.sec.cert, "cert", "", "PEM file of a client certificate, whose common name is the principal (default $"+envCert+"); needs --key")
	fs.StringVar(&e.sec.key, "key", "", "PEM file of the private key of --cert (default $"+envKey+")")
	fs.StringVar(&e.sec.tokenFile, "auth-token-file", "", "file holding a bearer token, sent with every request (default $"+envAuthTokenFile+")")
	for _, c := range commands() {
		root.AddCommand(c.newCmd(e))
	}
	return root
}

// newHelpCommand returns "raftlock help [COMMAND]". Unlike cobra's own, an
// unknown COMMAND is a usage error (exit 2), as any unknown command is.
func newHelpCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show the help of raftlock or of a command",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			parent, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range parent.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: e.action(func(c *cobra.Command, args []string) int {
			target, _, err := c.Root().Find(args)
			if err != nil {
				return e.usageError(c.Root(), err)
			}
			target.InitDefaultHelpFlag() // listed with the flags, as with --help
			writeUsage(e.stdout, target)
			return exitOK
		}),
	}
}

// action adapts body, which reports its own errors and returns the exit
// code, to cobra's RunE: the code is kept in e for run to return.
func (e *env) action(body func(c *cobra.Command, args []string) int) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		e.code = body(c, args)
		return nil
	}
}

// helpWidth is the width the flag descriptions of the help are wrapped to.
const helpWidth = 80

// writeUsage writes the help of c to w: synopsis, about, subcommands,
// flags and examples. It is the help (stdout, exit 0) and, after a usage
// error, the usage (stderr, exit 2).
func writeUsage(w io.Writer, c *cobra.Command) {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n", c.UseLine())
	if c.Long != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.Long))
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\nCommands:\n")
		pad := 0
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				pad = max(pad, len(sub.Name()))
			}
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(&b, "  %-*s  %s\n", pad, sub.Name(), sub.Short)
			}
		}
	}
	example := "Example:"
	if c.HasParent() {
		if fs := c.LocalFlags(); fs.HasAvailableFlags() {
			fmt.Fprintf(&b, "\nFlags:\n%s", fs.FlagUsagesWrapped(helpWidth))
		}
		if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
			fmt.Fprintf(&b, "\nGlobal flags:\n%s", fs.FlagUsagesWrapped(helpWidth))
		}
	} else {
		fmt.Fprintf(&b, "\nGlobal flags (also accepted after the command):\n%s", c.PersistentFlags().FlagUsagesWrapped(helpWidth))
		fmt.Fprintf(&b, "\n%s\n", rootExitCodes)
		example = "Examples:"
	}
	if c.Example != "" {
		fmt.Fprintf(&b, "\n%s\n%s\n", example, strings.TrimRight(c.Example, "\n"))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for a command's flags and an example.\n", c.CommandPath())
	}
	io.WriteString(w, b.String())
}

// usageError handles an error in the command line of c: err and c's usage
// go to stderr, exit 2. pflag.ErrHelp (--help where parseFlagsAfter parses)
// is the help instead: to stdout, exit 0.
func (e *env) usageError(c *cobra.Command, err error) int {
	if errors.Is(err, pflag.ErrHelp) {
		writeUsage(e.stdout, c)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "%s: %s\n\n", c.CommandPath(), strings.TrimRight(err.Error(), "\n"))
	writeUsage(e.stderr, c)
	return exitUsage
}

// parseFlagsAfter parses the flags that follow a positional argument of a
// command whose flags are not interspersed (lock NAME, elect NAME VALUE):
// cobra stops at the first positional argument, so the flags after it are
// parsed here, up to the next positional argument or "--". It returns the
// arguments after those flags, untouched: they are CMD and CMD's own flags.
// --help gives pflag.ErrHelp.
func parseFlagsAfter(c *cobra.Command, args []string) ([]string, error) {
	fs := c.Flags() // the command's and the global flags, merged by cobra
	if err := fs.Parse(args); err != nil {
		return nil, withDashHint(c, args, err)
	}
	if help, err := fs.GetBool("help"); err == nil && help {
		return nil, pflag.ErrHelp
	}
	return fs.Args(), nil
}

// endpointList returns the endpoints from --endpoints, $RAFTLOCK_ENDPOINTS or
// the default, checked to be http(s) URLs.
func (e *env) endpointList() ([]string, error) {
	raw, from := e.endpoints, "--endpoints"
	if raw == "" {
		raw, from = e.getenv("RAFTLOCK_ENDPOINTS"), "RAFTLOCK_ENDPOINTS"
	}
	if strings.TrimSpace(raw) == "" {
		return []string{defaultEndpoint}, nil
	}
	var eps []string
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not a URL such as http://127.0.0.1:7070", from, p)
		}
		eps = append(eps, strings.TrimRight(p, "/"))
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%s: no URL in %q", from, raw)
	}
	return eps, nil
}

// newClient returns a client for the global flags, or an exit code after
// saying why not; c is the command that runs, for its usage.
func (e *env) newClient(c *cobra.Command) (*client.Client, int) {
	eps, err := e.endpointList()
	if err != nil {
		return nil, e.usageError(c, err)
	}
	if e.timeout <= 0 {
		return nil, e.usageError(c, fmt.Errorf("--timeout %v must be positive", e.timeout))
	}
	tlsCfg, err := e.tlsConfig()
	var token string
	if err == nil {
		token, err = e.authToken()
	}
	if fe := (flagError{}); errors.As(err, &fe) {
		return nil, e.usageError(c, err)
	} else if err != nil {
		return nil, e.fail("%v", err)
	}
	if tlsCfg != nil {
		for _, ep := range eps {
			if !strings.HasPrefix(ep, "https://") {
				return nil, e.usageError(c, fmt.Errorf("--cacert, --cert and --key (or their variables) are for https:// endpoints, and %s is not one", ep))
			}
		}
	}
	if ep := plainRemote(eps); token != "" && ep != "" {
		fmt.Fprintf(e.stderr, "raftlock: warning: the auth token goes in clear text to %s: use https:// on a shared network\n", ep)
	}
	cl, err := client.New(client.Config{Endpoints: eps, RequestTimeout: e.timeout, TLS: tlsCfg, AuthToken: token})
	if err != nil {
		fmt.Fprintf(e.stderr, "raftlock: %v\n", err)
		return nil, exitError
	}
	return cl, exitOK
}

// fail prints an error on stderr, "raftlock: " and format with args, and
// returns exitError. When an error among args says that no endpoint
// answered (client.UnreachableError), that alone is said, once, with what
// to do about it: which command failed matters less than that nothing
// could be asked. An error the server answered is said in its words
// (apiErrorText), after what the command was doing.
func (e *env) fail(format string, args ...any) int {
	for i, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		var ue *client.UnreachableError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "raftlock: %v: %s\n", ue, unreachableHint(ue))
			return exitError
		}
		if t, ok := e.apiErrorText(err); ok {
			args[i] = t
		}
	}
	fmt.Fprintf(e.stderr, "raftlock: "+format+"\n", args...)
	return exitError
}

// apiErrorText returns the server's answer in err (an *api.Error) as the
// CLI says it: the server's message and its code, without the SDK's
// layers. Refused for want of a principal, it says which flags give one.
func (e *env) apiErrorText(err error) (string, bool) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return "", false
	}
	if ae.Code == api.CodeUnauthenticated {
		token, _ := e.flagOrEnv(e.sec.tokenFile, "auth-token-file", envAuthTokenFile)
		cert, _ := e.flagOrEnv(e.sec.cert, "cert", envCert)
		if token == "" && cert == "" {
			return "auth is on, and this command sent neither a token nor a client certificate (unauthenticated): give one with --auth-token-file (or $" + envAuthTokenFile + "), or --cert and --key", true
		}
	}
	if ae.Message == "" {
		return ae.Code, true
	}
	return ae.Message + " (" + ae.Code + ")", true
}

// unreachableHint says what to do when no endpoint answered: check the TLS
// flags after a failed handshake, else the server and the endpoints.
func unreachableHint(ue *client.UnreachableError) string {
	var cv *tls.CertificateVerificationError
	var ae tls.AlertError
	var rh tls.RecordHeaderError
	if errors.As(ue, &cv) || errors.As(ue, &ae) || errors.As(ue, &rh) {
		return "check --cacert, --cert and --key (or $" + envCACert + ", $" + envCert + ", $" + envKey + ") and the endpoints' scheme"
	}
	return "is it running? set --endpoints or RAFTLOCK_ENDPOINTS"
}
