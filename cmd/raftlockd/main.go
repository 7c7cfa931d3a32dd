// Command raftlockd runs one member of a raftlock cluster: the Raft node,
// its peer transport and the REST API.
//
// With no flags it starts a single-node cluster with the client API on
// http://127.0.0.1:7070, the peer endpoint on http://127.0.0.1:7071 and its
// data in ./raftlock-data. Every flag can also be set with an environment
// variable: --listen-client is RAFTLOCK_LISTEN_CLIENT, and so on; a flag on
// the command line wins over the environment.
//
// TLS uses etcd's flag names: --cert-file, --key-file, --trusted-ca-file and
// --client-cert-auth for the client port, the same with a --peer- prefix
// (and --peer-cert-allowed-cn) for the peer port. raftlockd refuses to
// listen on an address other than loopback without TLS unless
// --insecure-plaintext is given.
//
// On SIGTERM or SIGINT it stops accepting connections, lets the requests in
// flight finish (a second later it cancels those still waiting, which then
// leave their queues through Raft and answer 503), hands leadership to
// another member, stops Raft and then the peer endpoint. A second signal
// kills it at once.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftlock/raftlock/httpapi"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
	"github.com/raftlock/raftlock/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // shutting down: a second signal kills the process at once
	}()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, errVersion) {
			fmt.Println("raftlockd", version.Get())
			os.Exit(0)
		}
		if errors.Is(err, raftnode.ErrRemoved) {
			// Not a failure: the member was removed on purpose, and a
			// supervisor that restarts on failure must not bring it back.
			fmt.Fprintln(os.Stderr, "raftlockd: this member was removed from the cluster; it stopped for good (start a new member with an empty data dir to replace it)")
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "raftlockd:", err)
		os.Exit(1)
	}
}

// errVersion is what run returns for --version: main prints the version.
var errVersion = errors.New("version asked")

