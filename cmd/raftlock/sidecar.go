package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

const sidecarAbout = `Runs for leadership of election --election as --id for as long as it
runs, and serves its view over HTTP on --listen, like the Kubernetes
leader-elector sidecar:

  GET /         {"name":"<leader id>"} ("" when nobody leads)
  GET /leader   {"name":"<leader id>","term":N,"is_leader":bool,"since":"RFC 3339"}
  GET /healthz  200 while the sidecar's election loop runs, else 503
  GET /ready    200 only while this sidecar leads, checked at each request
                against the session's safe-until time (a sidecar that was
                paused longer than its TTL answers 503 at once); else 503.
                The body is /leader's.
  GET /events   Server-Sent Events of the election's leader changes, as
                GET /v1/elections/NAME/observe sends them

Put a readinessProbe on /ready so that only the leader's pod gets traffic.
--status-file is rewritten (atomically: a temporary file in the same
directory, then a rename) with /leader's JSON whenever it changes.

With CMD, CMD runs only while the sidecar leads, with RAFTLOCK_NAME,
RAFTLOCK_TERM (the fencing token), RAFTLOCK_VALUE (--id) and
RAFTLOCK_SESSION in its environment, in its own process group: when the
leadership is lost the group gets SIGTERM, SIGKILL after --kill-grace, and
the sidecar campaigns again (CMD runs again when it leads again). When CMD
exits by itself while leading, what it left running is ended the same way,
and the sidecar resigns and exits with CMD's code. If the sidecar dies,
even by SIGKILL, CMD and its descendants die with it before the leadership
can pass on (Linux; see "raftlock help lock").

SIGINT, SIGTERM and SIGHUP stop the sidecar: CMD gets SIGTERM (SIGKILL
after --kill-grace), then the sidecar resigns, so the next candidate leads
at once, and exits 0. Logs go to stderr; the first line says the address
it listens on.

Exit codes: 0 stopped by a signal; 1 error (cannot listen, the cluster
refuses the configuration); 2 usage; CMD's own code when CMD exited while
leading.`

const sidecarExample = `  raftlock sidecar --election web --id "$POD_NAME" --listen :4040
  raftlock sidecar --election scheduler --id 10.0.0.7:8080 --ttl 5s --status-file /run/leader.json
  raftlock sidecar --election jobs/cron --id host-a -- /usr/bin/cron-runner`

// sidecarOptions are the flags and arguments of "raftlock sidecar".
type sidecarOptions struct {
	election   string
	id         string
	listen     string
	ttl        time.Duration
	statusFile string
	grace      time.Duration
	argv       []string
}

// newSidecarCommand returns "raftlock sidecar", bound to e.
func newSidecarCommand(e *env) *cobra.Command {
	o := &sidecarOptions{}
	c := &cobra.Command{
		Use:     "sidecar [flags] --election NAME [--id ID] [-- CMD [ARGS...]]",
		Short:   "lead an election and serve the leader over HTTP (/ready for probes)",
		Long:    sidecarAbout,
		Example: sidecarExample,
		RunE: e.action(func(c *cobra.Command, args []string) int {
			if err := o.parseArgs(args); err != nil {
				return e.usageError(c, err)
			}
			return runSidecar(c.Context(), e, c, o)
		}),
	}
	o.addFlags(c.Flags())
	return c
}

// addFlags registers the flags of "raftlock sidecar" on fs. They may come
// anywhere before "--": CMD's own flags go after "--".
func (o *sidecarOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.election, "election", "", "election to run in (required)")
	fs.StringVar(&o.id, "id", "", "this candidate's identity, shown as the leader's name (default the hostname, which is the pod's name in Kubernetes)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:4040", "HOST:PORT to serve HTTP on (port 0: any free port)")
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "session TTL: a sidecar that dies is replaced after at most this long")
	fs.StringVar(&o.statusFile, "status-file", "", "file to rewrite with /leader's JSON on every change")
	fs.DurationVar(&o.grace, "kill-grace", 5*time.Second, "after the leadership is lost, time between SIGTERM and SIGKILL to CMD")
}

