package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlock/raftlock/api"
)

// DefaultEndpoint is the endpoint of FromEnv when RAFTLOCK_ENDPOINTS is not
// set: a single raftlockd with its default flags.
const DefaultEndpoint = "http://127.0.0.1:7070"

// EnvEndpoints is the environment variable FromEnv reads: comma-separated
// client URLs.
const EnvEndpoints = "RAFTLOCK_ENDPOINTS"

// DefaultRequestTimeout is Config.RequestTimeout when it is zero.
const DefaultRequestTimeout = 10 * time.Second

// DefaultWaitChunk is Config.WaitChunk when it is zero: the server's
// default limit on one wait.
const DefaultWaitChunk = 5 * time.Minute

// Config configures a Client. Only Endpoints is required.
type Config struct {
	// Endpoints are the client URLs of some or all cluster members, e.g.
	// "http://127.0.0.1:7070". At least one. Requests go to the leader once
	// a response has named it (header Raftlock-Leader), even if the leader
	// is not listed, and fall back to these on failure.
	Endpoints []string
	// RequestTimeout bounds one HTTP attempt. Default 10s. A waiting
	// acquire adds its wait to it.
	RequestTimeout time.Duration
	// HTTPClient sends the requests. nil means a client of its own with
	// keep-alive connection reuse. Its Timeout, if any, must exceed
	// WaitChunk, or waits will fail.
	HTTPClient *http.Client
	// Logger receives debug logs of retries and Info logs of session
	// losses. nil discards them.
	Logger *slog.Logger
	// PerSessionKeepAlives renews each session with its own request to
	// POST /v1/sessions/{id}/keepalive, as SDKs before the batched
	// keep-alive did. By default (false) the sessions of a Client that are
	// due together are renewed by one POST /v1/sessions/keepalive; a
	// server without that endpoint is detected per request (404 or 405)
	// and then served per session anyway.
	PerSessionKeepAlives bool
	// WaitChunk is the longest wait of one waiting request of Mutex.Lock
	// and Election.Campaign: a longer wait goes in chunks, each keeping
	// the session's place in the queue (keep_queued), so chunks cost
	// requests, never the FIFO place. Default (and when zero) 5 minutes,
	// the server's limit; lower it behind a proxy or load balancer that
	// cuts requests idle for less.
	WaitChunk time.Duration
	// UnbatchedLocks sends every acquire and release in a request of its
	// own, as SDKs before POST /v1/batch did. By default (false) a Client
	// with 8 such requests in flight at once (2 once its batches carry
	// 4 or more) sends the next ones together in one POST /v1/batch when a
	// request returns; each keeps its own result, and a lone request goes
	// alone as before. A server without that endpoint is detected (404 or
	// 405) and then served one by one anyway.
	UnbatchedLocks bool
}

// FromEnv returns a Config whose Endpoints come from RAFTLOCK_ENDPOINTS
// (comma-separated; blanks ignored), or DefaultEndpoint when it is unset or
// empty. The other fields are zero (defaults).
func FromEnv() Config {
	var eps []string
	for _, e := range strings.Split(os.Getenv(EnvEndpoints), ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		eps = []string{DefaultEndpoint}
	}
	return Config{Endpoints: eps}
}

// Client talks to a raftlock cluster over its REST API. It is safe for
// concurrent use by multiple goroutines. Requests go to the current
// endpoint (the leader once known); on a connection error or a 503 they are
// retried on the next endpoint, at most two passes over the endpoints and
// never past the caller's context. Writes are retried after an unknown
// outcome too, as they are idempotent (opening a session too: it carries a
// client request ID).
type Client struct {
	eps       []string
	timeout   time.Duration
	waitChunk time.Duration
	hc        *http.Client
	log       *slog.Logger

	keeper     keeper                    // renews the sessions
	batch      batcher                   // coalesces lock requests
	lastLeader atomic.Pointer[leaderURL] // cache of leaderFromHeader

	mu     sync.Mutex
	cur    int    // index into eps of the endpoint in use
	leader string // leader URL from the last Raftlock-Leader header, "" when unknown
}