// options are the command's flags.
type options struct {
	version         bool
	id              uint64
	dataDir         string
	listenClient    string
	listenPeer      string
	advertiseClient string
	advertisePeer   string
	initialCluster  string
	clusterState    string
	clusterToken    string
	idFromHostname  bool
	snapshotEvery   uint64
	snapshotRatio   float64
	tick            time.Duration
	electionTicks   int
	requestTimeout  time.Duration
	logLevel        string
	logFormat       string
	pprofListen     string
	metricsListen   string

	peerCertFile       string
	peerKeyFile        string
	peerTrustedCAFile  string
	peerClientCertAuth bool
	peerCertAllowedCN  string
	certFile           string
	keyFile            string
	trustedCAFile      string
	clientCertAuth     bool
	insecurePlaintext  bool
	allowedHosts       string
	authTokenFile      string
	maxConnections     int
	maxSnapshotBytes   int64
	restoreFrom        string
	restoreBumpIndex   uint64
	// set names the flags given on the command line or in the
	// environment.
	set map[string]bool

	// The quotas of a new cluster (lock.Limits); 0 is the default.
	quotaSessions, quotaLocks, quotaWaiters, quotaElections, quotaStateBytes uint64
	// Per-node edge limits (httpapi.Config).
	rateLimit              float64
	rateBurst              int
	maxStreams             int
	maxStreamsPerPrincipal int
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("raftlockd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Uint64Var(&o.id, "id", 0, "member ID, non-zero and unique in the cluster (default: the ID in the data dir, or 1 for a new single node)")
	fs.StringVar(&o.dataDir, "data-dir", "raftlock-data", "directory for the WAL and snapshots")
	fs.StringVar(&o.listenClient, "listen-client", "http://127.0.0.1:7070", "URL to serve the REST API on")
	fs.StringVar(&o.listenPeer, "listen-peer", "http://127.0.0.1:7071", "URL to serve the Raft peer endpoint on")
	fs.StringVar(&o.advertiseClient, "advertise-client", "", "client URL other members and clients use to reach this member (default: --listen-client)")
	fs.StringVar(&o.advertisePeer, "advertise-peer", "", "peer URL other members use to reach this member (default: --listen-peer)")
	fs.StringVar(&o.initialCluster, "initial-cluster", "", "members of a new cluster: ID=peerURL,... (default: this member alone); with --initial-cluster-state existing, every member of the running cluster, this one included; ignored once the data dir exists")
	fs.StringVar(&o.clusterState, "initial-cluster-state", "new", "new: create a cluster of --initial-cluster; existing: join a running cluster that raftlock member add announced this member to (it takes the cluster's ID and log from the others); ignored once the data dir exists")
	fs.StringVar(&o.clusterToken, "initial-cluster-token", "", "a name that makes a new cluster's ID unique, so that members of two clusters with the same --initial-cluster never talk to each other (as etcd's); ignored once the data dir exists")
	fs.BoolVar(&o.idFromHostname, "id-from-hostname", false, idFromHostnameHelp)
	fs.Uint64Var(&o.snapshotEvery, "snapshot-every", 10000, "applied entries between snapshots, at least")
	fs.Float64Var(&o.snapshotRatio, "snapshot-log-ratio", raftnode.DefaultSnapshotLogRatio, "a snapshot waits, besides --snapshot-every entries, until the entries applied since the last one reach this fraction of its size in bytes, so that a large state is snapshotted less often (total snapshot work linear in the state's size); 0: every --snapshot-every entries")
	fs.DurationVar(&o.tick, "tick", 100*time.Millisecond, "Raft tick interval; the election timeout is --election-ticks ticks")
	fs.BoolVar(&o.version, "version", false, "print the version (module version, VCS revision, Go version) and exit")
	fs.IntVar(&o.electionTicks, "election-ticks", 10, "election timeout in ticks")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 5*time.Second, "deadline of a write or linearizable read before it answers 503")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "for profiling only: serve net/http/pprof (/debug/pprof/) on this loopback host:port, e.g. 127.0.0.1:0 (the address is logged); off when empty. Only loopback addresses are accepted: it has no authentication")
	fs.StringVar(&o.metricsListen, "listen-metrics", "", "also serve GET /metrics (Prometheus text format) on this host:port, plaintext and without authentication, as etcd's --listen-metrics-urls; e.g. 0.0.0.0:9090 or 127.0.0.1:0 (the address is logged). /metrics on the client port is always served")
	fs.StringVar(&o.peerCertFile, "peer-cert-file", "", "this member's certificate for the peer port, as server and as client (PEM; needs the serverAuth and clientAuth usages); re-read when it changes")
	fs.StringVar(&o.peerKeyFile, "peer-key-file", "", "the key of --peer-cert-file (PEM)")
	fs.StringVar(&o.peerTrustedCAFile, "peer-trusted-ca-file", "", "the CA(s) that sign the members' certificates (PEM, may hold several); with it the peer port requires and verifies a client certificate")
	fs.BoolVar(&o.peerClientCertAuth, "peer-client-cert-auth", false, "require a verified client certificate on the peer port (implied by --peer-trusted-ca-file, as in etcd)")
	fs.StringVar(&o.peerCertAllowedCN, "peer-cert-allowed-cn", "", "the common name every member's certificate must carry, checked both ways on the peer port and for member proof on the client port")
	fs.StringVar(&o.certFile, "cert-file", "", "the client port's certificate (PEM); with it --listen-client and --advertise-client are https; re-read when it changes")
	fs.StringVar(&o.keyFile, "key-file", "", "the key of --cert-file (PEM)")
	fs.StringVar(&o.trustedCAFile, "trusted-ca-file", "", "the CA(s) that sign client certificates (PEM, may hold several, e.g. the old and the new CA during a rotation); client certificates are then verified when given")
	fs.BoolVar(&o.clientCertAuth, "client-cert-auth", false, "require a verified client certificate on the client port (of --trusted-ca-file, or a member's of --peer-trusted-ca-file)")
	fs.BoolVar(&o.insecurePlaintext, "insecure-plaintext", false, "allow plaintext http on an address other than loopback: anyone who can reach the client port can take every lock, and anyone who can reach the peer port can speak for a member")
	fs.StringVar(&o.allowedHosts, "allowed-hosts", "", "comma-separated host names that requests may name in Host, besides those of the advertised client URLs, loopback names and IP literals: exact names, *.domain for its subdomains, or * for any")
	fs.StringVar(&o.authTokenFile, "auth-bootstrap-token-file", "", "on a new cluster, turn auth on with user root (role admin on every name) whose bearer token is this file's content (trailing white space trimmed; the file must not be readable by others)")
	fs.IntVar(&o.maxConnections, "max-connections", 10000, "open connections accepted on each of the client and peer ports; more wait until one closes")
	fs.Uint64Var(&o.quotaSessions, "quota-sessions-per-principal", 0, "new cluster: open sessions per principal (anonymous ones are not counted); 0 is 100000. Later: POST /v1/limits")
	fs.Uint64Var(&o.quotaLocks, "quota-locks-per-session", 0, "new cluster: locks one session holds or waits for; 0 is 10000")
	fs.Uint64Var(&o.quotaWaiters, "quota-waiters-per-lock", 0, "new cluster: waiters of one lock (and candidates of one election); 0 is 10000")
	fs.Uint64Var(&o.quotaElections, "quota-elections-per-session", 0, "new cluster: elections one session leads or runs in; 0 is 1000")
	fs.Uint64Var(&o.quotaStateBytes, "quota-state-bytes", 0, "new cluster: the state's estimated size beyond which growth is refused (507), as etcd's --quota-backend-bytes; 0 is 2 GiB")
	fs.Float64Var(&o.rateLimit, "rate-limit", 1000, "requests per second one authenticated principal may send to this node (token bucket); negative: no limit. Without auth nobody is limited")
	fs.IntVar(&o.rateBurst, "rate-burst", 2000, "the token bucket's size of --rate-limit")
	fs.IntVar(&o.maxStreams, "max-streams", 10000, "concurrent watch and observe streams on this node")
	fs.IntVar(&o.maxStreamsPerPrincipal, "max-streams-per-principal", 1000, "concurrent watch and observe streams of one principal on this node")
	fs.Int64Var(&o.maxSnapshotBytes, "peer-max-snapshot-bytes", 0, "the least bound on a snapshot received from the leader, in bytes; the bound is otherwise twice this member's largest snapshot file, at least 64 MiB")
	fs.StringVar(&o.restoreFrom, "restore-from", "", restoreFlagHelp)
	fs.Uint64Var(&o.restoreBumpIndex, "restore-bump-index", 0, "with --restore-from: start the new cluster's log this many entries above the snapshot's index, so that its fencing tokens are above those the old cluster granted after the backup if it kept running (as etcdutl's --bump-revision); the same on every member")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: raftlockd [flags]\n\nRuns one member of a raftlock cluster. Every flag may also be set as RAFTLOCK_<FLAG>\n(upper case, '-' as '_'), e.g. RAFTLOCK_DATA_DIR.\n\nExample, a single node:\n  raftlockd\n\nExample, member 2 of a three-node cluster:\n  raftlockd --id 2 --data-dir data/2 --listen-client http://127.0.0.1:7080 --listen-peer http://127.0.0.1:7081 \\\n    --initial-cluster 1=http://127.0.0.1:7071,2=http://127.0.0.1:7081,3=http://127.0.0.1:7091\n\nExample, member 2 of a TLS cluster:\n  raftlockd --id 2 --data-dir data/2 --listen-client https://10.0.0.2:7070 --listen-peer https://10.0.0.2:7071 \\\n    --cert-file client.crt --key-file client.key --trusted-ca-file client-ca.crt \\\n    --peer-cert-file member.crt --peer-key-file member.key --peer-trusted-ca-file peer-ca.crt \\\n    --initial-cluster 1=https://10.0.0.1:7071,2=https://10.0.0.2:7071,3=https://10.0.0.3:7071\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return nil, errVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "RAFTLOCK_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] && envErr == nil && f.Name != "version" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", env, v, err)
			}
			set[f.Name] = true
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	o.set = set
	if err := o.recallURLs(); err != nil {
		return nil, err
	}
	if o.advertiseClient == "" {
		o.advertiseClient = o.listenClient
	}
	if o.advertisePeer == "" {
		o.advertisePeer = o.listenPeer
	}
	if o.clusterState != "new" && o.clusterState != "existing" {
		return nil, fmt.Errorf("--initial-cluster-state %q: want new or existing", o.clusterState)
	}
	if o.maxConnections <= 0 {
		return nil, fmt.Errorf("--max-connections %d: want a positive number", o.maxConnections)
	}
	if !(o.snapshotRatio >= 0) || math.IsInf(o.snapshotRatio, 1) {
		return nil, fmt.Errorf("--snapshot-log-ratio %v: want a number, 0 or more", o.snapshotRatio)
	}
	if o.maxSnapshotBytes < 0 {
		return nil, fmt.Errorf("--peer-max-snapshot-bytes %d: want 0 (automatic) or a size in bytes", o.maxSnapshotBytes)
	}
	return o, nil
}