// parseArgs completes o from the positional arguments (CMD and its
// arguments, if any) and checks the flags.
func (o *sidecarOptions) parseArgs(args []string) error {
	o.argv = args
	if o.id == "" {
		host, _ := os.Hostname()
		o.id = host
	}
	switch {
	case o.election == "":
		return errors.New("missing --election NAME")
	case o.id == "":
		return errors.New("missing --id (and the hostname is unknown)")
	case len(o.id) > api.MaxValueSize:
		return fmt.Errorf("--id is %d bytes long: at most %d are allowed", len(o.id), api.MaxValueSize)
	case o.ttl <= 0:
		return fmt.Errorf("--ttl %v must be positive", o.ttl)
	case o.grace < 0:
		return fmt.Errorf("--kill-grace %v is negative", o.grace)
	}
	if err := api.ValidateLockName(o.election); err != nil {
		return fmt.Errorf("election %w", err)
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:4040 or :4040", o.listen)
	}
	return nil
}

// sidecar is one running "raftlock sidecar".
type sidecar struct {
	e   *env
	o   *sidecarOptions
	c   *client.Client
	el  *client.Elector
	log *slog.Logger

	running chan struct{} // closed when Run has returned

	mu        sync.Mutex
	obs       *api.Leader // last observed leader, nil: nobody (or not yet known)
	leadSince time.Time   // when this sidecar's current leadership started, local clock
	cmdCode   int         // exit code of a CMD that exited while leading, -1: none
	written   []byte      // last content of the status file

	fileMu sync.Mutex // serialises status file writes
}

// leaderJSON is the body of GET /leader and /ready, and the status file.
type leaderJSON struct {
	Name     string `json:"name"`
	Term     uint64 `json:"term"`
	IsLeader bool   `json:"is_leader"`
	// Since is when the leader started leading (RFC 3339), "" when nobody leads.
	Since string `json:"since"`
}

// runSidecar runs "raftlock sidecar" with the parsed o; c is the command,
// for its usage.
func runSidecar(ctx context.Context, e *env, c *cobra.Command, o *sidecarOptions) int {
	cl, code := e.newClient(c)
	if cl == nil {
		return code
	}
	defer cl.Close()

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return e.fail("listen: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	sc := &sidecar{e: e, o: o, c: cl, running: make(chan struct{}), cmdCode: -1,
		log: logger.With("election", o.election, "identity", o.id)}
	fmt.Fprintf(e.stderr, "raftlock: sidecar for election %s as %q listening on http://%s\n", o.election, o.id, ln.Addr())

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	sc.el = &client.Elector{
		Client:          cl,
		Name:            o.election,
		Identity:        o.id,
		TTL:             o.ttl,
		ReleaseOnCancel: true,
		Logger:          logger, // it adds election and identity
		Callbacks: client.Callbacks{
			OnStartedLeading: func(lctx context.Context) { sc.lead(ctx, lctx, cancelRun) },
			OnStoppedLeading: func() {
				sc.mu.Lock()
				sc.leadSince = time.Time{}
				sc.mu.Unlock()
				sc.publish()
			},
		},
	}

	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{Handler: sc.handler(), BaseContext: func(net.Listener) context.Context { return baseCtx }, ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	obsCtx, cancelObs := context.WithCancel(runCtx)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		sc.observe(obsCtx)
	}()
	sc.publish()

	runErr := make(chan error, 1)
	go func() {
		defer close(sc.running)
		runErr <- sc.el.Run(runCtx)
	}()
	code = exitOK
	select {
	case err := <-runErr:
		if err != nil {
			code = e.fail("election %s: %v", o.election, err)
		}
	case err := <-srvErr:
		code = e.fail("serve http: %v", err)
		cancelRun()
		<-runErr
	}
	cancelRun() // Run may have returned because CMD exited
	cancelObs()
	<-obsDone
	sc.publish()
	cancelBase() // ends /events streams
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	sc.mu.Lock()
	if sc.cmdCode >= 0 && code == exitOK {
		code = sc.cmdCode
	}
	sc.mu.Unlock()
	return code
}

