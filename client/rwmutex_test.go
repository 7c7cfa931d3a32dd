package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// lockWaiting returns a condition: the last waiter of lock name is s.
func lockWaiting(ctx context.Context, c *Client, name string, s *Session) func() bool {
	return func() bool {
		l, err := c.LockInfo(ctx, name)
		return err == nil && len(l.Waiters) > 0 && l.Waiters[len(l.Waiters)-1].Session == s.ID()
	}
}

// TestRWMutexReadersShareWritersWait: two sessions hold the lock shared
// together (the second without waiting); a writer is refused by TryLock,
// waits through the first RUnlock and is granted after the second.
func TestRWMutexReadersShareWritersWait(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	r1 := newSession(t, c, 2*time.Second).NewRWMutex("rw")
	r2 := newSession(t, c, 2*time.Second).NewRWMutex("rw")
	ws := newSession(t, c, 2*time.Second)
	w := ws.NewRWMutex("rw")

	if err := r1.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.TryRLock(ctx); err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if r1.Mode() != api.ModeShared || r1.Token() == 0 || r2.Token() <= r1.Token() {
		t.Fatalf("readers: mode %q, tokens %d and %d", r1.Mode(), r1.Token(), r2.Token())
	}
	l, err := c.LockInfo(ctx, "rw")
	if err != nil || l.Holder != nil || len(l.Holders) != 2 || l.Holders[0].Mode != api.ModeShared {
		t.Fatalf("lock held by two readers: %+v %v", l, err)
	}
	for _, r := range []*RWMutex{r1, r2} {
		if chk, err := c.CheckToken(ctx, "rw", r.Token()); err != nil || !chk.Current {
			t.Fatalf("CheckToken of a shared token: %+v %v", chk, err)
		}
	}

	var le *LockedError
	if err := w.TryLock(ctx); !errors.As(err, &le) || !errors.Is(err, api.ErrLockHeld) || len(le.Holders) != 2 || le.Holder.Session != 0 {
		t.Fatalf("TryLock of a lock held shared: %v (%+v), want a LockedError with both holders", err, le)
	}
	granted := make(chan error, 1)
	go func() { granted <- w.Lock(ctx) }()
	await.True(t, 10*time.Second, "the writer queued", lockWaiting(ctx, c, "rw", ws))
	if err := r1.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	// One reader still holds: the writer still waits.
	if l, err := c.LockInfo(ctx, "rw"); err != nil || len(l.Holders) != 1 || l.Holders[0].Token != r2.Token() || len(l.Waiters) != 1 {
		t.Fatalf("after the first RUnlock: %+v %v", l, err)
	}
	select {
	case err := <-granted:
		t.Fatalf("the writer was granted (%v) while a reader holds", err)
	default:
	}
	if err := r2.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-granted; err != nil {
		t.Fatal(err)
	}
	if w.Mode() != api.ModeExclusive || w.Token() <= r2.Token() {
		t.Fatalf("writer: mode %q, token %d", w.Mode(), w.Token())
	}
	if err := r1.TryRLock(ctx); !errors.As(err, &le) || le.Holder.Session != ws.ID() {
		t.Fatalf("TryRLock of a lock held exclusively: %v, want a LockedError naming the writer", err)
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRWMutexReaderWaitsBehindWriter: a shared request behind a waiting
// exclusive one waits (TryRLock is refused), so the writer is granted
// when the reader that holds leaves, and the late reader after the
// writer.
func TestRWMutexReaderWaitsBehindWriter(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	r1 := newSession(t, c, 2*time.Second).NewRWMutex("fair")
	ws, rs := newSession(t, c, 2*time.Second), newSession(t, c, 2*time.Second)
	w, r2 := ws.NewRWMutex("fair"), rs.NewRWMutex("fair")
	if err := r1.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Lock(ctx); err != nil {
			t.Errorf("writer: %v", err)
		}
		order <- "writer"
		if err := w.Unlock(ctx); err != nil {
			t.Errorf("writer unlock: %v", err)
		}
	})
	await.True(t, 10*time.Second, "the writer queued", lockWaiting(ctx, c, "fair", ws))
	var le *LockedError
	if err := r2.TryRLock(ctx); !errors.As(err, &le) {
		t.Fatalf("TryRLock behind a waiting writer: %v, want a LockedError", err)
	}
	wg.Go(func() {
		if err := r2.RLock(ctx); err != nil {
			t.Errorf("late reader: %v", err)
		}
		order <- "reader"
		if err := r2.RUnlock(ctx); err != nil {
			t.Errorf("late reader runlock: %v", err)
		}
	})
	await.True(t, 10*time.Second, "the late reader queued behind the writer", lockWaiting(ctx, c, "fair", rs))
	if err := r1.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(order)
	if first, second := <-order, <-order; first != "writer" || second != "reader" {
		t.Fatalf("granted %s then %s, want the writer then the reader", first, second)
	}
}

