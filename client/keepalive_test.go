package client

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// kaCounter is an http.RoundTripper that counts keep-alive requests:
// batched ones and per-session ones. With oldServer it answers the batched
// keep-alive itself with the 405 of a server that predates it.
type kaCounter struct {
	base      http.RoundTripper
	oldServer bool

	mu      sync.Mutex
	batches int
	singles int
}

func (k *kaCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/keepalive") {
		k.mu.Lock()
		if r.URL.Path == api.KeepAlivePath {
			k.batches++
		} else {
			k.singles++
		}
		k.mu.Unlock()
		if k.oldServer && r.URL.Path == api.KeepAlivePath {
			if r.Body != nil {
				r.Body.Close()
			}
			body := `{"error":{"code":"method_not_allowed","message":"method POST is not allowed on /v1/sessions/keepalive"}}`
			return &http.Response{StatusCode: http.StatusMethodNotAllowed, Status: "405 Method Not Allowed",
				Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)), Request: r}, nil
		}
	}
	return k.base.RoundTrip(r)
}

func (k *kaCounter) counts() (batches, singles int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.batches, k.singles
}

func newCountingClient(t *testing.T, url string, kc *kaCounter, perSession bool) *Client {
	t.Helper()
	kc.base = http.DefaultTransport.(*http.Transport).Clone()
	c, err := New(Config{Endpoints: []string{url}, RequestTimeout: 5 * time.Second,
		HTTPClient: &http.Client{Transport: kc}, PerSessionKeepAlives: perSession})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestKeepAliveSharedAcrossSessions: the sessions of one Client are renewed
// together by the batched endpoint, far fewer requests than sessions, and
// each one's SafeUntil moves on.
func TestKeepAliveSharedAcrossSessions(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	kc := &kaCounter{}
	c := newCountingClient(t, srv.URL, kc, false)
	const (
		n   = 30
		ttl = 600 * time.Millisecond
	)
	var ss []*Session
	first := map[*Session]time.Time{}
	for range n {
		s := newSession(t, c, ttl)
		ss = append(ss, s)
		first[s] = s.SafeUntil()
	}
	// Every session has been renewed at least twice (its SafeUntil moved
	// by more than one renewal interval).
	await.True(t, 10*time.Second, "every session renewed twice", func() bool {
		for _, s := range ss {
			if !s.SafeUntil().After(first[s].Add(ttl / 3)) {
				return false
			}
		}
		return true
	})
	for _, s := range ss {
		if s.Err() != nil {
			t.Fatalf("session %s ended: %v", s.ID(), s.Err())
		}
	}
	batches, singles := kc.counts()
	if singles != 0 {
		t.Fatalf("%d per-session keep-alives, want none", singles)
	}
	// At least 2n renewals happened; one request per session would be
	// 2n requests at least.
	if batches == 0 || batches >= n {
		t.Fatalf("%d batched requests for %d sessions renewed twice each: not coalesced", batches, n)
	}
	t.Logf("%d sessions renewed at least twice each with %d batched requests", n, batches)
}

// TestKeepAliveExpiredEndsOnlyThatSession: a session the server reports
// expired in a batch ends with api.ErrSessionNotFound; the others of the same
// Client live on.
func TestKeepAliveExpiredEndsOnlyThatSession(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	kc := &kaCounter{}
	c := newCountingClient(t, srv.URL, kc, false)
	ctx := testCtx(t)
	const ttl = 600 * time.Millisecond
	a := newSession(t, c, ttl)
	b := newSession(t, c, ttl)
	m := b.NewMutex("victim")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	// An operator closes b on the server.
	if err := newClient(t, srv.URL).CloseSession(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(b.Done(), 5*time.Second) {
		t.Fatal("b did not end after the server forgot it")
	}
	if err := b.Err(); !errors.Is(err, ErrSessionLost) || !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("b.Err %v, want ErrSessionLost and api.ErrSessionNotFound", err)
	}
	if !isClosed(m.Lost()) {
		t.Fatal("b's hold not lost")
	}
	// a is renewed on: its SafeUntil moves past its current value.
	su := a.SafeUntil()
	await.True(t, 5*time.Second, "a renewed after b ended", func() bool { return a.SafeUntil().After(su) })
	if a.Err() != nil {
		t.Fatalf("a ended: %v", a.Err())
	}
	if _, singles := kc.counts(); singles != 0 {
		t.Fatalf("%d per-session keep-alives", singles)
	}
}

// TestKeepAliveJeopardyPerSession: a session whose renewals stop ends at
// its own SafeUntil while the other sessions of its Client live on.
func TestKeepAliveJeopardyPerSession(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	const ttl = 500 * time.Millisecond
	a := newSession(t, c, ttl)
	b := newSession(t, c, ttl)
	b.skipRenewals.Store(true)
	safe := b.SafeUntil()
	if !closedWithin(b.Ctx().Done(), 3*ttl) {
		t.Fatal("b's Ctx not cancelled after its renewals stopped")
	}
	if now := time.Now(); now.Before(safe) {
		t.Fatalf("b ended %v before its SafeUntil", safe.Sub(now))
	}
	if err := b.Err(); !errors.Is(err, ErrSessionLost) || errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("b.Err %v, want ErrSessionLost (no answer), not expired", err)
	}
	su := a.SafeUntil()
	await.True(t, 5*time.Second, "a renewed", func() bool { return a.SafeUntil().After(su) })
	if a.Err() != nil {
		t.Fatalf("a ended: %v", a.Err())
	}
}