// New returns a Client for cfg. It fails with an error matching
// api.ErrInvalidArgument when cfg has no endpoint or an endpoint is not an
// http(s) URL. It does not contact the cluster.
func New(cfg Config) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("client: %w: no endpoint: give at least one client URL such as %s", api.ErrInvalidArgument, DefaultEndpoint)
	}
	c := &Client{timeout: cfg.RequestTimeout, waitChunk: cfg.WaitChunk, hc: cfg.HTTPClient, log: cfg.Logger}
	if c.waitChunk <= 0 {
		c.waitChunk = DefaultWaitChunk
	}
	c.keeper.init(c, cfg.PerSessionKeepAlives)
	c.batch.c = c
	c.batch.off.Store(cfg.UnbatchedLocks)
	for _, e := range cfg.Endpoints {
		n, err := normalizeURL(e)
		if err != nil {
			return nil, fmt.Errorf("client: %w: endpoint %q: %v", api.ErrInvalidArgument, e, err)
		}
		c.eps = append(c.eps, n)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		c.hc = &http.Client{Transport: t}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// normalizeURL checks an endpoint and strips trailing slashes.
func normalizeURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("not an http:// or https:// URL")
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Close closes the idle connections of the HTTP client. Sessions are not
// closed: close them first (Session.Close), or their keep-alives go on.
// Close is safe to call more than once; the Client stays usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// Status returns the answering node's view of the cluster (GET /v1/status):
// no quorum is needed, and the node may be any endpoint or the leader.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var st api.Status
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/status"}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// LockInfo reads lock name: its holder and waiters (GET /v1/locks/{name},
// linearizable). A free lock has a nil Holder. It is safe for concurrent use.
func (c *Client) LockInfo(ctx context.Context, name string) (*api.Lock, error) {
	if err := api.ValidateLockName(name); err != nil {
		return nil, fmt.Errorf("client: %w: %v", api.ErrInvalidArgument, err)
	}
	var l api.Lock
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.LockPath(name)}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Locks returns the locks whose name starts with prefix that are held or
// have waiters, sorted by name (GET /v1/locks?prefix=, linearizable per
// page). It reads every page of the listing (api.DefaultListLimit locks
// each), so a prefix with very many locks costs as many requests.
func (c *Client) Locks(ctx context.Context, prefix string) ([]api.Lock, error) {
	return listAll(ctx, c, "/v1/locks", prefix, func(p *api.LockList) ([]api.Lock, string) { return p.Locks, p.Next })
}

// listAll reads every page of the listing at path (GET path?prefix=&after=):
// items and next give a page's items and its cursor.
func listAll[P any, T any](ctx context.Context, c *Client, path, prefix string, items func(*P) ([]T, string)) ([]T, error) {
	if err := api.ValidateLockPrefix(prefix); err != nil {
		return nil, fmt.Errorf("client: %w: %v", api.ErrInvalidArgument, err)
	}
	out := []T{}
	after := ""
	for {
		q := url.Values{}
		if prefix != "" {
			q.Set(api.QueryPrefix, prefix)
		}
		if after != "" {
			q.Set(api.QueryAfter, after)
		}
		var page P
		if _, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q}, &page); err != nil {
			return nil, err
		}
		got, next := items(&page)
		out = append(out, got...)
		if next == "" || next <= after {
			return out, nil
		}
		after = next
	}
}

// SessionInfo returns session id's TTL, deadline and locks (GET
// /v1/sessions/{id}, linearizable). An unknown session is an error
// matching api.ErrSessionNotFound.
func (c *Client) SessionInfo(ctx context.Context, id api.SessionID) (*api.Session, error) {
	return c.sessionInfo(ctx, id, false)
}

func (c *Client) sessionInfo(ctx context.Context, id api.SessionID, stale bool) (*api.Session, error) {
	var q url.Values
	if stale {
		q = url.Values{api.QueryConsistency: {api.ConsistencyStale}}
	}
	var s api.Session
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.SessionPath(id), query: q}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// CloseSession closes session id on the server (DELETE /v1/sessions/{id}):
// its locks are released and granted to their next waiters. It is an
// operator's forced release; the session's owner sees Session.Done close
// and its Mutexes' Lost close at its next keep-alive. An unknown session is
// an error matching api.ErrSessionNotFound, except when an earlier attempt of
// this call had an unknown outcome (then it was this call that closed it,
// and CloseSession returns nil).
func (c *Client) CloseSession(ctx context.Context, id api.SessionID) error {
	info, err := c.do(ctx, call{method: http.MethodDelete, path: api.SessionPath(id), write: true, retryUnknown: true}, nil)
	if err != nil && info.unknownBefore && errors.Is(err, api.ErrSessionNotFound) {
		return nil
	}
	return err
}

// isDial reports whether err is a failure to connect (nothing was sent).
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