// parseCluster parses "1=http://a:1,2=http://b:2".
func parseCluster(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		idStr, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("initial cluster: %q is not ID=URL", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("initial cluster: member ID %q must be a positive integer", idStr)
		}
		if _, err := hostPort(u); err != nil {
			return nil, fmt.Errorf("initial cluster: member %d: %w", id, err)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("initial cluster: member %d appears twice", id)
		}
		peers[id] = u
	}
	return peers, nil
}

// hostPort returns the host:port to listen on for an http or https URL.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("url %q: want http://host:port or https://host:port", raw)
	}
	// Peer URLs are hashed into the cluster ID and handed to rafthttp,
	// which refuses anything but scheme://host:port.
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("url %q: want scheme://host:port with no path (not even a trailing slash), query or user", raw)
	}
	return u.Host, nil
}

// scheme returns the scheme of a URL that hostPort accepted.
func scheme(raw string) string {
	s, _, _ := strings.Cut(raw, "://")
	return strings.ToLower(s)
}

// checkURLs checks the schemes of the flags' URLs against the TLS flags,
// and refuses plaintext on an address other than loopback unless
// --insecure-plaintext. It returns the addresses to listen on.
func (o *options) checkURLs() (clientAddr, peerAddr string, err error) {
	if clientAddr, err = hostPort(o.listenClient); err != nil {
		return "", "", fmt.Errorf("--listen-client: %w", err)
	}
	if peerAddr, err = hostPort(o.listenPeer); err != nil {
		return "", "", fmt.Errorf("--listen-peer: %w", err)
	}
	if _, err := hostPort(o.advertiseClient); err != nil {
		return "", "", fmt.Errorf("--advertise-client: %w", err)
	}
	if _, err := hostPort(o.advertisePeer); err != nil {
		return "", "", fmt.Errorf("--advertise-peer: %w", err)
	}
	if err := o.checkTLSFlags(); err != nil {
		return "", "", err
	}
	want := map[bool]string{false: "http", true: "https"}
	cs, ps := want[o.clientTLSOn()], want[o.peerTLSOn()]
	for _, u := range []struct{ flag, url, want, why string }{
		{"--listen-client", o.listenClient, cs, "--cert-file and --key-file"},
		{"--advertise-client", o.advertiseClient, cs, "--cert-file and --key-file"},
		{"--listen-peer", o.listenPeer, ps, "--peer-cert-file, --peer-key-file and --peer-trusted-ca-file"},
		{"--advertise-peer", o.advertisePeer, ps, "--peer-cert-file, --peer-key-file and --peer-trusted-ca-file"},
	} {
		if got := scheme(u.url); got != u.want {
			if u.want == "https" {
				return "", "", fmt.Errorf("%s %s: TLS is on (%s), so the URL must be https://", u.flag, u.url, u.why)
			}
			return "", "", fmt.Errorf("%s %s: an https URL needs %s", u.flag, u.url, u.why)
		}
	}
	if !o.insecurePlaintext {
		if h := urlHost(o.listenClient); !o.clientTLSOn() && !isLoopback(h) {
			return "", "", fmt.Errorf("refusing plaintext on the client port: --listen-client %s is not a loopback address, and anyone who can reach it could take and release every lock; set --cert-file and --key-file with an https URL, or pass --insecure-plaintext to accept that", o.listenClient)
		}
		if h := urlHost(o.listenPeer); !o.peerTLSOn() && !isLoopback(h) {
			return "", "", fmt.Errorf("refusing plaintext on the peer port: --listen-peer %s is not a loopback address, and anyone who can reach it could speak for a member; set --peer-cert-file, --peer-key-file and --peer-trusted-ca-file with https URLs, or pass --insecure-plaintext to accept that", o.listenPeer)
		}
	}
	if o.pprofListen != "" {
		if err := checkLoopbackAddr(o.pprofListen); err != nil {
			return "", "", fmt.Errorf("--pprof-listen: %w", err)
		}
	}
	if o.metricsListen != "" {
		if _, _, err := net.SplitHostPort(o.metricsListen); err != nil {
			return "", "", fmt.Errorf("--listen-metrics: want host:port: %w", err)
		}
	}
	return clientAddr, peerAddr, nil
}

