package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
	"github.com/raftlock/raftlock/lock"
)

// testCtx returns a context that ends with the test or after 30s.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, endpoints ...string) *Client {
	t.Helper()
	c, err := New(Config{Endpoints: endpoints, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newSession(t *testing.T, c *Client, ttl time.Duration, opts ...SessionOption) *Session {
	t.Helper()
	s, err := c.NewSession(testCtx(t), append([]SessionOption{WithTTL(ttl)}, opts...)...)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close session %s: %v", s.ID(), err)
		}
	})
	return s
}

// closedWithin reports whether c is closed within d.
func closedWithin(c <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-t.C:
		return false
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestSessionKeepAliveOutlivesTTL(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 400 * time.Millisecond
	s := newSession(t, c, ttl, WithOwner("keeper"))
	if s.TTL() != ttl || s.ID() == 0 {
		t.Fatalf("session %v ttl %v", s.ID(), s.TTL())
	}
	first := s.SafeUntil()
	if d := time.Until(first); d <= 0 || d > ttl {
		t.Fatalf("SafeUntil %v from now, want within (0, %v]", d, ttl)
	}
	// Five TTLs: without renewals the server would have expired it.
	if closedWithin(s.Done(), 5*ttl) {
		t.Fatalf("session ended: %v", s.Err())
	}
	if s.Err() != nil || s.Ctx().Err() != nil {
		t.Fatalf("Err %v, Ctx %v", s.Err(), s.Ctx().Err())
	}
	if !s.SafeUntil().After(first.Add(3 * ttl)) {
		t.Fatalf("SafeUntil did not advance: first %v, now %v", first, s.SafeUntil())
	}
	info, err := c.SessionInfo(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if info.Owner != "keeper" || time.Duration(info.TTL) != ttl {
		t.Fatalf("session info %+v", info)
	}
}

func TestCloseReleasesLocks(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s, err := c.NewSession(ctx, WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m := s.NewMutex("jobs/nightly")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	lost := m.Lost()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(s.Done()) || s.Ctx().Err() == nil || !errors.Is(s.Err(), ErrSessionClosed) {
		t.Fatalf("after Close: done %v ctx %v err %v", isClosed(s.Done()), s.Ctx().Err(), s.Err())
	}
	if !isClosed(lost) || m.Token() != 0 {
		t.Fatalf("after Close: lost closed %v, token %d", isClosed(lost), m.Token())
	}
	l, err := c.LockInfo(ctx, "jobs/nightly")
	if err != nil {
		t.Fatal(err)
	}
	if l.Holder != nil {
		t.Fatalf("lock still held after Close: %+v", l.Holder)
	}
	if _, err := c.SessionInfo(ctx, s.ID()); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("SessionInfo after Close: %v, want api.ErrSessionNotFound", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.Lock(ctx); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Lock on a closed session: %v, want ErrSessionClosed", err)
	}
}

func TestLockUnlockToken(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second)
	m := s.NewMutex("a")
	if m.Name() != "a" || m.Token() != 0 || !isClosed(m.Lost()) {
		t.Fatalf("fresh mutex: name %q token %d", m.Name(), m.Token())
	}
	if err := m.Unlock(ctx); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("Unlock of an unlocked mutex: %v", err)
	}
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	tok := m.Token()
	if tok == 0 || isClosed(m.Lost()) {
		t.Fatalf("after Lock: token %d, lost closed %v", tok, isClosed(m.Lost()))
	}
	l, err := c.LockInfo(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if l.Holder == nil || l.Holder.Session != s.ID() || l.Holder.Token != tok {
		t.Fatalf("GET lock: %+v, want session %v token %d", l.Holder, s.ID(), tok)
	}
	if err := m.Lock(ctx); err != nil || m.Token() != tok {
		t.Fatalf("Lock of a held mutex: %v, token %d", err, m.Token())
	}
	if err := m.TryLock(ctx); err != nil || m.Token() != tok {
		t.Fatalf("TryLock of a held mutex: %v, token %d", err, m.Token())
	}
	lost := m.Lost()
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Token() != 0 || isClosed(lost) {
		t.Fatalf("after Unlock: token %d, old lost closed %v", m.Token(), isClosed(lost))
	}
	if l, _ := c.LockInfo(ctx, "a"); l == nil || l.Holder != nil {
		t.Fatalf("lock after Unlock: %+v", l)
	}
	if err := m.TryLock(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Token() <= tok {
		t.Fatalf("second token %d, not above the first %d", m.Token(), tok)
	}
	locks, err := c.Locks(ctx, "")
	if err != nil || len(locks) != 1 || locks[0].Name != "a" {
		t.Fatalf("Locks: %+v %v", locks, err)
	}
	if locks, err := c.Locks(ctx, "b"); err != nil || len(locks) != 0 {
		t.Fatalf("Locks(b): %+v %v", locks, err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTryLockHeld(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s1 := newSession(t, c, time.Second, WithOwner("one"))
	s2 := newSession(t, c, time.Second)
	m1 := s1.NewMutex("x")
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	m2 := s2.NewMutex("x")
	err := m2.TryLock(ctx)
	if !errors.Is(err, api.ErrLockHeld) || !errors.Is(err, api.ErrLockHeld) {
		t.Fatalf("TryLock of a held lock: %v, want api.ErrLockHeld", err)
	}
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("TryLock error %T is not a *LockedError", err)
	}
	if le.Name != "x" || le.Holder.Session != s1.ID() || le.Holder.Owner != "one" || le.Holder.Token != m1.Token() {
		t.Fatalf("LockedError %+v, want holder %v with token %d", le, s1.ID(), m1.Token())
	}
	if !strings.Contains(le.Error(), s1.ID().String()) {
		t.Fatalf("message %q does not name the holder", le.Error())
	}
	if m2.Token() != 0 {
		t.Fatal("token after a failed TryLock")
	}
	if l, _ := c.LockInfo(ctx, "x"); l == nil || len(l.Waiters) != 0 {
		t.Fatalf("TryLock left a waiter: %+v", l)
	}
}

func TestContentionNeverTwoHolders(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const workers, rounds = 3, 8
	var (
		inside atomic.Int32
		mu     sync.Mutex
		tokens []uint64
		wg     sync.WaitGroup
		errs   = make(chan error, workers*rounds)
	)
	for w := 0; w < workers; w++ {
		s := newSession(t, c, time.Second)
		m := s.NewMutex("contended")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := m.Lock(ctx); err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- errors.New("two holders at once")
				}
				mu.Lock()
				tokens = append(tokens, m.Token())
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // under test: hold it a little, to give others a chance to break in
				inside.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(tokens) != workers*rounds {
		t.Fatalf("%d grants, want %d", len(tokens), workers*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("tokens not increasing: %v", tokens)
		}
	}
}

func TestLockTimeoutLeavesQueue(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s1 := newSession(t, c, time.Second)
	s2 := newSession(t, c, time.Second)
	m1 := s1.NewMutex("q")
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	m2 := s2.NewMutex("q")
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m2.Lock(wctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with a short deadline: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("Lock gave up after %v, before its deadline", d)
	}
	if m2.Token() != 0 {
		t.Fatal("token after a timed-out Lock")
	}
	l, err := c.LockInfo(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Waiters) != 0 || l.Holder == nil || l.Holder.Session != s1.ID() {
		t.Fatalf("after the timed-out Lock: %+v", l)
	}
	info, err := c.SessionInfo(ctx, s2.ID())
	if err != nil || len(info.Waiting) != 0 || len(info.Locks) != 0 {
		t.Fatalf("waiter's session: %+v %v", info, err)
	}
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := c.LockInfo(ctx, "q"); err != nil || l.Holder != nil {
		t.Fatalf("after the holder's Unlock the lock went to %+v (%v), want free", l, err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s1 := newSession(t, c, time.Second)
	s2 := newSession(t, c, time.Second)
	m1, m2 := s1.NewMutex("w"), s2.NewMutex("w")
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m2.Lock(ctx) }()
	await.True(t, 5*time.Second, "the second session queued", func() bool {
		l, err := c.LockInfo(ctx, "w")
		return err == nil && len(l.Waiters) == 1 && l.Waiters[0].Session == s2.ID()
	})
	tok := m1.Token()
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m2.Token() <= tok {
		t.Fatalf("waiter's token %d not above %d", m2.Token(), tok)
	}
}

func TestLostWhenOperatorClosesSession(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s, err := c.NewSession(ctx, WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	m := s.NewMutex("op")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	lost := m.Lost()
	op := newClient(t, srv.URL)
	if err := op.CloseSession(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// One keep-alive interval is TTL/3; allow a few for a loaded machine.
	if !closedWithin(lost, 1500*time.Millisecond) {
		t.Fatal("Lost not closed after an operator closed the session")
	}
	t.Logf("loss noticed after %v", time.Since(start))
	// Done and Lost close just before Ctx is cancelled (Session.end):
	// await Ctx too rather than sample it.
	if !closedWithin(s.Done(), time.Second) || !closedWithin(s.Ctx().Done(), time.Second) {
		t.Fatal("session not ended")
	}
	if err := s.Err(); !errors.Is(err, ErrSessionLost) || !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("Err %v, want ErrSessionLost and api.ErrSessionNotFound", err)
	}
	if m.Token() != 0 {
		t.Fatal("token of a lost hold")
	}
	if err := m.Lock(ctx); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("Lock on a lost session: %v", err)
	}
	if err := op.CloseSession(ctx, s.ID()); !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("second CloseSession: %v, want api.ErrSessionNotFound", err)
	}
}

func TestLostWhenLockReleasedBySomeoneElse(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second)
	m := s.NewMutex("stolen")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	lost, tok := m.Lost(), m.Token()
	// Anybody who knows the holder's session and token can release it.
	releaseBehind(t, newClient(t, srv.URL), m, s)
	if !closedWithin(lost, 1500*time.Millisecond) {
		t.Fatal("Lost not closed after the lock was released behind the mutex's back")
	}
	if isClosed(s.Done()) {
		t.Fatalf("the session ended too: %v", s.Err())
	}
	err := m.Unlock(ctx)
	var ae *api.Error
	if !errors.Is(err, api.ErrNotHolder) || !errors.Is(err, api.ErrNotHolder) || !errors.As(err, &ae) || ae.Code != api.CodeNotHolder {
		t.Fatalf("Unlock of a lost hold: %v, want api.ErrNotHolder", err)
	}
	if m.Token() != 0 {
		t.Fatal("token after Unlock")
	}
	// The mutex can be locked again, with a new Lost channel.
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if isClosed(m.Lost()) || m.Token() <= tok {
		t.Fatalf("new hold: lost %v token %d", isClosed(m.Lost()), m.Token())
	}
}

func TestSessionLostWhenRenewalsStop(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 500 * time.Millisecond
	s, err := c.NewSession(ctx, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	m := s.NewMutex("expiring")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	s.skipRenewals.Store(true)
	safe := s.SafeUntil()
	if !closedWithin(s.Ctx().Done(), 3*ttl) {
		t.Fatal("Ctx not cancelled after renewals stopped")
	}
	if now := time.Now(); now.Before(safe) {
		t.Fatalf("Ctx cancelled %v before SafeUntil", safe.Sub(now))
	}
	if !isClosed(s.Done()) || !isClosed(m.Lost()) {
		t.Fatal("Done or Lost not closed")
	}
	if err := s.Err(); !errors.Is(err, ErrSessionLost) || errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Err %v, want ErrSessionLost", err)
	}
	// The server expires it on its own, which frees the lock.
	await.True(t, 5*time.Second, "the server expires the session", func() bool {
		_, err := c.SessionInfo(ctx, s.ID())
		return errors.Is(err, api.ErrSessionNotFound)
	})
	if l, err := c.LockInfo(ctx, "expiring"); err != nil || l.Holder != nil {
		t.Fatalf("lock of an expired session: %+v %v", l, err)
	}
}

func TestErrorMapping(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second)
	_, err := c.do(ctx, call{method: http.MethodPost, path: api.LockPath("m") + "/release", write: true,
		body: api.ReleaseRequest{Session: s.ID(), Token: 12345}}, nil)
	var ae *api.Error
	if !errors.Is(err, api.ErrNotHolder) || !errors.Is(err, api.ErrNotHolder) || !errors.As(err, &ae) || ae.Code != api.CodeNotHolder {
		t.Fatalf("release of an unheld lock: %v", err)
	}
	if _, err := c.SessionInfo(ctx, 999999); !errors.Is(err, api.ErrSessionNotFound) || !errors.Is(err, api.ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if _, err := c.NewSession(ctx, WithTTL(time.Millisecond)); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("TTL below the minimum: %v", err)
	}
	if err := s.NewMutex("bad name!").Lock(ctx); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("bad lock name: %v", err)
	}
	if _, err := New(Config{}); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("New without endpoints: %v", err)
	}
	if _, err := New(Config{Endpoints: []string{"127.0.0.1:7070"}}); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("New with a URL without scheme: %v", err)
	}
}

