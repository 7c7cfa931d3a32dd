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
//
// Global flags, accepted before or after the command: --endpoints (comma-
// separated client URLs; default $RAFTLOCK_ENDPOINTS, else
// http://127.0.0.1:7070) and --timeout (deadline of each request).
//
// # Exit codes
//
//	0       success; for lock and elect: CMD exited 0; elect without CMD,
//	        observe, sidecar: stopped by SIGINT or SIGTERM (elect and sidecar resign)
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
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/raftlock/raftlock/client"
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

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// env is what a command gets from run: its streams, the environment and
// the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	endpoints string        // --endpoints; "" means $RAFTLOCK_ENDPOINTS or defaultEndpoint
	timeout   time.Duration // --timeout
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

func commands() []command {
	return []command{
		{"lock", "run a command while holding a lock", runLock},
		{"locks", "list the locks that are held or waited for", runLocks},
		{"lock-info", "show one lock: holder, fencing token, since, waiters", runLockInfo},
		{"elect", "lead an election, running a command while leading", runElect},
		{"observe", "print each leader change of an election", runObserve},
		{"elections", "list the elections that have a leader or candidates", runElections},
		{"election-info", "show one election: leader, term, since, candidates", runElectionInfo},
		{"sidecar", "lead an election and serve the leader over HTTP (/ready for probes)", runSidecar},
		{"status", "show the answering node's view of the cluster", runStatus},
	}
}

// run runs the command line args (without the program name) and returns the
// exit code. It is main without os.Exit, so that tests can call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, timeout: 10 * time.Second}
	fs := flag.NewFlagSet("raftlock", flag.ContinueOnError)
	e.globalFlags(fs)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			e.usage(stdout, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "raftlock: %v\n\n", err)
		e.usage(stderr, fs)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "raftlock: no command\n\n")
		e.usage(stderr, fs)
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		if len(rest) == 0 {
			e.usage(stdout, fs)
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, e, rest)
		}
	}
	fmt.Fprintf(stderr, "raftlock: unknown command %q\n\n", name)
	e.usage(stderr, fs)
	return exitUsage
}

// globalFlags registers the global flags on fs. Every subcommand registers
// them too, so they may come before or after the command; the current values
// are the defaults, so a value set before the command is kept.
func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.endpoints, "endpoints", e.endpoints, "comma-separated client URLs of the cluster (default $RAFTLOCK_ENDPOINTS, else "+defaultEndpoint+")")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "deadline of each request to the cluster")
}

func (e *env) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: raftlock [global flags] COMMAND [flags] [args]

raftlock is the command-line client of a raftlock cluster.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nGlobal flags (also accepted after the command):\n")
	printDefaults(w, fs)
	fmt.Fprint(w, `
Exit codes: 0 ok; 1 error; 2 usage; 3 lock held (lock --try or --wait), or
elect --wait ran out; 4 lock or leadership lost; 126/127 CMD not
runnable/not found; 128+N signal N; otherwise lock, elect and sidecar pass
CMD's exit code through.

Examples:
  raftlock lock nightly-backup -- ./backup.sh --full
  raftlock --endpoints http://10.0.0.1:7070,http://10.0.0.2:7070 locks --prefix jobs/
  raftlock elect scheduler 10.0.0.7:8080 -- ./scheduler
  raftlock observe scheduler
  raftlock sidecar --election web --id "$POD_NAME" --listen :4040
  raftlock status --output json

Run 'raftlock COMMAND --help' for a command's flags and an example.
`)
}

// printDefaults prints fs's flags to w.
func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// subcommand is a parsed-flags helper shared by the subcommands.
type subcommand struct {
	e        *env
	fs       *flag.FlagSet
	synopsis string // "lock [flags] NAME -- CMD [ARGS...]"
	about    string // a paragraph
	example  string // lines of examples
}

func (e *env) newSubcommand(name, synopsis, about, example string) *subcommand {
	fs := flag.NewFlagSet("raftlock "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e.globalFlags(fs)
	return &subcommand{e: e, fs: fs, synopsis: synopsis, about: about, example: example}
}

func (s *subcommand) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: raftlock %s\n\n%s\n\nFlags:\n", s.synopsis, strings.TrimSpace(s.about))
	printDefaults(w, s.fs)
	fmt.Fprintf(w, "\nExample:\n%s\n", strings.TrimRight(s.example, "\n"))
}

// parseError handles an error of flag parsing or arguments: help goes to
// stdout with exit 0, anything else to stderr with the usage and exit 2.
func (s *subcommand) parseError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		s.usage(s.e.stdout)
		return exitOK
	}
	fmt.Fprintf(s.e.stderr, "%s: %v\n\n", s.fs.Name(), err)
	s.usage(s.e.stderr)
	return exitUsage
}

// parse parses flags that may come before, between and after positional
// arguments, up to a "--", and returns the positional arguments.
func (s *subcommand) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := s.fs.Parse(args); err != nil {
			return nil, err
		}
		rest := s.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
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
// saying why not.
func (s *subcommand) newClient() (*client.Client, int) {
	eps, err := s.e.endpointList()
	if err != nil {
		return nil, s.parseError(err)
	}
	if s.e.timeout <= 0 {
		return nil, s.parseError(fmt.Errorf("--timeout %v must be positive", s.e.timeout))
	}
	c, err := client.New(client.Config{Endpoints: eps, RequestTimeout: s.e.timeout})
	if err != nil {
		fmt.Fprintf(s.e.stderr, "raftlock: %v\n", err)
		return nil, exitError
	}
	return c, exitOK
}

// fail prints err on stderr and returns exitError.
func (e *env) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "raftlock: "+format+"\n", args...)
	return exitError
}