// checkPeerSchemes checks that every member's peer URL (the initial
// cluster, or the one stored in the data dir) has the scheme the peer TLS
// flags call for: rafthttp dials them as they are.
func checkPeerSchemes(peers map[uint64]string, tlsOn bool) error {
	want := "http"
	if tlsOn {
		want = "https"
	}
	ids := make([]uint64, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if got := scheme(peers[id]); got != want {
			if tlsOn {
				return fmt.Errorf("member %d's peer URL %s is not https, but peer TLS is on: every member of a TLS cluster needs an https peer URL (a cluster's peer URLs are fixed when it is created)", id, peers[id])
			}
			return fmt.Errorf("member %d's peer URL %s is https: set --peer-cert-file, --peer-key-file and --peer-trusted-ca-file", id, peers[id])
		}
	}
	return nil
}

// allowedHosts returns the host names of --advertise-client and
// --listen-client and those of --allowed-hosts, lower case, without
// duplicates.
func (o *options) allowedHostList() ([]string, error) {
	var hosts []string
	add := func(h string) {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	add(urlHost(o.advertiseClient))
	add(urlHost(o.listenClient))
	for _, h := range strings.Split(o.allowedHosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/@ \t") {
			return nil, fmt.Errorf("--allowed-hosts: %q is not a host name", h)
		}
		if _, _, err := net.SplitHostPort(h); err == nil {
			return nil, fmt.Errorf("--allowed-hosts: %q: give host names without a port", h)
		}
		add(h)
	}
	return hosts, nil
}

