package client

import (
	"context"
	"crypto/tls"
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
	// "http://127.0.0.1:7070". At least one, all with the same scheme
	// (http or https). Requests go to the leader once an answer has named
	// it (header Raftlock-Leader), and fall back to these on failure. The
	// SDK follows that header only to one of these endpoints or to a
	// member's advertised client URL (api.Member.ClientURL in GET
	// /v1/status, read from the endpoint that named the leader) with the
	// same scheme: an https Client never moves to http, and never to a
	// host that is not a member. A header naming anything else is ignored
	// (the request stays on the endpoint that answered, which forwards it).
	Endpoints []string
	// TLS configures TLS for https:// endpoints: RootCAs to trust the
	// cluster's CA (nil: the system's roots), Certificates or
	// GetClientCertificate for a client certificate, whose common name is
	// then the principal. New clones it. It is used by the Client's own
	// HTTP transport: setting both TLS and HTTPClient is an error
	// (configure that client's transport instead), and so is TLS with an
	// http:// endpoint.
	TLS *tls.Config
	// AuthToken is a bearer token, sent as "Authorization: Bearer <token>"
	// on every request of the Client: reads, writes, keep-alives, batches
	// and observe streams. It goes only where requests go (Endpoints and
	// the members named as above), and never in a log or an error message.
	// Over http:// it travels in clear text: use https on any network that
	// others share. "" sends no Authorization header.
	AuthToken string
	// RequestTimeout bounds one HTTP attempt. Default 10s. A waiting
	// acquire adds its wait to it.
	RequestTimeout time.Duration
	// HTTPClient sends the requests. nil means a client of its own with
	// keep-alive connection reuse, TLS from the TLS field, and no HTTP
	// redirects followed (the API never answers one; following one could
	// carry the token elsewhere). Its Timeout, if any, must exceed
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
	// UnbatchedLocks sends every acquire and release (and every campaign
	// try and resign) in a request of its own, as SDKs before
	// POST /v1/batch did. By default (false) a Client
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
// never past the caller's context; a 429 rate_limited is retried on the
// same endpoint after its Retry-After. Writes are retried after an unknown
// outcome too, as they are idempotent (opening a session too: it carries a
// client request ID).
type Client struct {
	eps       []string
	timeout   time.Duration
	waitChunk time.Duration
	hc        *http.Client
	log       *slog.Logger

	// auth is the value of the Authorization header (shared, read-only),
	// nil without Config.AuthToken.
	auth []string

	keeper     keeper                    // renews the sessions
	batch      batcher                   // coalesces lock requests
	lastLeader atomic.Pointer[leaderURL] // cache of leaderFromHeader
	members    atomic.Pointer[memberSet] // where a Raftlock-Leader header may send requests
	refresh    refresher                 // reads the members from GET /v1/status
	// noSessionLocks: the server has no GET /v1/sessions/{id}/locks (it
	// answered 404 or 405); watches read the whole session instead.
	noSessionLocks atomic.Bool

	mu     sync.Mutex
	cur    int    // index into eps of the endpoint in use
	leader string // leader URL from the last accepted Raftlock-Leader header, "" when unknown
}

// New returns a Client for cfg. It fails with an error matching
// api.ErrInvalidArgument when cfg has no endpoint, an endpoint is not an
// http(s) URL, the endpoints mix http and https, TLS is set with
// HTTPClient or with an http:// endpoint, or AuthToken is not a token
// (printable ASCII without spaces, at most 512 bytes). It does not contact
// the cluster.
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
	scheme := ""
	for _, e := range cfg.Endpoints {
		n, err := normalizeURL(e)
		if err != nil {
			return nil, fmt.Errorf("client: %w: endpoint %q: %v", api.ErrInvalidArgument, e, err)
		}
		s := schemeOf(n)
		if scheme != "" && s != scheme {
			return nil, fmt.Errorf("client: %w: endpoint %q is %s:// but %q is %s://: give every endpoint the same scheme", api.ErrInvalidArgument, n, s, c.eps[0], scheme)
		}
		scheme = s
		c.eps = append(c.eps, n)
	}
	if cfg.TLS != nil {
		if cfg.HTTPClient != nil {
			return nil, fmt.Errorf("client: %w: Config.TLS and Config.HTTPClient are both set: configure TLS in the HTTPClient's transport, or leave HTTPClient nil", api.ErrInvalidArgument)
		}
		if scheme != "https" {
			return nil, fmt.Errorf("client: %w: Config.TLS is set but endpoint %q is http://: use https:// URLs", api.ErrInvalidArgument, c.eps[0])
		}
	}
	if cfg.AuthToken != "" {
		if _, ok := api.BearerToken("Bearer " + cfg.AuthToken); !ok {
			// Never the token itself in a message.
			return nil, fmt.Errorf("client: %w: Config.AuthToken (%d bytes) is not a token: printable ASCII without spaces, at most 512 bytes", api.ErrInvalidArgument, len(cfg.AuthToken))
		}
		c.auth = []string{"Bearer " + cfg.AuthToken}
	}
	c.members.Store(newMemberSet(scheme, c.eps, nil))
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		if cfg.TLS != nil {
			t.TLSClientConfig = cfg.TLS.Clone()
			// HTTP/1.1 over TLS as over plaintext: with many requests in
			// flight, HTTP/2 cost 7-16 % of the cycles per second and
			// 1.2x the client CPU (BENCHMARKS.md, "TLS").
			t.Protocols = new(http.Protocols)
			t.Protocols.SetHTTP1(true)
		}
		c.hc = &http.Client{
			Transport: t,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // hand the 3xx back: an error answer
			},
		}
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

// SemaphoreInfo reads semaphore name: its limit, the holders of its
// permits and its waiters (GET /v1/semaphores/{name}, linearizable). A
// semaphore nobody holds a permit of or waits for has Limit 0 and no
// holders. It is safe for concurrent use.
func (c *Client) SemaphoreInfo(ctx context.Context, name string) (*api.Semaphore, error) {
	if err := api.ValidateLockName(name); err != nil {
		return nil, fmt.Errorf("client: %w: %v", api.ErrInvalidArgument, err)
	}
	var sem api.Semaphore
	if _, err := c.do(ctx, call{method: http.MethodGet, path: semaphorePath(name)}, &sem); err != nil {
		return nil, err
	}
	return &sem, nil
}

// Semaphores returns the semaphores whose name starts with prefix that
// have holders or waiters, sorted by name (GET /v1/semaphores?prefix=,
// linearizable per page), reading every page as Locks does.
func (c *Client) Semaphores(ctx context.Context, prefix string) ([]api.Semaphore, error) {
	return listAll(ctx, c, "/v1/semaphores", prefix, func(p *api.SemaphoreList) ([]api.Semaphore, string) { return p.Semaphores, p.Next })
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
		q = staleQuery
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
// and its Mutexes' Lost close at its next keep-alive. With auth on, only
// the principal that opened the session or an admin may close it (403
// otherwise: an error matching api.ErrPermissionDenied); the event of an
// admin's close names the admin. An unknown session is
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
