// Command raftlock-bench measures raftlock against etcd with the same
// workloads: raftlock through the SDK in client/, etcd through
// clientv3/concurrency (Mutex, Election).
//
// With --spawn it starts a local 3-node cluster of each on free 127.0.0.1
// ports in a temporary directory (raftlockd processes, built with go
// build unless --raftlockd is given; etcd members as child processes of
// this binary, each running one embed.Etcd with default settings), runs
// every cell against both, alternating, and prints a side-by-side table
// with the ratios raftlock/etcd. Without --spawn it runs against one
// cluster: --target raftlock|etcd --endpoints URL,...
//
// Workloads:
//
//	lock-uncontended  each worker its own lock name: acquire+release cycles
//	lock-contended    all workers one lock name: the hand-off
//	election          each worker its own election: campaign+resign cycles
//	keepalive         N sessions kept alive: leader CPU, disk writes, RSS
//	scale             N held locks: RSS, snapshot size, restart-to-ready
//
// The machine it runs on is shared and noisy, so one run per target can
// mislead. --rounds N (default 1) runs every cycle cell (lock-uncontended,
// lock-contended, election, at each worker count) N times per target,
// alternating the targets round by round (raftlock, [raftlock-base,] etcd,
// raftlock, ...), so that slow drift of the machine hits them alike. The
// table then shows per target the median over the rounds (for an even N
// the mean of the two middle values), the total for counts (cycles,
// errors), and the range of cycles_per_s, "10146 (9870–10412)"; a ratio
// is the median of the per-round ratios (round i of raftlock over round i
// of etcd) with their range, "3.21x (2.87–3.44)". --json prints a line
// per round and target (with "round") and, after each cell, a line with
// "summary": true holding those medians and ranges. keepalive and scale
// run once whatever N is (see rounds.go for why). With N 1 the output is
// that of a single run, without round numbers or summaries.
//
// --tls (with --spawn) runs every cluster with TLS on both ports, from a
// CA and certificates made in the temporary directory: mutual TLS between
// members with their common name pinned, https client URLs with client
// certificates required, on raftlock and etcd alike; the raftlock SDK and
// the etcd client present a client certificate. See tls.go for the
// details and why etcd's HTTP endpoints get a port of their own.
//
// Every cell is bounded in time, and every spawned process is killed at
// the end, also on Ctrl-C.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == "etcd-member" {
		err = runEtcdMember(ctx, os.Args[2:], os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "raftlock-bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	spawn             bool
	target            string
	endpoints         []string
	workloads         []string
	workers           []int
	duration          time.Duration
	ttl               time.Duration
	sessions          int
	keepaliveDuration time.Duration
	locks             int
	openers           int
	idlePerHost       int
	memberProcs       int // --member-gomaxprocs; 0: the members inherit
	jsonOut           bool
	markdown          bool
	raftlockd         string
	cpuprofile        string
	keep              bool
	keepaliveClients  int
	baseline          string
	baselinePerSess   bool
	baselineUnbatched bool
	unbatched         bool
	leaderProfiles    string
	rounds            int
	tls               bool
	etcdSharedPort    bool
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("raftlock-bench", flag.ContinueOnError)
	fs.SetOutput(out)
	var endpoints, workloads, workers string
	fs.BoolVar(&o.spawn, "spawn", false, "start a local 3-node raftlock cluster and a 3-member etcd cluster, run every cell against both, print a side-by-side table")
	fs.StringVar(&o.target, "target", "", "without --spawn: raftlock or etcd")
	fs.StringVar(&endpoints, "endpoints", "", "without --spawn: comma-separated client URLs of the target cluster")
	fs.StringVar(&workloads, "workloads", strings.Join([]string{wlUncontended, wlContended, wlKeepalive}, ","), "comma-separated workloads: "+strings.Join(allWorkloads, ", ")+", or all")
	fs.StringVar(&workers, "workers", "1,8,64", "comma-separated worker counts of the cycle workloads")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each cycle cell")
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "TTL of every session (etcd rounds it up to whole seconds)")
	fs.IntVar(&o.sessions, "sessions", 10000, "keepalive: sessions kept alive")
	fs.DurationVar(&o.keepaliveDuration, "keepalive-duration", 20*time.Second, "keepalive: measurement window, after the sessions are open")
	fs.IntVar(&o.locks, "locks", 100000, "scale: held locks")
	fs.IntVar(&o.openers, "openers", 64, "keepalive and scale: concurrent requests that open sessions and locks")
	fs.IntVar(&o.memberProcs, "member-gomaxprocs", 0, "with --spawn: run every member of every cluster (raftlock and etcd alike) with GOMAXPROCS set to this; 0 leaves it to the Go runtime (one per CPU)")
	fs.IntVar(&o.idlePerHost, "http-idle-per-host", 32, "raftlock: idle HTTP connections kept per host (32 is the SDK's default)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON line per cell instead of the table")
	fs.BoolVar(&o.markdown, "markdown", false, "print the table as markdown")
	fs.StringVar(&o.raftlockd, "raftlockd", "", "with --spawn: the raftlockd binary (default: go build it from the module in the working directory)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (the client side) to this file")
	fs.BoolVar(&o.keep, "keep", false, "with --spawn: keep the temporary directory (data dirs and logs)")
	fs.IntVar(&o.keepaliveClients, "keepalive-clients", 4, "keepalive: raftlock SDK Clients the sessions are spread over (each renews its sessions together)")
	fs.StringVar(&o.baseline, "baseline-raftlockd", "", "with --spawn: also start a raftlock cluster from this raftlockd binary (e.g. an older build) and run every cell against it as target raftlock-base, for a before/after comparison in the same run")
	fs.BoolVar(&o.baselineUnbatched, "baseline-unbatched-locks", false, "with --baseline-raftlockd: the raftlock-base target's SDK sends every acquire and release alone (the SDK before POST /v1/batch)")
	fs.BoolVar(&o.unbatched, "unbatched", false, "with --spawn: also run every cell against the raftlock cluster as target "+unbatchedTarget+", whose SDK sends every acquire and release alone (one REST request per operation, as a client without the Go SDK's batching: curl, Python, Java), with a column "+unbatchedTarget+"/etcd; with --target raftlock: that target's SDK does so (the target is named "+unbatchedTarget+")")
	fs.BoolVar(&o.baselinePerSess, "baseline-per-session-keepalives", false, "with --baseline-raftlockd: the raftlock-base target's SDK renews each session with its own request (the SDK before the batched keep-alive)")
	fs.IntVar(&o.rounds, "rounds", 1, "run every cycle cell (lock-uncontended, lock-contended, election) this many times per target, the targets alternating round by round; the table shows medians with (min–max), --json a line per round and a summary per cell. keepalive and scale always run once")
	fs.BoolVar(&o.tls, "tls", false, "with --spawn: run every cluster with TLS on both ports (certificates made in a temporary directory): mutual TLS between members with their common name pinned, https client URLs with client certificates required; the raftlock SDK and the etcd client present a client certificate")
	fs.BoolVar(&o.etcdSharedPort, "etcd-tls-shared-port", false, "with --tls: serve etcd's gRPC and HTTP on its one client port, etcd's default (gRPC then goes through net/http's HTTP/2 server); by default etcd's HTTP endpoints get a port of their own (--listen-client-http-urls), so that gRPC is served natively as without TLS")
	fs.StringVar(&o.leaderProfiles, "leader-cpuprofile-dir", "", "with --spawn: start raftlockd with --pprof-listen and write a CPU profile of the raftlock leader during each cycle cell into this directory")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: raftlock-bench --spawn [flags]\n       raftlock-bench --target raftlock|etcd --endpoints URL,... [flags]\n\nBenchmarks raftlock against etcd, on loopback (127.0.0.1) only.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.workers, err = parseInts(workers); err != nil {
		return nil, fmt.Errorf("--workers: %w", err)
	}
	if o.workloads, err = parseWorkloads(workloads); err != nil {
		return nil, fmt.Errorf("--workloads: %w", err)
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			if err := checkLoopback(e); err != nil {
				return nil, fmt.Errorf("--endpoints: %w", err)
			}
			o.endpoints = append(o.endpoints, e)
		}
	}
	switch {
	case o.spawn && (o.target != "" || len(o.endpoints) > 0):
		return nil, errors.New("--spawn starts its own clusters: it takes neither --target nor --endpoints")
	case !o.spawn && o.target != "raftlock" && o.target != "etcd":
		return nil, fmt.Errorf("--target %q: want raftlock or etcd (or use --spawn)", o.target)
	case !o.spawn && len(o.endpoints) == 0:
		return nil, errors.New("--endpoints: give the client URLs of the target cluster (or use --spawn)")
	case !o.spawn && o.raftlockd != "":
		return nil, errors.New("--raftlockd is only used with --spawn")
	case o.duration <= 0:
		return nil, fmt.Errorf("--duration %v: must be positive", o.duration)
	case o.keepaliveDuration <= 0:
		return nil, fmt.Errorf("--keepalive-duration %v: must be positive", o.keepaliveDuration)
	case o.ttl < time.Second:
		return nil, fmt.Errorf("--ttl %v: must be at least 1s", o.ttl)
	case o.sessions <= 0:
		return nil, fmt.Errorf("--sessions %d: must be positive", o.sessions)
	case o.locks <= 0:
		return nil, fmt.Errorf("--locks %d: must be positive", o.locks)
	case o.openers <= 0:
		return nil, fmt.Errorf("--openers %d: must be positive", o.openers)
	case o.keepaliveClients <= 0:
		return nil, fmt.Errorf("--keepalive-clients %d: must be positive", o.keepaliveClients)
	case !o.spawn && (o.baseline != "" || o.leaderProfiles != ""):
		return nil, errors.New("--baseline-raftlockd and --leader-cpuprofile-dir are only used with --spawn")
	case o.tls && !o.spawn:
		return nil, errTLSNeedsSpawn
	case o.etcdSharedPort && !o.tls:
		return nil, errors.New("--etcd-tls-shared-port needs --tls")
	case o.baselinePerSess && o.baseline == "":
		return nil, errors.New("--baseline-per-session-keepalives needs --baseline-raftlockd")
	case o.unbatched && !o.spawn && o.target != "raftlock":
		return nil, errors.New("--unbatched is only used with --spawn or --target raftlock")
	case o.baselineUnbatched && o.baseline == "":
		return nil, errors.New("--baseline-unbatched-locks needs --baseline-raftlockd")
	case o.memberProcs != 0 && !o.spawn:
		return nil, errors.New("--member-gomaxprocs is only used with --spawn")
	case o.memberProcs < 0:
		return nil, fmt.Errorf("--member-gomaxprocs %d: must be positive (or 0, the runtime's choice)", o.memberProcs)
	case o.idlePerHost <= 0:
		return nil, fmt.Errorf("--http-idle-per-host %d: must be positive", o.idlePerHost)
	case o.rounds < 1:
		return nil, fmt.Errorf("--rounds %d: must be at least 1", o.rounds)
	case o.jsonOut && o.markdown:
		return nil, errors.New("--json and --markdown exclude each other")
	}
	return o, nil
}

