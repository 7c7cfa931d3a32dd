package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/raftnode"
)

// Server serves the REST API v1 over a raftnode.Proposer. It is safe for
// concurrent use; its handler may serve any number of requests at once.
type Server struct {
	cfg    Config
	node   raftnode.Proposer
	log    *slog.Logger
	fwd    *http.Client
	ownFwd bool
	e      *echo.Echo
	// edgeState holds the edge's limits: the rate limiter, the stream
	// slots and the node's shared event log (streams.go).
	edgeState *edgeState
	metrics   *metrics // metrics.go
	// stopWaits is closed by EndWaits; waits counts the requests waiting
	// in a queue (awaitGrant). (Not a WaitGroup: a wait may begin while
	// EndWaits waits for the others to end.)
	stopWaits chan struct{}
	stopOnce  sync.Once
	waits     atomic.Int64
}

// New returns a Server for cfg. Zero durations take their defaults; it
// returns Validate's error for an invalid cfg. New starts no goroutines.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, node: cfg.Node, log: cfg.Logger, fwd: cfg.ForwardClient, edgeState: newEdgeState(cfg), stopWaits: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.fwd == nil {
		s.fwd = newForwardClient(cfg.ForwardTLS)
		s.ownFwd = true
	}
	s.metrics = newMetrics(cfg.Node)
	s.e = s.routes()
	s.metrics.knowRoutes(s.e)
	return s, nil
}

// Handler returns the http.Handler that serves the API (an echo instance).
func (s *Server) Handler() http.Handler { return s.e }

// EndWaits ends every request waiting in a lock or election queue on this
// node, now and from now on, as a node that stops must: each leaves its
// queue through the log (a keep_queued one keeps its place) and answers
// 503, so that the client goes on through another member. It returns when
// they have answered, or when ctx ends. raftlockd calls it on SIGTERM
// before a leader hands leadership over: the leaves then go through the
// log while this node still leads.
func (s *Server) EndWaits(ctx context.Context) {
	s.stopOnce.Do(func() { close(s.stopWaits) })
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.waits.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Close releases the idle connections of the Server's own forwarding client
// (none when Config.ForwardClient was set). Call it after the http.Server
// that uses Handler has shut down. It always returns nil.
func (s *Server) Close() error {
	if s.ownFwd {
		s.fwd.CloseIdleConnections()
	}
	return nil
}

func newForwardClient(tlsConfig *tls.Config) *http.Client {
	t := &http.Transport{
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   5 * time.Second,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the request's context (waits can be long)
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: t,
		// Relay a redirect as it is rather than following it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handleError

	e.Use(s.observeRequest) // metrics.go: request durations by route and status
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		// Skip the middleware's own work (clock reads, remote IP, the
		// attributes) when its Debug lines would be dropped anyway. An
		// error then goes up to echo, which calls handleError as well.
		Skipper: func(c echo.Context) bool {
			return !s.log.Enabled(c.Request().Context(), slog.LevelDebug)
		},
		LogMethod:   true,
		LogURI:      true,
		LogStatus:   true,
		LogLatency:  true,
		LogRemoteIP: true,
		LogError:    true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			attrs := []slog.Attr{
				slog.String("method", v.Method),
				slog.String("uri", v.URI),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("remote_ip", v.RemoteIP),
			}
			if v.Error != nil {
				attrs = append(attrs, slog.String("error", v.Error.Error()))
			}
			s.log.LogAttrs(c.Request().Context(), slog.LevelDebug, "http request", attrs...)
			return nil
		},
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableErrorHandler: true, // the error goes up to the request logger, which calls handleError
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in handler", "method", c.Request().Method, "uri", c.Request().RequestURI, "error", err, "stack", string(stack))
			return fmt.Errorf("%w: panic: %v", api.ErrInternal, err)
		},
	}))
	e.Use(s.leaderHeader)
	e.Use(s.guardRequest) // guard.go: Host, cross-site requests
	e.Use(s.authenticate) // principal.go/auth.go: the principal, 401
	e.Use(s.rateLimit)    // ratelimit.go: per principal

	e.POST("/v1/sessions", s.createSession)
	e.GET("/v1/sessions", s.listSessions)
	e.GET("/v1/sessions/:id", s.getSession)
	e.GET("/v1/sessions/:id/locks", s.getSessionLocks)
	e.DELETE("/v1/sessions/:id", s.closeSession)
	e.POST("/v1/sessions/keepalive", s.keepAliveBatch)
	e.POST("/v1/sessions/:id/keepalive", s.keepAlive)
	e.POST(api.BatchPath, s.batch)
	e.GET("/v1/locks", s.listLocks)
	e.GET("/v1/locks/*", s.getLock)
	e.POST("/v1/locks/*", s.lockAction)
	e.GET("/v1/semaphores", s.listSemaphores)
	e.GET("/v1/semaphores/*", s.getSemaphore)
	e.POST("/v1/semaphores/*", s.semAction)
	e.GET("/v1/elections", s.listElections)
	e.GET("/v1/elections/*", s.getElection)
	e.POST("/v1/elections/*", s.electionAction)
	e.GET("/v1/watch", s.watch)
	e.GET(api.AuthUsersPath, s.listUsers)
	e.POST(api.AuthUsersPath, s.putUser)
	e.DELETE(api.AuthUsersPath+"/:name", s.deleteUser)
	e.GET(api.AuthRolesPath, s.listRoles)
	e.POST(api.AuthRolesPath, s.putRole)
	e.DELETE(api.AuthRolesPath+"/:name", s.deleteRole)
	e.GET(api.AuthTokensPath, s.listTokens)
	e.POST(api.AuthTokensPath, s.createToken)
	e.DELETE(api.AuthTokensPath+"/:name", s.revokeToken)
	e.POST(api.AuthEnablePath, s.enableAuth)
	e.GET(api.WhoAmIPath, s.whoAmI)
	e.POST(api.LeaderTransferPath, s.transferLeader)
	e.GET(api.LimitsPath, s.getLimits)
	e.POST(api.LimitsPath, s.setLimits)
	e.GET("/v1/status", s.status)
	e.GET("/v1/openapi.json", s.openAPI) // openapi.go
	e.GET("/ui", s.ui)                   // ui.go: the web console
	e.GET("/ui/*", s.ui)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.serveMetrics)
	e.GET(api.SnapshotPath, s.snapshot)
	e.GET(api.MembersPath, s.listMembers)
	e.POST(api.MembersPath, s.addMember)
	e.DELETE(api.MembersPath+"/:id", s.removeMember)
	e.POST(api.MembersPath+"/:id/promote", s.promoteMember)
	return e
}