// TestRWMutexModeMismatch: an RWMutex asked for the other mode than it
// holds refuses without a request; the server's mode_mismatch (two
// RWMutexes of one session) surfaces as api.ErrModeMismatch.
func TestRWMutexModeMismatch(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	rec := newReqRecorder()
	c := newRecordingClient(t, srv.URL, rec, time.Minute)
	ctx := testCtx(t)
	s := newSession(t, c, 2*time.Second)
	rw := s.NewRWMutex("mm")
	if err := rw.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	const acquires, releases = "POST /v1/locks/mm/acquire", "POST /v1/locks/mm/release"
	before, relBefore := rec.count(acquires), rec.count(releases)
	for name, f := range map[string]func(context.Context) error{"Lock": rw.Lock, "TryLock": rw.TryLock, "Unlock": rw.Unlock} {
		if err := f(ctx); !errors.Is(err, api.ErrModeMismatch) {
			t.Errorf("%s while held shared: %v, want mode mismatch", name, err)
		}
	}
	if err := rw.RLock(ctx); err != nil {
		t.Errorf("RLock while held shared: %v, want nil", err)
	}
	if n, m := rec.count(acquires)-before, rec.count(releases)-relBefore; n != 0 || m != 0 {
		t.Errorf("%d acquires and %d releases sent; a local refusal sends none", n, m)
	}
	other := s.NewRWMutex("mm") // the same session: the server refuses the other mode
	if err := other.Lock(ctx); !errors.Is(err, api.ErrModeMismatch) {
		t.Fatalf("server side: %v, want mode mismatch", err)
	}
	if err := rw.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rw.RUnlock(ctx); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("RUnlock of nothing: %v", err)
	}
	if err := rw.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rw.RLock(ctx); !errors.Is(err, api.ErrModeMismatch) {
		t.Fatalf("RLock while held exclusively: %v", err)
	}
	if err := rw.RUnlock(ctx); !errors.Is(err, api.ErrModeMismatch) {
		t.Fatalf("RUnlock while held exclusively: %v", err)
	}
	if err := rw.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRWMutexSharedHoldLost: a shared hold's Lost stays open across
// renewals, and closes when someone releases it with its token while the
// session lives (the watch confirms with the lock's holders).
func TestRWMutexSharedHoldLost(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	operator := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 500 * time.Millisecond
	s := newSession(t, c, ttl)
	rw := s.NewRWMutex("sl")
	other := newSession(t, c, 2*time.Second).NewRWMutex("sl")
	for _, r := range []*RWMutex{rw, other} {
		if err := r.RLock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if closedWithin(rw.Lost(), 2*ttl) {
		t.Fatal("Lost closed while the lock is held shared")
	}
	if _, err := operator.do(ctx, call{method: http.MethodPost, path: api.LockPath("sl") + "/release", write: true,
		body: api.ReleaseRequest{Session: s.ID(), Token: rw.Token()}}, nil); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(rw.Lost(), 5*time.Second) {
		t.Fatal("Lost not closed after the shared hold was released by someone else")
	}
	if s.Err() != nil || isClosed(other.Lost()) {
		t.Fatalf("session %v, other reader lost %v: want both alive", s.Err(), isClosed(other.Lost()))
	}
}

// TestTryLockAllModes: one atomic batch takes one lock shared and another
// exclusively; another session may share the first but not take the
// second.
func TestTryLockAllModes(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s, o := newSession(t, c, 2*time.Second), newSession(t, c, 2*time.Second)
	rws, err := s.TryLockAllModes(ctx, LockSpec{Name: "cfg", Shared: true}, LockSpec{Name: "out"})
	if err != nil {
		t.Fatal(err)
	}
	if rws[0].Mode() != api.ModeShared || rws[1].Mode() != api.ModeExclusive || rws[0].Token() != rws[1].Token() {
		t.Fatalf("modes %q %q, tokens %d %d", rws[0].Mode(), rws[1].Mode(), rws[0].Token(), rws[1].Token())
	}
	if err := o.NewRWMutex("cfg").TryRLock(ctx); err != nil {
		t.Fatalf("sharing cfg: %v", err)
	}
	if _, err := o.TryLockAllModes(ctx, LockSpec{Name: "other"}, LockSpec{Name: "out", Shared: true}); !errors.Is(err, api.ErrLockHeld) {
		t.Fatalf("out is held exclusively: %v", err)
	}
	if l, _ := c.LockInfo(ctx, "other"); len(l.Holders) != 0 {
		t.Fatalf("the refused batch took %+v", l)
	}
	if err := rws[0].RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rws[1].Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSharedTriesCoalesce: shared tries and releases of many goroutines go
// through the batcher like exclusive ones (their ops carry the mode, which
// encoding/json writes), and every one is granted shared.
func TestSharedTriesCoalesce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	rec := newReqRecorder()
	c, err := New(Config{Endpoints: []string{srv.URL}, RequestTimeout: 5 * time.Second, HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := testCtx(t)
	const n = 32
	rws := make([]*RWMutex, n)
	for i := range rws {
		rws[i] = newSession(t, c, 2*time.Second).NewRWMutex("many")
	}
	var wg sync.WaitGroup
	for _, rw := range rws {
		wg.Go(func() {
			if err := rw.TryRLock(ctx); err != nil {
				t.Errorf("TryRLock: %v", err)
			}
		})
	}
	wg.Wait()
	if l, err := c.LockInfo(ctx, "many"); err != nil || len(l.Holders) != n {
		t.Fatalf("%d holders (%v), want %d", len(l.Holders), err, n)
	}
	for _, rw := range rws {
		wg.Go(func() {
			if err := rw.RUnlock(ctx); err != nil {
				t.Errorf("RUnlock: %v", err)
			}
		})
	}
	wg.Wait()
	if l, err := c.LockInfo(ctx, "many"); err != nil || len(l.Holders) != 0 {
		t.Fatalf("after the RUnlocks: %+v %v", l, err)
	}
	// Whether requests queued for a batch depends on timing: reported, not
	// required.
	t.Logf("%d batches", rec.count("POST /v1/batch"))
}