// TestKeepAliveOldServerFallsBack: a server without the batched endpoint
// (405) gets per-session keep-alives, and the sessions live.
func TestKeepAliveOldServerFallsBack(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	kc := &kaCounter{oldServer: true}
	c := newCountingClient(t, srv.URL, kc, false)
	const ttl = 400 * time.Millisecond
	a := newSession(t, c, ttl)
	b := newSession(t, c, ttl)
	first := a.SafeUntil()
	if closedWithin(a.Done(), 4*ttl) || b.Err() != nil {
		t.Fatalf("a or b ended: %v %v", a.Err(), b.Err())
	}
	if !a.SafeUntil().After(first.Add(ttl)) {
		t.Fatalf("a's SafeUntil did not advance: %v → %v", first, a.SafeUntil())
	}
	batches, singles := kc.counts()
	if batches == 0 || singles < 2 {
		t.Fatalf("%d batched, %d per-session keep-alives: want the batch tried and per-session renewals", batches, singles)
	}
}

// TestPerSessionKeepAlives: with the option, only per-session requests are
// sent.
func TestPerSessionKeepAlives(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	kc := &kaCounter{}
	c := newCountingClient(t, srv.URL, kc, true)
	const ttl = 400 * time.Millisecond
	a := newSession(t, c, ttl)
	b := newSession(t, c, ttl)
	if closedWithin(a.Done(), 4*ttl) || b.Err() != nil {
		t.Fatalf("a or b ended: %v %v", a.Err(), b.Err())
	}
	batches, singles := kc.counts()
	if batches != 0 || singles < 4 {
		t.Fatalf("%d batched, %d per-session keep-alives: want only per-session ones", batches, singles)
	}
}

// TestKeeperStopsWithLastSession: the renewal goroutine exits when the
// Client's last session ends, and starts again with a new one.
func TestKeeperStopsWithLastSession(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	running := func() bool {
		c.keeper.mu.Lock()
		defer c.keeper.mu.Unlock()
		return c.keeper.running
	}
	for round := range 2 {
		s, err := c.NewSession(ctx, WithTTL(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !running() {
			t.Fatalf("round %d: no keeper with a session", round)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		await.True(t, 5*time.Second, "the keeper exits", func() bool { return !running() })
	}
}