// readBootstrapToken returns the content of --auth-bootstrap-token-file
// without its trailing white space. It refuses an empty token, one with
// spaces or control characters, and a file that others may read.
func readBootstrapToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--auth-bootstrap-token-file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("--auth-bootstrap-token-file %s: the root token is readable by others (mode %v): chmod o-rwx %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--auth-bootstrap-token-file: %w", err)
	}
	tok := strings.TrimRight(string(b), " \t\r\n")
	if tok == "" {
		return "", fmt.Errorf("--auth-bootstrap-token-file %s is empty", path)
	}
	for _, r := range tok {
		if r <= ' ' || r == 0x7f || r > '~' {
			return "", fmt.Errorf("--auth-bootstrap-token-file %s: the token must be printable ASCII without spaces (it travels as Authorization: Bearer <token>)", path)
		}
	}
	return tok, nil
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", o.logLevel, err)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", o.logFormat)
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := o.applyIDFromHostname(os.Hostname); err != nil {
		return err
	}
	logger, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	clientAddr, peerAddr, err := o.checkURLs()
	if err != nil {
		return err
	}
	sec, err := buildTLS(o)
	if err != nil {
		return err
	}
	hosts, err := o.allowedHostList()
	if err != nil {
		return err
	}
	var bootstrapToken string
	if o.authTokenFile != "" {
		if bootstrapToken, err = readBootstrapToken(o.authTokenFile); err != nil {
			return err
		}
	}
	if sec.sharedCA {
		logger.Warn("--peer-trusted-ca-file and --trusted-ca-file share a CA and --peer-cert-allowed-cn is not set: any client certificate of that CA proves membership (and may name a principal in a forwarded request); use separate CAs or pin the members' CN")
	}

	cfg := raftnode.DefaultConfig()
	cfg.ID = o.id
	cfg.DataDir = o.dataDir
	cfg.ClientURL = o.advertiseClient
	cfg.TickInterval = o.tick
	cfg.ElectionTicks = o.electionTicks
	cfg.SnapshotEvery = o.snapshotEvery
	cfg.SnapshotLogRatio = o.snapshotRatio
	cfg.ClusterToken = o.clusterToken
	cfg.Logger = logger
	if bootstrapToken != "" {
		sum := sha256.Sum256([]byte(bootstrapToken))
		cfg.AuthBootstrapHash = string(sum[:])
	}
	if o.quotaSessions|o.quotaLocks|o.quotaWaiters|o.quotaElections|o.quotaStateBytes != 0 {
		cfg.InitialLimits = &lock.Limits{SessionsPerPrincipal: o.quotaSessions, LocksPerSession: o.quotaLocks,
			WaitersPerLock: o.quotaWaiters, ElectionsPerSession: o.quotaElections, MaxStateBytes: o.quotaStateBytes}
	}
	if o.restoreFrom != "" {
		if err := restoreFromBackup(ctx, o, logger); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(o.dataDir, "wal")); errors.Is(err, os.ErrNotExist) {
		// A new member: it needs an ID and a cluster.
		if cfg.ID == 0 {
			cfg.ID = 1
		}
		if o.initialCluster == "" {
			cfg.Peers = map[uint64]string{cfg.ID: o.advertisePeer}
		} else {
			if cfg.Peers, err = parseCluster(o.initialCluster); err != nil {
				return err
			}
			if cfg.Peers[cfg.ID] == "" {
				return fmt.Errorf("--initial-cluster does not name this member (--id %d)", cfg.ID)
			}
		}
		if err := checkPeerSchemes(cfg.Peers, o.peerTLSOn()); err != nil {
			return fmt.Errorf("--initial-cluster: %w", err)
		}
		if o.clusterState == "existing" {
			if err := joinCluster(ctx, o, &cfg, sec, logger); err != nil {
				return err
			}
		}
	}
	node, err := raftnode.New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := checkPeerSchemes(node.Peers(), o.peerTLSOn()); err != nil {
		return fmt.Errorf("data dir %s: %w", o.dataDir, err)
	}
	if err := o.checkPeerURL(node.ID(), node.Peers()); err != nil {
		return err
	}
	if err := o.rememberURLs(); err != nil {
		return err
	}
	// A member that learns from the others that it was removed stops as
	// when it applies its own removal.
	removedCtx, removed := context.WithCancelCause(ctx)
	defer removed(nil)
	transport, err := raftnode.NewHTTPTransportWith(raftnode.HTTPTransportConfig{
		ID:        node.ID(),
		Peers:     node.Peers(),
		ClusterID: node.ClusterID(),
		Receiver:  node,
		Gate:      snapshotFloor{node, o.maxSnapshotBytes},
		TLS:       sec.peer,
		OnRemoved: func() { removed(raftnode.ErrRemoved) },
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	defer transport.Stop()

	hcfg := httpapi.DefaultConfig()
	hcfg.Node = node
	hcfg.Logger = logger
	hcfg.RequestTimeout = o.requestTimeout
	// The shortest TTL is twice the election timeout: a session must
	// survive the election that follows the loss of a leader.
	hcfg.MinTTL = 2 * cfg.ElectionTimeout()
	hcfg.ElectionTimeout = cfg.ElectionTimeout()
	hcfg.ForwardTLS = sec.forward
	hcfg.IsMember = sec.isMember
	hcfg.AllowedHosts = hosts
	hcfg.AuthBootstrapToken = bootstrapToken
	hcfg.RateLimit = o.rateLimit
	hcfg.RateBurst = o.rateBurst
	hcfg.MaxStreams = o.maxStreams
	hcfg.MaxStreamsPerPrincipal = o.maxStreamsPerPrincipal
	api, err := httpapi.New(hcfg)
	if err != nil {
		return err
	}
	defer api.Close()

	// The peer port bounds every read and write as etcd's does (5 s), so
	// that a silently dead peer is noticed in seconds; rafthttp's streams
	// send heartbeats more often than that.
	peerLn, err := listen(peerAddr, o.maxConnections, peerIOTimeout, sec.peerServer)
	if err != nil {
		return fmt.Errorf("listen peer: %w", err)
	}
	clientLn, err := listen(clientAddr, o.maxConnections, 0, sec.client)
	if err != nil {
		peerLn.Close()
		return fmt.Errorf("listen client: %w", err)
	}
	var pprofLn net.Listener
	if o.pprofListen != "" {
		if pprofLn, err = net.Listen("tcp", o.pprofListen); err != nil {
			peerLn.Close()
			clientLn.Close()
			return fmt.Errorf("--pprof-listen: %w", err)
		}
	}
	var metricsLn net.Listener
	if o.metricsListen != "" {
		if metricsLn, err = net.Listen("tcp", o.metricsListen); err != nil {
			peerLn.Close()
			clientLn.Close()
			if pprofLn != nil {
				pprofLn.Close()
			}
			return fmt.Errorf("--listen-metrics: %w", err)
		}
	}
	// Requests derive from reqCtx, cancelled once shutdown has given them
	// their grace, so that event streams and waiting acquires end instead
	// of holding it up.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	peerSrv := &http.Server{
		Handler:           transport.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		// Snapshot bodies get longer (the peer guard extends it).
		ReadTimeout:    readTimeout,
		IdleTimeout:    peerIdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.With("component", "peer-http").Handler(), slog.LevelWarn),
	}
	// No WriteTimeout on the client port: a waiting acquire (up to its wait
	// plus the request timeout) and an event stream (keep-alive comments)
	// bound their own time.
	clientSrv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       clientIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.With("component", "client-http").Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	srvErr := make(chan error, 4)
	go func() { srvErr <- peerSrv.Serve(peerLn) }()
	go func() { srvErr <- clientSrv.Serve(clientLn) }()
	if pprofLn != nil {
		pprofSrv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: readHeaderTimeout}
		go func() { srvErr <- pprofSrv.Serve(pprofLn) }()
		defer pprofSrv.Close()
		logger.Info("pprof listening", "addr", pprofLn.Addr().String())
	}
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", api.MetricsHandler())
		metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
			ErrorLog: slog.NewLogLogger(logger.With("component", "metrics-http").Handler(), slog.LevelWarn)}
		go func() { srvErr <- metricsSrv.Serve(metricsLn) }()
		defer metricsSrv.Close()
		logger.Info("metrics listening", "addr", metricsLn.Addr().String())
	}

	// Raft runs until the client requests are done with it, not until the
	// signal: requests leaving their queues at shutdown go through it.
	runCtx, stopRaft := context.WithCancel(context.Background())
	defer stopRaft()
	nodeErr := make(chan error, 1)
	go func() { nodeErr <- node.Run(runCtx, transport) }()
	logger.Info("raftlockd started", "node_id", node.ID(), "client_url", o.advertiseClient,
		"peer_url", o.advertisePeer, "data_dir", o.dataDir, "members", len(node.Peers()),
		"client_tls", sec.client != nil, "client_cert_auth", o.clientCertAuth, "peer_tls", sec.peerServer != nil)

	var runErr error
	nodeDone := false
	select {
	case <-removedCtx.Done():
		if errors.Is(context.Cause(removedCtx), raftnode.ErrRemoved) {
			runErr = raftnode.ErrRemoved
			logger.Warn("the other members say this member was removed from the cluster: stopping; its data dir must not be used again")
		} else {
			logger.Info("shutting down: no new connections; requests in flight get " + shutdownGrace.String() + " before they are cancelled (signal again to stop at once)")
		}
	case runErr = <-nodeErr:
		nodeDone = true
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	// No new connections; the requests that wait in a queue leave it
	// through the log while this node may still lead; then a leader hands
	// leadership over at once, while the other requests in flight drain:
	// new ones already go to the other members, and the cluster waits for
	// no election timeout.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		drain(clientSrv, endRequests, shutdownGrace+o.requestTimeout+time.Second, logger)
	}()
	if !nodeDone {
		wctx, wcancel := context.WithTimeout(context.Background(), o.requestTimeout)
		api.EndWaits(wctx)
		wcancel()
		handOver(node, cfg.ElectionTimeout(), logger)
	}
	<-drained
	if !nodeDone {
		stopRaft()
		if err := <-nodeErr; err != nil && runErr == nil {
			runErr = err
		}
	}
	// Raft has stopped: nothing on the peer port is worth waiting for
	// (rafthttp's streams never end by themselves).
	_ = peerSrv.Close()
	transport.Stop()
	if runErr == nil {
		logger.Info("stopped")
	}
	return runErr
}

