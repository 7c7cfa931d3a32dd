package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

// TestRateLimiterBucket: a bucket of burst requests refilled at rate per
// second; a refusal says how long until the next token.
func TestRateLimiterBucket(t *testing.T) {
	l := newRateLimiter(2, 3)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.take("alice", t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.take("alice", t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("beyond the burst: %v, wait %v; want a refusal and 500ms", ok, wait)
	}
	if ok, _ := l.take("bob", t0); !ok {
		t.Fatal("another principal is refused: buckets are per principal")
	}
	if ok, _ := l.take("alice", t0.Add(499*time.Millisecond)); ok {
		t.Fatal("a token before its time")
	}
	if ok, _ := l.take("alice", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after 1/rate")
	}
	// Idle long enough, the bucket is full again, and no fuller.
	t1 := t0.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.take("alice", t1); !ok {
			t.Fatalf("after an idle hour, request %d refused", i)
		}
	}
	if ok, _ := l.take("alice", t1); ok {
		t.Fatal("an idle hour gave more than the burst")
	}
	if newRateLimiter(-1, 10) != nil {
		t.Fatal("a negative rate makes a limiter")
	}
}

// TestRateLimiterForgetsIdlePrincipals: memory is bounded by the
// principals active lately: a bucket that refilled is dropped at the next
// sweep.
func TestRateLimiterForgetsIdlePrincipals(t *testing.T) {
	l := newRateLimiter(100, 10)
	t0 := time.Unix(1000, 0)
	for i := range 10000 {
		l.take(fmt.Sprintf("user-%d", i), t0)
	}
	if n := l.size(); n != 10000 {
		t.Fatalf("%d buckets, want 10000", n)
	}
	// One stays busy; the others idle past a refill and a sweep.
	t1 := t0.Add(rateSweepEvery)
	for i := range 20 {
		l.take("busy", t1.Add(time.Duration(i)*time.Microsecond))
	}
	l.take("busy", t1.Add(rateSweepEvery))
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets after the idle ones refilled, want 1 (the busy principal's)", n)
	}
}

// serveMiddleware runs one request through s's middleware mw as
// principal p (as authenticate would set it) and returns the answer.
func serveMiddleware(s *Server, mw echo.MiddlewareFunc, p string, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c := s.e.NewContext(req, rec)
	if p != "" {
		c.Set(principalKey, p)
	}
	h := mw(func(c echo.Context) error { return c.String(http.StatusOK, "served") })
	if err := h(c); err != nil {
		s.handleError(err, c)
	}
	return rec
}

// TestRateLimitMiddleware: beyond the burst an authenticated principal
// gets 429 rate_limited with Retry-After in whole seconds (at least 1);
// anonymous requests (auth off), probes and a member's forwarded requests
// are not limited.
func TestRateLimitMiddleware(t *testing.T) {
	var member bool
	cfg := DefaultConfig()
	node := newFakeNode()
	cfg.Node = node
	cfg.RateLimit, cfg.RateBurst = 0.5, 2
	cfg.IsMember = func(*http.Request) bool { return member }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *http.Request { return httptest.NewRequest("GET", path, nil) }
	// With auth off a principal proves nothing: nobody is limited.
	for range 5 {
		if rec := serveMiddleware(s, s.rateLimit, "alice", get("/v1/locks")); rec.Code != 200 {
			t.Fatalf("auth off: %d %s", rec.Code, rec.Body)
		}
	}
	enableAuth(t, node)
	for range 2 {
		if rec := serveMiddleware(s, s.rateLimit, "alice", get("/v1/locks")); rec.Code != 200 {
			t.Fatalf("within the burst: %d %s", rec.Code, rec.Body)
		}
	}
	rec := serveMiddleware(s, s.rateLimit, "alice", get("/v1/locks"))
	var e api.ErrorResponse
	if rec.Code != 429 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code != api.CodeRateLimited || !strings.Contains(e.Error.Message, `"alice"`) {
		t.Fatalf("beyond the burst: %d %s, want 429 rate_limited naming the principal", rec.Code, rec.Body)
	}
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra != 2 {
		t.Fatalf("Retry-After %q, want 2 (one token at 0.5/s)", rec.Header().Get("Retry-After"))
	}
	// Others are not limited by alice's bucket, nor is anonymous traffic
	// (without auth every client is "").
	if rec := serveMiddleware(s, s.rateLimit, "bob", get("/v1/locks")); rec.Code != 200 {
		t.Fatalf("bob: %d", rec.Code)
	}
	for i := range 100 {
		if rec := serveMiddleware(s, s.rateLimit, "", get("/v1/locks")); rec.Code != 200 {
			t.Fatalf("anonymous request %d: %d", i, rec.Code)
		}
	}
	// Probes, and requests a member forwarded (charged on the follower).
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if rec := serveMiddleware(s, s.rateLimit, "alice", get(p)); rec.Code != 200 {
			t.Fatalf("%s: %d", p, rec.Code)
		}
	}
	fwd := get("/v1/locks")
	fwd.Header.Set(api.HeaderForwarded, "1")
	if rec := serveMiddleware(s, s.rateLimit, "alice", fwd); rec.Code != 429 {
		t.Fatalf("forwarded by a non-member: %d, want 429", rec.Code)
	}
	member = true
	if rec := serveMiddleware(s, s.rateLimit, "alice", fwd); rec.Code != 200 {
		t.Fatalf("forwarded by a member: %d, want 200", rec.Code)
	}

	// Retry-After is at least 1 even when the next token is near.
	cfg.RateLimit, cfg.RateBurst = 1000, 1
	fast, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveMiddleware(fast, fast.rateLimit, "alice", get("/v1/locks"))
	if rec := serveMiddleware(fast, fast.rateLimit, "alice", get("/v1/locks")); rec.Code == 429 && rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", rec.Header().Get("Retry-After"))
	}

	// A negative rate turns the limit off.
	cfg.RateLimit = -1
	off, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if rec := serveMiddleware(off, off.rateLimit, "alice", get("/v1/locks")); rec.Code != 200 {
			t.Fatalf("no limit, request %d: %d", i, rec.Code)
		}
	}
}
