package httpapi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// Config configures a Server. Start from DefaultConfig and set Node.
type Config struct {
	// Node is the raft node the API proposes to and reads from. Required.
	// The Server uses only the raftnode.Proposer interface.
	Node raftnode.Proposer
	// Logger receives request logs (Debug) and errors. nil discards them.
	Logger *slog.Logger
	// MinTTL is the shortest session TTL accepted. It should be at least
	// twice the election timeout, so a session survives an election.
	// Default (and when zero) 2s.
	MinTTL time.Duration
	// MaxTTL is the longest session TTL accepted. Default (and when zero) 1h.
	MaxTTL time.Duration
	// MaxWait is the longest wait of an acquire. Default (and when zero) 5m.
	MaxWait time.Duration
	// RequestTimeout bounds a write or a linearizable read; when it passes
	// the answer is 503 (unavailable, or timeout when the write's outcome is
	// unknown). An acquire with a wait is bounded by wait + RequestTimeout.
	// Default (and when zero) 5s.
	RequestTimeout time.Duration
	// StreamKeepAlive is the interval of the keep-alive comment on event
	// streams. Default (and when zero) 10s.
	StreamKeepAlive time.Duration
	// ForwardClient sends writes that reached a follower to the leader.
	// nil means a client of its own with keep-alive connections, which
	// Server.Close releases. Its Timeout should be zero: requests are
	// bounded by their context.
	ForwardClient *http.Client
	// ForwardTLS is the TLS configuration of the Server's own forwarding
	// client (ignored when ForwardClient is set): the leader's client URL is
	// https when the cluster serves TLS. It should present this member's
	// certificate, so that the leader can tell a forwarded request from a
	// member (see IsMember).
	ForwardTLS *tls.Config
	// IsMember reports whether a request was sent by a member of the
	// cluster, proven by its TLS client certificate (a follower forwarding
	// to the leader). Only then is the principal named in the forwarded
	// request's header trusted. nil: no request is from a member.
	IsMember func(r *http.Request) bool
	// AuthBootstrapToken, when set on a cluster whose auth is off and that
	// has no users, makes the first request the node serves propose the
	// bootstrap: user root with role admin on every name and this token,
	// and auth on. Requests wait for it (or get 503). Ignored once the
	// cluster has users. Give it to every member of a new cluster.
	AuthBootstrapToken string
	// AllowedHosts are the host names (without port) that requests may
	// name in Host besides loopback names, IP literals and the hosts of the
	// cluster's advertised client URLs: exact names, "*.domain" for its
	// subdomains, or "*" for any. Empty: only those.
	AllowedHosts []string
	// RateLimit is the sustained requests per second allowed to one
	// principal on this node (token bucket of RateBurst). Zero: 1000.
	// Negative: no limit.
	RateLimit float64
	// RateBurst is the bucket's size. Zero: 2000; below 1 counts as 1.
	RateBurst int
	// MaxStreams bounds the concurrent watch and observe streams of this
	// node. Zero: 10000. Negative: no bound.
	MaxStreams int
	// ElectionTimeout is the cluster's election timeout: a leader transfer
	// that has not moved leadership within it (plus RequestTimeout's
	// margin for the target to catch up) answers 503. Default (and when
	// zero) 1s.
	ElectionTimeout time.Duration
	// MaxStreamsPerPrincipal bounds the concurrent streams of one
	// principal on this node (anonymous streams, without auth, count only
	// against MaxStreams). Zero: 1000. Negative: no bound.
	MaxStreamsPerPrincipal int
}

// DefaultConfig returns a Config with every default set; Node remains to be
// set.
func DefaultConfig() Config {
	return Config{
		MinTTL:                 2 * time.Second,
		MaxTTL:                 time.Hour,
		MaxWait:                5 * time.Minute,
		RequestTimeout:         5 * time.Second,
		StreamKeepAlive:        10 * time.Second,
		RateLimit:              1000,
		RateBurst:              2000,
		MaxStreams:             10000,
		MaxStreamsPerPrincipal: 1000,
	}
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MinTTL == 0 {
		c.MinTTL = d.MinTTL
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = d.MaxTTL
	}
	if c.MaxWait == 0 {
		c.MaxWait = d.MaxWait
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.StreamKeepAlive <= 0 {
		c.StreamKeepAlive = d.StreamKeepAlive
	}
	if c.RateLimit == 0 {
		c.RateLimit = d.RateLimit
	}
	if c.RateBurst == 0 {
		c.RateBurst = d.RateBurst
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = d.MaxStreams
	}
	if c.MaxStreamsPerPrincipal == 0 {
		c.MaxStreamsPerPrincipal = d.MaxStreamsPerPrincipal
	}
	return c
}

// Validate reports the first invalid field. Zero durations count as their
// defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Node == nil:
		return errors.New("httpapi: config: Node is required")
	case c.MinTTL < 0:
		return fmt.Errorf("httpapi: config: MinTTL %v is negative", c.MinTTL)
	case c.MaxTTL < c.MinTTL:
		return fmt.Errorf("httpapi: config: MaxTTL %v is below MinTTL %v", c.MaxTTL, c.MinTTL)
	case c.MaxTTL > time.Duration(lock.MaxTTL):
		return fmt.Errorf("httpapi: config: MaxTTL %v is above the state machine's limit %v", c.MaxTTL, time.Duration(lock.MaxTTL))
	case c.MaxWait < 0:
		return fmt.Errorf("httpapi: config: MaxWait %v is negative", c.MaxWait)
	case c.RequestTimeout < 0:
		return fmt.Errorf("httpapi: config: RequestTimeout %v is negative", c.RequestTimeout)
	}
	return nil
}