// snapshotFloor is the node's PeerGate with --peer-max-snapshot-bytes as
// the least snapshot bound.
type snapshotFloor struct {
	*raftnode.Node
	floor int64
}

// MaxSnapshotBytes implements raftnode.PeerGate.
func (g snapshotFloor) MaxSnapshotBytes() int64 { return max(g.floor, g.Node.MaxSnapshotBytes()) }

// shutdownGrace is how long requests in flight may go on after a signal
// before their contexts are cancelled.
const shutdownGrace = time.Second

// drain stops srv from accepting connections and waits for the requests in
// flight: after shutdownGrace it calls cancel, which ends the contexts of
// those still running (a waiting acquire then leaves its queue through
// Raft and answers 503); after budget it closes their connections.
func drain(srv *http.Server, cancel context.CancelFunc, budget time.Duration, logger *slog.Logger) {
	ctx, done := context.WithTimeout(context.Background(), budget)
	defer done()
	t := time.AfterFunc(shutdownGrace, cancel)
	defer t.Stop()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("requests still running after the shutdown budget: closing their connections", "budget", budget)
		_ = srv.Close()
	}
	cancel()
}

// handOver asks raft to transfer leadership to another member when this
// node leads, and waits for up to an election timeout for it to happen, so
// that the cluster does not wait an election timeout for a new leader.
func handOver(node *raftnode.Node, electionTimeout time.Duration, logger *slog.Logger) {
	st := node.Status()
	if !st.IsLeader {
		return
	}
	voters := 0
	for _, m := range st.Members {
		if m.ID != st.ID && !m.Learner {
			voters++
		}
	}
	if voters == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), electionTimeout)
	defer cancel()
	// 0: the voter whose log is the most caught up.
	if err := node.TransferLeadership(ctx, 0); err != nil {
		return
	}
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	for {
		if st := node.Status(); st.Leader != 0 && st.Leader != st.ID {
			logger.Info("handed leadership over", "to", st.Leader)
			return
		}
		select {
		case <-tk.C:
		case <-ctx.Done():
			logger.Warn("leadership was not handed over within an election timeout; stopping anyway")
			return
		}
	}
}

// pprofMux serves the runtime profiles of net/http/pprof under
// /debug/pprof/ (--pprof-listen).
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