func TestEndpointRotation(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, "http://127.0.0.1:1", srv.URL)
	ctx := testCtx(t)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status with a dead first endpoint: %v", err)
	}
	if st.Leader == 0 {
		t.Fatalf("status %+v", st)
	}
	// A session can be opened: a refused connection sent nothing.
	c2 := newClient(t, "http://127.0.0.1:1", srv.URL)
	s := newSession(t, c2, time.Second)
	if err := s.NewMutex("r").Lock(ctx); err != nil {
		t.Fatal(err)
	}
	// Only dead endpoints: api.ErrUnavailable, bounded.
	dead := newClient(t, "http://127.0.0.1:1", "http://127.0.0.1:2")
	start := time.Now()
	if _, err := dead.Status(ctx); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("Status with dead endpoints: %v, want api.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

// fake is an httptest server answering every request with status and
// body, with the leader header when set; it counts requests by path.
type fake struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newFake(t *testing.T, status int, body, leader string) *fake {
	f := &fake{hits: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.Method+" "+r.URL.Path]++
		f.mu.Unlock()
		if leader != "" {
			w.Header().Set(api.HeaderLeader, leader)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

const (
	bodyUnavailable = `{"error":{"code":"unavailable","message":"not the leader"}}`
	bodyTimeout     = `{"error":{"code":"timeout","message":"outcome unknown"}}`
)

// A follower's 503 names the leader, a member whose client URL the member
// list (GET /v1/status, asked from the follower) has: the SDK goes there
// at once, and stays.
func TestLeaderHeaderFollowed(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	f := newAPIFake(t, false, map[string]route{"POST /v1/sessions": {status: http.StatusServiceUnavailable, body: bodyUnavailable}})
	f.set("GET /v1/status", route{status: http.StatusOK, body: statusBody(t, f.URL, srv.URL)})
	f.setLeader(srv.URL)
	c := newClient(t, f.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second)
	m := s.NewMutex("led")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.requests() {
		got = append(got, r.method+" "+r.path)
	}
	if want := []string{"POST /v1/sessions", "GET /v1/status"}; !slices.Equal(got, want) {
		t.Fatalf("requests to the follower: %q, want %q (then all to the leader)", got, want)
	}
}

// TestCreateSessionRetriedWithItsRequestID: the first attempt to open a
// session opens it on the server, but its answer is lost (a 503 timeout);
// NewSession retries with the same client request ID and gets the session
// that attempt opened: no second session.
func TestCreateSessionRetriedWithItsRequestID(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	var (
		mu     sync.Mutex
		bodies []string
	)
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sessions" {
			proxy.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		first := len(bodies) == 1
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		if !first {
			proxy.ServeHTTP(w, r)
			return
		}
		// The server opens the session; its answer is lost.
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			t.Errorf("first attempt: %d %s", rec.Code, rec.Body)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, bodyTimeout)
	}))
	t.Cleanup(lossy.Close)
	c := newClient(t, lossy.URL)
	ctx := testCtx(t)
	s, err := c.NewSession(ctx, WithTTL(time.Second))
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	defer s.Close(ctx)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || bodies[0] != bodies[1] || !strings.Contains(bodies[0], `"request_id":"`) {
		t.Fatalf("attempts %q: want two with the same request ID", bodies)
	}
	var opened int
	if err := srv.Node.Read(ctx, false, func(m *lock.Machine) {
		for id := uint64(1); id <= m.AppliedIndex(); id++ {
			if _, ok := m.Session(id); ok {
				opened++
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if opened != 1 {
		t.Fatalf("%d sessions exist after a retried open, want 1 (%s)", opened, s.ID())
	}
}

func TestIdempotentWritesRetriedUntilKnown(t *testing.T) {
	f1 := newFake(t, http.StatusServiceUnavailable, bodyTimeout, "")
	f2 := newFake(t, http.StatusServiceUnavailable, bodyTimeout, "")
	c := newClient(t, f1.URL, f2.URL)
	ctx := testCtx(t)
	// An idempotent write is retried, and exhausted retries still say
	// "unknown", never success.
	err := c.CloseSession(ctx, 42)
	if !errors.Is(err, api.ErrOutcomeUnknown) {
		t.Fatalf("CloseSession: %v, want api.ErrOutcomeUnknown", err)
	}
	if n := f1.count("DELETE /v1/sessions/42") + f2.count("DELETE /v1/sessions/42"); n < 2 {
		t.Fatalf("idempotent DELETE sent %d times, want retries", n)
	}
}

// TestUnlockRetryAfterUnknownOutcome: the first release is applied but its
// answer is lost (503 timeout); the retry answers not_holder, which Unlock
// takes as done.
func TestUnlockRetryAfterUnknownOutcome(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	var releases atomic.Int32
	fwd := &http.Client{}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, srv.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := fwd.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if strings.HasSuffix(r.URL.Path, "/release") && releases.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // applied, but the answer is "unknown"
			io.WriteString(w, bodyTimeout)
			return
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	t.Cleanup(func() {
		proxy.CloseClientConnections()
		proxy.Close()
		fwd.CloseIdleConnections()
	})
	c := newClient(t, proxy.URL)
	ctx := testCtx(t)
	s := newSession(t, c, time.Second)
	m := s.NewMutex("u")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatalf("Unlock whose first answer was lost: %v", err)
	}
	if releases.Load() != 2 {
		t.Fatalf("%d releases sent, want 2", releases.Load())
	}
	if l, err := c.LockInfo(ctx, "u"); err != nil || l.Holder != nil {
		t.Fatalf("lock after Unlock: %+v %v", l, err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvEndpoints, "")
	if cfg := FromEnv(); len(cfg.Endpoints) != 1 || cfg.Endpoints[0] != DefaultEndpoint {
		t.Fatalf("default: %+v", cfg)
	}
	t.Setenv(EnvEndpoints, " http://a:1 ,, http://b:2/")
	cfg := FromEnv()
	if len(cfg.Endpoints) != 2 || cfg.Endpoints[0] != "http://a:1" || cfg.Endpoints[1] != "http://b:2/" {
		t.Fatalf("from env: %+v", cfg)
	}
	c, err := New(cfg)
	if err != nil || c.eps[1] != "http://b:2" {
		t.Fatalf("New: %v %v", c, err)
	}
}