// lead is OnStartedLeading: it records the leadership and, with CMD, runs
// CMD until it exits or lctx ends. A CMD that exits by itself while leading
// stops the sidecar (stopRun) with its exit code.
func (sc *sidecar) lead(ctx, lctx context.Context, stopRun context.CancelFunc) {
	sc.mu.Lock()
	sc.leadSince = time.Now()
	sc.mu.Unlock()
	sc.publish()
	if len(sc.o.argv) == 0 {
		<-lctx.Done()
		return
	}
	term := sc.el.Term()
	if term == 0 {
		return // lost already
	}
	ch := &child{
		e:    sc.e,
		argv: sc.o.argv,
		vars: []string{
			"RAFTLOCK_NAME=" + sc.o.election,
			"RAFTLOCK_TERM=" + strconv.FormatUint(term, 10),
			"RAFTLOCK_VALUE=" + sc.o.id,
		},
		grace: sc.o.grace,
		ttl:   sc.o.ttl,
		what:  "leadership of election " + sc.o.election,
		lostC: lctx.Done(),
		reason: func() string {
			if ctx.Err() != nil {
				return "the sidecar is stopping"
			}
			return "term " + strconv.FormatUint(term, 10) + " ended"
		},
	}
	code, lost := ch.run(context.Background())
	if lost {
		return
	}
	sc.log.Info("CMD exited while leading; resigning and stopping", "cmd", sc.o.argv[0], "exit_code", code)
	sc.mu.Lock()
	sc.cmdCode = code
	sc.mu.Unlock()
	stopRun()
}

// observe follows the election's leader for /leader, / and the status file.
func (sc *sidecar) observe(ctx context.Context) {
	for ev := range sc.c.Observe(ctx, sc.o.election) {
		sc.mu.Lock()
		sc.obs = ev.Leader
		sc.mu.Unlock()
		sc.publish()
	}
}

// leader returns the current view: this sidecar's own leadership while
// Elector.IsLeader, else the last observed leader.
func (sc *sidecar) leader() leaderJSON {
	term := sc.el.Term() // non-zero exactly when it leads now
	sc.mu.Lock()
	obs, since := sc.obs, sc.leadSince
	sc.mu.Unlock()
	if term != 0 {
		l := leaderJSON{Name: sc.o.id, Term: term, IsLeader: true, Since: since.UTC().Format(time.RFC3339)}
		if obs != nil && obs.Term == term {
			l.Since = obs.Since.UTC().Format(time.RFC3339)
		}
		return l
	}
	if obs == nil {
		return leaderJSON{}
	}
	return leaderJSON{Name: obs.Value, Term: obs.Term, Since: obs.Since.UTC().Format(time.RFC3339)}
}

// publish rewrites the status file when the view has changed.
func (sc *sidecar) publish() {
	if sc.o.statusFile == "" {
		return
	}
	sc.fileMu.Lock()
	defer sc.fileMu.Unlock()
	b, _ := json.Marshal(sc.leader())
	b = append(b, '\n')
	if bytes.Equal(b, sc.written) {
		return
	}
	if err := writeFileAtomic(sc.o.statusFile, b); err != nil {
		sc.log.Warn("write status file", "file", sc.o.statusFile, "error", err)
		return
	}
	sc.written = b
}

// writeFileAtomic replaces name with data: it writes a temporary file in
// the same directory, syncs it and renames it over name, so that readers
// see the old content or the new, never a part.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (sc *sidecar) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		replyJSON(w, http.StatusOK, map[string]string{"name": sc.leader().Name})
	})
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
		replyJSON(w, http.StatusOK, sc.leader())
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		l := sc.leader()
		status := http.StatusOK
		if !l.IsLeader {
			status = http.StatusServiceUnavailable
		}
		replyJSON(w, status, l)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-sc.running:
			replyJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "stopped"})
		default:
			replyJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	})
	mux.HandleFunc("GET /events", sc.events)
	return mux
}

// events serves GET /events: the election's leader changes as Server-Sent
// Events, in the format of GET /v1/elections/NAME/observe, with a
// keep-alive comment every 10s.
func (sc *sidecar) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		replyJSON(w, http.StatusInternalServerError, map[string]string{"error": "streaming unsupported"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	ka := time.NewTicker(10 * time.Second)
	defer ka.Stop()
	evC := sc.c.Observe(r.Context(), sc.o.election)
	for {
		select {
		case ev, ok := <-evC:
			if !ok {
				return
			}
			name := api.SSEChange
			if ev.Type == api.SSEState {
				name = api.SSEState
			}
			// The server's message as it came, every field: the two
			// types have the same fields (a conversion would not
			// compile otherwise).
			b, _ := json.Marshal(api.LeaderEvent(ev))
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Revision, name, b); err != nil {
				return
			}
		case <-ka.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
		fl.Flush()
	}
}

func replyJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
