package httpapi

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

// rateLimit applies the per-principal request rate limit (issue 11): a
// token bucket per principal of Config.RateBurst requests, refilled at
// Config.RateLimit per second, on this node. A request beyond it answers
// 429 rate_limited with Retry-After (whole seconds, at least 1) and is not
// served.
//
// It applies to authenticated principals only, once auth is on. Without
// auth every client is the principal "" (or the name on its certificate,
// which proves nothing then), and one bucket for all of them would cap the
// whole cluster's traffic at one client's rate; the open streams (MaxStreams)
// and the state machine's quotas still bound an anonymous client. Not
// limited either: /healthz, /readyz and /metrics (probes and scrapers), a
// request a follower forwarded (Raftlock-Forwarded from a member, see
// Config.IsMember: the follower charged it already), and everything when
// RateLimit is negative.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principalOf(c)
		if p == "" || s.cfg.RateLimit < 0 || !s.node.Auth().Enabled() {
			return next(c)
		}
		r := c.Request()
		if unguardedPath(r.URL.Path) || r.Header.Get(api.HeaderForwarded) != "" && s.cfg.IsMember != nil && s.cfg.IsMember(r) {
			return next(c)
		}
		l := s.edge().limiter
		if ok, wait := l.take(p, time.Now()); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
			return api.Errorf(api.CodeRateLimited, "principal %q sent more than %g requests per second (bursts of %d) to this node: retry after %d s", p, l.rate, int(l.burst), secs)
		}
		return next(c)
	}
}

// unguardedPath reports whether path is one of the probes' and scrapers'
// endpoints, which the rate limit and the Host check leave alone: they
// change nothing and reveal nothing a client could misuse.
func unguardedPath(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// rateSweepEvery is how often take drops the buckets of idle principals.
const rateSweepEvery = 10 * time.Second

// rateLimiter is a token bucket per principal. Memory is bounded by the
// principals active recently: a bucket that has refilled (its principal
// was idle for burst/rate seconds) is the same as none, and is dropped at
// the next sweep (at most every rateSweepEvery, done by a request: no
// goroutine). It is safe for concurrent use.
type rateLimiter struct {
	rate, burst float64

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

// newRateLimiter returns a limiter of rate requests per second in bursts
// of burst (at least 1), or nil for a negative rate (no limit).
func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate < 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: float64(max(burst, 1)), buckets: map[string]*bucket{}}
}

// take spends one token of p's bucket at now. When there is none it
// returns false and how long until there is one.
func (l *rateLimiter) take(p string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= rateSweepEvery {
		l.sweepLocked(now)
	}
	b := l.buckets[p]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[p] = b
	} else {
		b.refill(now, l.rate, l.burst)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate == 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
		b.at = now
	}
}

// sweepLocked drops the buckets that are full again at now.
func (l *rateLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for p, b := range l.buckets {
		if b.refill(now, l.rate, l.burst); b.tokens >= l.burst {
			delete(l.buckets, p)
		}
	}
}

// size returns the number of buckets held.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
