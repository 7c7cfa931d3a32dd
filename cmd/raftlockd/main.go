// Command raftlockd runs one member of a raftlock cluster: the Raft node,
// its peer transport and the REST API.
//
// With no flags it starts a single-node cluster with the client API on
// http://127.0.0.1:7070, the peer endpoint on http://127.0.0.1:7071 and its
// data in ./raftlock-data. Every flag can also be set with an environment
// variable: --listen-client is RAFTLOCK_LISTEN_CLIENT, and so on; a flag on
// the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftlock/raftlock/httpapi"
	"github.com/raftlock/raftlock/raftnode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "raftlockd:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	id              uint64
	dataDir         string
	listenClient    string
	listenPeer      string
	advertiseClient string
	advertisePeer   string
	initialCluster  string
	snapshotEvery   uint64
	tick            time.Duration
	electionTicks   int
	requestTimeout  time.Duration
	logLevel        string
	logFormat       string
	pprofListen     string
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
	fs.StringVar(&o.initialCluster, "initial-cluster", "", "members of a new cluster: ID=peerURL,... (default: this member alone); ignored once the data dir exists")
	fs.Uint64Var(&o.snapshotEvery, "snapshot-every", 10000, "applied entries between snapshots")
	fs.DurationVar(&o.tick, "tick", 100*time.Millisecond, "Raft tick interval; the election timeout is 10 ticks")
	fs.IntVar(&o.electionTicks, "election-ticks", 10, "election timeout in ticks")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 5*time.Second, "deadline of a write or linearizable read before it answers 503")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.pprofListen, "pprof-listen", "", "for profiling only: serve net/http/pprof (/debug/pprof/) on this host:port, e.g. 127.0.0.1:0 (the address is logged); off when empty. Bind it to loopback: it has no authentication")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: raftlockd [flags]\n\nRuns one member of a raftlock cluster. Every flag may also be set as RAFTLOCK_<FLAG>\n(upper case, '-' as '_'), e.g. RAFTLOCK_DATA_DIR.\n\nExample, a single node:\n  raftlockd\n\nExample, member 2 of a three-node cluster:\n  raftlockd --id 2 --data-dir data/2 --listen-client http://127.0.0.1:7080 --listen-peer http://127.0.0.1:7081 \\\n    --initial-cluster 1=http://127.0.0.1:7071,2=http://127.0.0.1:7081,3=http://127.0.0.1:7091\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "RAFTLOCK_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", env, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if o.advertiseClient == "" {
		o.advertiseClient = o.listenClient
	}
	if o.advertisePeer == "" {
		o.advertisePeer = o.listenPeer
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

// hostPort returns the host:port to listen on for an http URL.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", raw, err)
	}
	if u.Scheme != "http" || u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("url %q: want http://host:port", raw)
	}
	// Peer URLs are hashed into the cluster ID and handed to rafthttp,
	// which refuses anything but scheme://host:port.
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("url %q: want http://host:port with no path (not even a trailing slash), query or user", raw)
	}
	return u.Host, nil
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
	logger, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	clientAddr, err := hostPort(o.listenClient)
	if err != nil {
		return fmt.Errorf("--listen-client: %w", err)
	}
	peerAddr, err := hostPort(o.listenPeer)
	if err != nil {
		return fmt.Errorf("--listen-peer: %w", err)
	}

	cfg := raftnode.DefaultConfig()
	cfg.ID = o.id
	cfg.DataDir = o.dataDir
	cfg.ClientURL = o.advertiseClient
	cfg.TickInterval = o.tick
	cfg.ElectionTicks = o.electionTicks
	cfg.SnapshotEvery = o.snapshotEvery
	cfg.Logger = logger
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
	}
	node, err := raftnode.New(ctx, cfg)
	if err != nil {
		return err
	}
	transport, err := raftnode.NewHTTPTransport(node.ID(), node.Peers(), node, logger)
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
	api, err := httpapi.New(hcfg)
	if err != nil {
		return err
	}

	peerLn, err := net.Listen("tcp", peerAddr)
	if err != nil {
		return fmt.Errorf("listen peer: %w", err)
	}
	clientLn, err := net.Listen("tcp", clientAddr)
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
	// Requests derive from reqCtx, cancelled when shutdown starts, so that
	// event streams and waiting acquires end instead of holding it up.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	peerSrv := &http.Server{Handler: transport.Handler(), ReadHeaderTimeout: 10 * time.Second}
	clientSrv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return reqCtx }}
	srvErr := make(chan error, 3)
	go func() { srvErr <- peerSrv.Serve(peerLn) }()
	go func() { srvErr <- clientSrv.Serve(clientLn) }()
	if pprofLn != nil {
		pprofSrv := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { srvErr <- pprofSrv.Serve(pprofLn) }()
		defer pprofSrv.Close()
		logger.Info("pprof listening", "addr", pprofLn.Addr().String())
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	nodeErr := make(chan error, 1)
	go func() { nodeErr <- node.Run(runCtx, transport) }()
	logger.Info("raftlockd started", "node_id", node.ID(), "client_url", o.advertiseClient,
		"peer_url", o.advertisePeer, "data_dir", o.dataDir, "members", len(node.Peers()))

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case runErr = <-nodeErr:
		nodeErr <- runErr
	case err := <-srvErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	shutCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	go func() {
		// Let in-flight writes finish briefly, then end what still waits.
		select {
		case <-time.After(time.Second):
		case <-shutCtx.Done():
		}
		endRequests()
	}()
	_ = clientSrv.Shutdown(shutCtx)
	cancel()
	if err := <-nodeErr; err != nil && runErr == nil {
		runErr = err
	}
	_ = peerSrv.Shutdown(shutCtx)
	return runErr
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
