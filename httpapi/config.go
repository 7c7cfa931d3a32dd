package httpapi

import (
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
}

// DefaultConfig returns a Config with every default set; Node remains to be
// set.
func DefaultConfig() Config {
	return Config{
		MinTTL:          2 * time.Second,
		MaxTTL:          time.Hour,
		MaxWait:         5 * time.Minute,
		RequestTimeout:  5 * time.Second,
		StreamKeepAlive: 10 * time.Second,
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
	if c.StreamKeepAlive <= 0 {
		c.StreamKeepAlive = d.StreamKeepAlive
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