// leaderHeader sets Raftlock-Leader on every answer, errors included
// (a forwarded answer carries the leader's own value).
func (s *Server) leaderHeader(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if u := s.node.Status().LeaderClientURL; u != "" {
			c.Response().Header().Set(api.HeaderLeader, u)
		}
		return next(c)
	}
}

// writeJSON answers status with v as compact JSON.
func writeJSON(c echo.Context, status int, v any) error {
	// Not json.Marshal: it writes "<" as "\u003c", which makes messages
	// like "Bearer <token>" hard to read in a terminal. Answers are JSON,
	// never HTML.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("%w: encode answer: %v", api.ErrInternal, err)
	}
	return c.JSONBlob(status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// limits are the server's bounds on the durations of requests.
func (s *Server) limits() api.Limits {
	return api.Limits{MinTTL: s.cfg.MinTTL, MaxTTL: s.cfg.MaxTTL, MaxWait: s.cfg.MaxWait}
}

// writeCtx returns a context for one proposal or linearizable read of the
// request: the request's context bounded by RequestTimeout.
func (s *Server) writeCtx(c echo.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
}

func (s *Server) healthz(c echo.Context) error {
	return writeJSON(c, http.StatusOK, api.Health{Status: "ok"})
}

// readyz answers 200 while Status().Ready: a leader is known, its client URL
// is known (so writes can be forwarded) and the log is applied. Otherwise
// 503 unavailable, saying which condition is missing.
func (s *Server) readyz(c echo.Context) error {
	st := s.node.Status()
	switch {
	case st.Leader == 0:
		return api.Errorf(api.CodeUnavailable, "not ready: no leader known")
	case st.LeaderClientURL == "":
		return api.Errorf(api.CodeUnavailable, "not ready: the leader (member %d) has not published its client URL yet, so writes cannot be forwarded", st.Leader)
	case !st.Ready:
		return api.Errorf(api.CodeUnavailable, "not ready: catching up with the log (applied %d)", st.Applied)
	}
	return writeJSON(c, http.StatusOK, api.Health{Status: "ok"})
}

// status answers the node's own view from Status(); it needs no quorum, so
// it works on a node cut off from the cluster (consistency is validated but
// the answer is always local).
func (s *Server) status(c echo.Context) error {
	if _, err := consistency(c); err != nil {
		return err
	}
	st := s.node.Status()
	out := api.Status{
		ID:        st.ID,
		Leader:    st.Leader,
		LeaderURL: st.LeaderClientURL,
		Term:      st.Term,
		Commit:    st.Commit,
		Applied:   st.Applied,
		Ready:     st.Ready,
		Members:   make([]api.Member, 0, len(st.Members)),

		ReadIndexRequests:   st.ReadIndexRounds,
		ReadIndexRetries:    st.ReadIndexRetries,
		DroppedPeerMessages: st.DroppedPeerMessages,
		Alarms:              make([]api.Alarm, 0, len(st.Alarms)),
		ClusterID:           strconv.FormatUint(st.ClusterID, 16),
		ClusterVersion:      st.ClusterVersion,
	}
	for _, a := range st.Alarms {
		out.Alarms = append(out.Alarms, api.Alarm{Member: a.Member, Alarm: a.Kind.String()})
	}
	for _, m := range st.Members {
		am := api.Member{ID: m.ID, PeerURL: m.PeerURL, ClientURL: m.ClientURL, Learner: m.Learner}
		if p := m.Progress; p != nil {
			am.Progress = &api.MemberProgress{Match: p.Match, Behind: p.Behind, Reachable: p.Reachable, Learner: p.Learner}
		}
		out.Members = append(out.Members, am)
	}
	return writeJSON(c, http.StatusOK, out)
}
