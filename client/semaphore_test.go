package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// semWaiting returns a condition: the last waiter of semaphore name is s.
func semWaiting(ctx context.Context, c *Client, name string, s *Session) func() bool {
	return func() bool {
		sem, err := c.SemaphoreInfo(ctx, name)
		return err == nil && len(sem.Waiters) > 0 && sem.Waiters[len(sem.Waiters)-1].Session == s.ID()
	}
}

// TestSemaphoreLimitHolds: of more sessions than permits, exactly limit
// get one by TryAcquire, the others a *FullError; then every session
// acquires and releases in turn, concurrently, and never more than limit
// are inside at once.
func TestSemaphoreLimitHolds(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const limit, workers, rounds = 3, 8, 3
	sems := make([]*Semaphore, workers)
	for i := range sems {
		sems[i] = newSession(t, c, 2*time.Second).NewSemaphore("pool", limit)
	}

	got := 0
	for _, sm := range sems {
		var full *FullError
		switch err := sm.TryAcquire(ctx); {
		case err == nil:
			got++
			if sm.Token() == 0 {
				t.Fatal("a held permit has token 0")
			}
		case errors.As(err, &full) && errors.Is(err, api.ErrLockHeld):
			if full.Limit != limit || len(full.Holders) != limit || full.Name != "pool" {
				t.Errorf("FullError %+v, want limit %d and %d holders", full, limit, limit)
			}
		default:
			t.Fatalf("TryAcquire: %v", err)
		}
	}
	if got != limit {
		t.Fatalf("%d TryAcquires succeeded, want %d", got, limit)
	}
	for _, sm := range sems {
		if sm.Token() != 0 {
			if err := sm.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for _, sm := range sems {
		wg.Go(func() {
			for range rounds {
				if err := sm.Acquire(ctx); err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				// The pause widens the window in which a permit too many
				// would show; it synchronises nothing.
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
				if err := sm.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > limit {
		t.Fatalf("%d sessions inside at once, limit %d", m, limit)
	}
	t.Logf("at most %d of %d inside at once", most.Load(), limit)
	if sem, err := c.SemaphoreInfo(ctx, "pool"); err != nil || len(sem.Holders) != 0 || len(sem.Waiters) != 0 {
		t.Fatalf("after the rounds: %+v %v, want nobody", sem, err)
	}
}

// TestSemaphoreFIFO: with both permits held, the first waiter gets the
// first permit released, the second the next; the waiters wait in chunks
// of 50ms and keep their places between them.
func TestSemaphoreFIFO(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	rec := newReqRecorder()
	c := newRecordingClient(t, srv.URL, rec, 50*time.Millisecond)
	ctx := testCtx(t)
	ses := make([]*Session, 4)
	sems := make([]*Semaphore, 4)
	for i := range ses {
		ses[i] = newSession(t, c, 2*time.Second)
		sems[i] = ses[i].NewSemaphore("fifo", 2)
	}
	for _, sm := range sems[:2] {
		if err := sm.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	granted := make(chan int, 2)
	var wg sync.WaitGroup
	for i := 2; i < 4; i++ {
		wg.Go(func() {
			if err := sems[i].Acquire(ctx); err != nil {
				t.Errorf("waiter %d: %v", i, err)
			}
			granted <- i
		})
		await.True(t, 10*time.Second, "waiter queued", semWaiting(ctx, c, "fifo", ses[i]))
	}
	// Two holders' and two waiters' tries, and at least four chunks.
	await.True(t, 10*time.Second, "four chunks", func() bool { return rec.count("POST /v1/semaphores/fifo/acquire") >= 4+4 })
	if sem, err := c.SemaphoreInfo(ctx, "fifo"); err != nil || len(sem.Waiters) != 2 || sem.Waiters[0].Session != ses[2].ID() {
		t.Fatalf("after the chunks: %+v %v, want waiters 2 then 3", sem, err)
	}
	if err := sems[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if first := <-granted; first != 2 {
		t.Fatalf("waiter %d granted first, want 2", first)
	}
	sem, err := c.SemaphoreInfo(ctx, "fifo")
	if err != nil || len(sem.Holders) != 2 || len(sem.Waiters) != 1 || sem.Waiters[0].Session != ses[3].ID() || sem.Limit != 2 {
		t.Fatalf("after the first release: %+v %v", sem, err)
	}
	if sems[2].Token() <= sems[1].Token() {
		t.Fatalf("token %d of the later permit is not above %d", sems[2].Token(), sems[1].Token())
	}
	if err := sems[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if second := <-granted; second != 3 {
		t.Fatalf("waiter %d granted second, want 3", second)
	}
	wg.Wait()
}

// TestSemaphoreLimitMismatchAndBadLimit: another limit while the
// semaphore has holders is api.ErrLimitMismatch, naming its limit; a
// limit out of bounds is refused before any request.
func TestSemaphoreLimitMismatchAndBadLimit(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	a, b := newSession(t, c, 2*time.Second), newSession(t, c, 2*time.Second)
	if err := a.NewSemaphore("m", 2).Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	other := b.NewSemaphore("m", 3)
	for _, f := range []func(context.Context) error{other.Acquire, other.TryAcquire} {
		err := f(ctx)
		var ae *api.Error
		if !errors.Is(err, api.ErrLimitMismatch) || !errors.As(err, &ae) || ae.Limit != 2 {
			t.Fatalf("limit 3 on a semaphore of 2: %v, want limit_mismatch naming limit 2", err)
		}
	}
	if sem, _ := c.SemaphoreInfo(ctx, "m"); len(sem.Waiters) != 0 || len(sem.Holders) != 1 {
		t.Fatalf("the mismatch changed something: %+v", sem)
	}
	for _, n := range []int{0, -1, api.MaxSemaphoreLimit + 1} {
		if err := b.NewSemaphore("m", n).Acquire(ctx); !errors.Is(err, api.ErrInvalidArgument) {
			t.Errorf("limit %d: %v, want invalid argument", n, err)
		}
	}
	if err := b.NewSemaphore("no spaces", 1).TryAcquire(ctx); !errors.Is(err, api.ErrInvalidArgument) {
		t.Errorf("invalid name: %v", err)
	}
	if err := b.NewSemaphore("m", 2).Release(ctx); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Release of nothing: %v, want ErrNotLocked", err)
	}
}

// TestSemaphoreLost: the permit's Lost stays open across renewals (the
// session's watch reads the semaphore), closes when someone releases the
// permit with its token while the session lives, and when another client
// closes the session.
func TestSemaphoreLost(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	operator := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 500 * time.Millisecond
	s := newSession(t, c, ttl)
	sm := s.NewSemaphore("lost", 2)
	if err := sm.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if closedWithin(sm.Lost(), 2*ttl) { // about six renewals and watches
		t.Fatal("Lost closed while the permit is held")
	}
	chk, err := operator.CheckPermit(ctx, "lost", sm.Token())
	if err != nil || !chk.Current || len(chk.Holders) != 1 {
		t.Fatalf("CheckPermit while held: %+v %v", chk, err)
	}

	// Released behind the Semaphore's back: the watch notices.
	token := sm.Token()
	if _, err := operator.do(ctx, call{method: http.MethodPost, path: semaphorePath("lost") + "/release", write: true,
		body: api.SemaphoreReleaseRequest{Session: s.ID(), Token: token}}, nil); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(sm.Lost(), 5*time.Second) {
		t.Fatal("Lost not closed after the permit was released by someone else")
	}
	if sm.Token() != 0 || s.Err() != nil {
		t.Fatalf("Token %d, session %v: want 0 and alive", sm.Token(), s.Err())
	}
	if err := sm.Release(ctx); !errors.Is(err, api.ErrNotHolder) {
		t.Fatalf("Release of a lost permit: %v, want not_holder", err)
	}
	if chk, err := operator.CheckPermit(ctx, "lost", token); err != nil || chk.Current {
		t.Fatalf("CheckPermit after the release: %+v %v", chk, err)
	}

	// The session closed by another client.
	if err := sm.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := operator.CloseSession(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(sm.Lost(), 5*time.Second) {
		t.Fatal("Lost not closed after the session was closed")
	}
	if !errors.Is(s.Err(), api.ErrSessionNotFound) {
		t.Fatalf("session error %v", s.Err())
	}
	if sem, err := operator.SemaphoreInfo(ctx, "lost"); err != nil || len(sem.Holders) != 0 {
		t.Fatalf("after the close: %+v %v", sem, err)
	}
}

// TestSemaphoreAcquireGivesUpItsPlace: an Acquire whose context ends
// leaves the queue.
func TestSemaphoreAcquireGivesUpItsPlace(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	if err := newSession(t, c, 2*time.Second).NewSemaphore("g", 1).Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	sm := newSession(t, c, 2*time.Second).NewSemaphore("g", 1)
	wctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if err := sm.Acquire(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire: %v, want the context's deadline", err)
	}
	if sem, err := c.SemaphoreInfo(ctx, "g"); err != nil || len(sem.Waiters) != 0 || len(sem.Holders) != 1 {
		t.Fatalf("after giving up: %+v %v, want no waiter", sem, err)
	}
	list, err := c.Semaphores(ctx, "")
	if err != nil || len(list) != 1 || list[0].Name != "g" {
		t.Fatalf("Semaphores: %+v %v", list, err)
	}
}

// lossyTransport applies every request but loses the answers to those
// whose path is lose (while set): the caller sees a broken connection.
type lossyTransport struct {
	base http.RoundTripper
	lose atomic.Pointer[string]
}

func (l *lossyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if p := l.lose.Load(); err == nil && p != nil && req.URL.Path == *p {
		resp.Body.Close()
		return nil, errors.New("connection reset (test)")
	}
	return resp, err
}

// TestReleaseAfterUnknownOutcome: a Release whose every answer was lost
// fails with an unknown outcome and keeps the permit; the next Release,
// answered not_holder (the first one took effect), succeeds.
func TestReleaseAfterUnknownOutcome(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	lt := &lossyTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := New(Config{Endpoints: []string{srv.URL}, RequestTimeout: 5 * time.Second, HTTPClient: &http.Client{Transport: lt}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := testCtx(t)
	sm := newSession(t, c, 2*time.Second).NewSemaphore("u", 1)
	if err := sm.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	path := semaphorePath("u") + "/release"
	lt.lose.Store(&path)
	if err := sm.Release(ctx); !errors.Is(err, api.ErrOutcomeUnknown) {
		t.Fatalf("Release with every answer lost: %v, want an unknown outcome", err)
	}
	if sm.Token() == 0 {
		t.Fatal("the permit was dropped after an unknown outcome")
	}
	lt.lose.Store(nil)
	if err := sm.Release(ctx); err != nil {
		t.Fatalf("Release after the unknown outcome: %v, want nil (the first took effect)", err)
	}
	if err := sm.Release(ctx); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("a third Release: %v, want ErrNotLocked", err)
	}
}