// checkLoopback accepts only http(s) URLs on a loopback host: the
// benchmark loads what it targets hard, and is meant for local clusters.
func checkLoopback(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an http:// URL with a host", endpoint)
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not on a loopback address (127.0.0.1, ::1, localhost): raftlock-bench only targets local clusters", endpoint)
	}
	return nil
}

// parseInts parses "1,8,64": positive integers, no duplicates.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d appears twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseWorkloads parses a comma-separated list of workloads ("all" for
// every one) and returns them in their running order.
func parseWorkloads(s string) ([]string, error) {
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "all":
			for _, w := range allWorkloads {
				want[w] = true
			}
		case slices.Contains(allWorkloads, f):
			want[f] = true
		default:
			return nil, fmt.Errorf("unknown workload %q: want %s or all", f, strings.Join(allWorkloads, ", "))
		}
	}
	var out []string
	for _, w := range allWorkloads {
		if want[w] {
			out = append(out, w)
		}
	}
	return out, nil
}

// env is a target with its spawned cluster (nil when not spawned).
type env struct {
	t  Target
	cl *cluster
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	var envs []env
	defer func() {
		for _, e := range envs {
			e.t.Close()
		}
	}()
	if o.spawn {
		dir, err := os.MkdirTemp("", "raftlock-bench-")
		if err != nil {
			return err
		}
		if o.keep {
			fmt.Fprintf(stderr, "data dirs and logs in %s\n", dir)
		} else {
			defer os.RemoveAll(dir)
		}
		var pki *benchPKI
		if o.tls {
			if pki, err = newBenchPKI(tlsDir(dir)); err != nil {
				return err
			}
		}
		rl, base, et, err := spawnBoth(ctx, o, dir, pki, stderr)
		// At the end the members get SIGTERM (SIGKILL after 5s); after
		// Ctrl-C, SIGKILL at once.
		stop := func(c *cluster) {
			if ctx.Err() != nil {
				c.kill()
			} else {
				c.stopAll()
			}
		}
		if rl != nil {
			defer stop(rl)
		}
		if base != nil {
			defer stop(base)
		}
		if et != nil {
			defer stop(et)
		}
		if err != nil {
			return err
		}
		if spawnedHook != nil {
			spawnedHook(rl, base, et, pki)
		}
		var clientTLS *tls.Config
		if pki != nil {
			clientTLS = pki.clientTLS()
		}
		rt, err := newRaftlockTargetWith(rl.endpoints(), raftlockOptions{idlePerHost: o.idlePerHost, keepaliveClients: o.keepaliveClients, tls: clientTLS})
		if err != nil {
			return err
		}
		envs = append(envs, env{rt, rl})
		if o.unbatched {
			ut, err := newRaftlockTargetWith(rl.endpoints(), raftlockOptions{name: unbatchedTarget, idlePerHost: o.idlePerHost,
				keepaliveClients: o.keepaliveClients, unbatched: true, tls: clientTLS})
			if err != nil {
				return err
			}
			envs = append(envs, env{ut, rl})
		}
		if base != nil {
			bt, err := newRaftlockTargetWith(base.endpoints(), raftlockOptions{name: baseTarget, idlePerHost: o.idlePerHost,
				keepaliveClients: o.keepaliveClients, perSession: o.baselinePerSess, unbatched: o.baselineUnbatched, tls: clientTLS})
			if err != nil {
				return err
			}
			envs = append(envs, env{bt, base})
		}
		etd, err := newEtcdTarget(et.endpoints(), clientTLS)
		if err != nil {
			return err
		}
		envs = append(envs, env{etd, et})
	} else {
		var t Target
		if o.target == "raftlock" {
			ro := raftlockOptions{idlePerHost: o.idlePerHost, keepaliveClients: o.keepaliveClients}
			if o.unbatched {
				ro.name, ro.unbatched = unbatchedTarget, true
			}
			t, err = newRaftlockTargetWith(o.endpoints, ro)
		} else {
			t, err = newEtcdTarget(o.endpoints, nil)
		}
		if err != nil {
			return err
		}
		envs = append(envs, env{t, nil})
	}

	cfg := benchConfig{
		duration:          o.duration,
		ttl:               o.ttl,
		sessions:          o.sessions,
		keepaliveDuration: o.keepaliveDuration,
		locks:             o.locks,
		openers:           o.openers,
		progress:          stderr,
		profileDir:        o.leaderProfiles,
	}
	var targets []string
	for _, e := range envs {
		targets = append(targets, e.t.Name())
	}
	var emit func(result) error
	if o.jsonOut {
		emit = func(res result) error {
			b, err := res.jsonLine()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
	}
	var results []result
	multi := false // some cell ran several rounds
	for _, wl := range o.workloads {
		counts := []int{0}
		rounds := 1 // keepalive and scale run once: see rounds.go
		if hasWorkers(wl) {
			counts = o.workers
			rounds = o.rounds
		}
		multi = multi || rounds > 1
		for _, n := range counts {
			cell, err := runRounds(ctx, envs, wl, n, rounds, cfg, runCell, emit)
			results = append(results, cell...)
			if err != nil {
				return err
			}
			if o.jsonOut && rounds > 1 {
				b, err := summaryLine(targets, cell)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s\n", b)
			}
		}
	}
	if o.jsonOut {
		return nil
	}
	if len(targets) > 1 {
		fmt.Fprintln(stdout, "ratio = raftlock/etcd (and raftlock/raftlock-base, raftlock-unbatched/etcd): above 1 is better for rates (cycles_per_s, create_per_s), below 1 is better for latencies, CPU, bytes and times.")
	}
	if multi {
		fmt.Fprintln(stdout, roundsLegend(o.rounds))
	}
	if o.tls {
		fmt.Fprintln(stdout, tlsLegend(o.etcdSharedPort))
	}
	return writeTable(stdout, targets, results, o.markdown)
}

// spawnedHook, when set (by tests), is called by run with the spawned
// clusters once they are ready, before any workload.
var spawnedHook func(rl, base, et *cluster, pki *benchPKI)

// spawnBoth starts a raftlock and an etcd cluster under dir, and the
// baseline raftlock cluster when o asks for one, with TLS on both ports
// when pki is not nil, and waits until every member is ready. The
// clusters it returns must be stopped by the caller, also with an error.
func spawnBoth(ctx context.Context, o *options, dir string, pki *benchPKI, stderr io.Writer) (rl, base, et *cluster, err error) {
	bin := o.raftlockd
	if bin == "" {
		fmt.Fprintln(stderr, "building raftlockd ...")
		if bin, err = buildRaftlockd(ctx, dir); err != nil {
			return nil, nil, nil, err
		}
	}
	// With --tls, the flags each binary needs besides the certificates; an
	// older raftlockd (a baseline, most likely) would only fail on its
	// first unknown flag: say what is missing before starting anything.
	var extra, baseExtra []string
	if pki != nil {
		flag := "--raftlockd"
		if o.raftlockd == "" {
			flag = "the build of cmd/raftlockd"
		}
		if extra, err = tlsRaftlockdArgs(ctx, bin, flag); err != nil {
			return nil, nil, nil, err
		}
		if o.baseline != "" {
			if baseExtra, err = tlsRaftlockdArgs(ctx, o.baseline, "--baseline-raftlockd"); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	pprof := o.leaderProfiles != ""
	var env []string
	if o.memberProcs > 0 {
		env = []string{fmt.Sprintf("GOMAXPROCS=%d", o.memberProcs)}
	}
	if rl, err = startReady(ctx, func() (*cluster, error) { return startRaftlock(bin, dir, "raftlock", pprof, pki, extra, env) }); err != nil {
		return rl, nil, nil, err
	}
	fmt.Fprintf(stderr, "%s cluster: %s\n", rl.target, strings.Join(rl.endpoints(), ","))
	if o.baseline != "" {
		if base, err = startReady(ctx, func() (*cluster, error) {
			return startRaftlock(o.baseline, dir, baseTarget, false, pki, baseExtra, env)
		}); err != nil {
			return rl, base, nil, err
		}
		fmt.Fprintf(stderr, "%s cluster: %s\n", base.target, strings.Join(base.endpoints(), ","))
	}
	if et, err = startReady(ctx, func() (*cluster, error) { return startEtcd(self, dir, pki, o.etcdSharedPort, env) }); err != nil {
		return rl, base, et, err
	}
	fmt.Fprintf(stderr, "%s cluster: %s\n", et.target, strings.Join(et.endpoints(), ","))
	return rl, base, et, nil
}

// startReady starts a cluster and waits until it is ready. freePorts'
// ports are free when it returns, not when a member binds them: another
// process (an outgoing connection's ephemeral port, most often) may take
// one in between. Then the member exits with "address already in use",
// and the cluster is killed, its directories removed, and started again on
// other ports, at most 3 times in all.
func startReady(ctx context.Context, start func() (*cluster, error)) (*cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := start()
		if err == nil {
			err = c.waitReady(ctx, time.Minute)
		}
		if err == nil || attempt == 3 || c == nil || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
		c.kill()
		for _, m := range c.members {
			os.RemoveAll(filepath.Dir(m.dataDir))
		}
	}
}
