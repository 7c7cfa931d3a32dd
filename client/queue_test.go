package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// reqRecorder is an http.RoundTripper that counts requests by method, path
// and session (from the body), and can run a hook before a request goes.
type reqRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
	// before, when set, runs before a request is sent (key as in count).
	before func(key string)
}

func newReqRecorder() *reqRecorder {
	return &reqRecorder{base: http.DefaultTransport.(*http.Transport).Clone(), n: map[string]int{}}
}

func (r *reqRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.Method + " " + req.URL.Path
	r.mu.Lock()
	r.n[key]++
	before := r.before
	r.mu.Unlock()
	if before != nil {
		before(key)
	}
	return r.base.RoundTrip(req)
}

func (r *reqRecorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

func newRecordingClient(t *testing.T, url string, rec *reqRecorder, chunk time.Duration) *Client {
	t.Helper()
	c, err := New(Config{Endpoints: []string{url}, RequestTimeout: 5 * time.Second, WaitChunk: chunk,
		HTTPClient: &http.Client{Transport: rec}, UnbatchedLocks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLockKeepsItsPlaceAcrossChunks: with a wait chunk of 100ms, a Lock
// that waits through at least three chunks keeps its FIFO place: a session
// that queued after it (and waits in one long chunk) is granted only after
// it. (Without keep_queued, each chunk would put it behind the other.)
func TestLockKeepsItsPlaceAcrossChunks(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	rec := newReqRecorder()
	c := newRecordingClient(t, srv.URL, rec, 100*time.Millisecond)
	long := newRecordingClient(t, srv.URL, newReqRecorder(), time.Minute)
	ctx := testCtx(t)
	a := newSession(t, c, 2*time.Second)
	b := newSession(t, c, 2*time.Second)
	d := newSession(t, long, 2*time.Second)
	ma, mb, md := a.NewMutex("q"), b.NewMutex("q"), d.NewMutex("q")
	if err := ma.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := mb.Lock(ctx); err != nil {
			t.Errorf("b: %v", err)
		}
		order <- "b"
		if err := mb.Unlock(ctx); err != nil {
			t.Errorf("b unlock: %v", err)
		}
	})
	waiting := func(s *Session) func() bool {
		return func() bool {
			l, err := c.LockInfo(ctx, "q")
			return err == nil && len(l.Waiters) > 0 && l.Waiters[len(l.Waiters)-1].Session == s.ID()
		}
	}
	await.True(t, 10*time.Second, "b queued", waiting(b))
	wg.Go(func() {
		if err := md.Lock(ctx); err != nil {
			t.Errorf("d: %v", err)
		}
		order <- "d"
		if err := md.Unlock(ctx); err != nil {
			t.Errorf("d unlock: %v", err)
		}
	})
	await.True(t, 10*time.Second, "d queued behind b", waiting(d))
	// Three chunks of b's wait: a's and b's tries, and at least 3 waiting
	// acquires of b, all on the same place.
	await.True(t, 10*time.Second, "three chunks", func() bool { return rec.count("POST /v1/locks/q/acquire") >= 2+3 })
	if l, _ := c.LockInfo(ctx, "q"); len(l.Waiters) != 2 || l.Waiters[0].Session != b.ID() || l.Waiters[1].Session != d.ID() {
		t.Fatalf("after three chunks the queue is %+v, want b then d", l.Waiters)
	}
	if err := ma.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(order)
	if first, second := <-order, <-order; first != "b" || second != "d" {
		t.Fatalf("granted %s then %s, want b then d", first, second)
	}
}

// TestLockGivesUpItsPlace: a Lock whose context ends leaves the queue (a
// cancel, acknowledged), so the session keeps no place that nobody uses;
// and a grant that won the race with the cancel is released.
func TestLockGivesUpItsPlace(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	rec := newReqRecorder()
	c := newRecordingClient(t, srv.URL, rec, time.Minute)
	ctx := testCtx(t)
	a := newSession(t, c, 2*time.Second)
	b := newSession(t, c, 2*time.Second)
	ma, mb := a.NewMutex("g"), b.NewMutex("g")
	if err := ma.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if err := mb.Lock(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock: %v, want the context's deadline", err)
	}
	if n := rec.count("POST /v1/locks/g/cancel"); n == 0 {
		t.Fatal("no cancel was sent")
	}
	if l, _ := c.LockInfo(ctx, "g"); len(l.Waiters) != 0 {
		t.Fatalf("the session kept its place: %+v", l.Waiters)
	}

	// The race: the holder releases just before the cancel arrives, so the
	// grant wins; the cancel names it and the SDK releases it.
	var once atomic.Bool
	rec.mu.Lock()
	rec.before = func(key string) {
		if key == "POST /v1/locks/g/cancel" && once.CompareAndSwap(false, true) {
			if err := ma.Unlock(context.Background()); err != nil {
				t.Errorf("unlock a: %v", err)
			}
		}
	}
	rec.mu.Unlock()
	wctx, cancel = context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if err := mb.Lock(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock: %v, want the context's deadline", err)
	}
	if !once.Load() {
		t.Fatal("the hook did not run")
	}
	if l, err := c.LockInfo(ctx, "g"); err != nil || l.Holder != nil || len(l.Waiters) != 0 {
		t.Fatalf("after the race: %+v %v, want the lock free (the grant released)", l, err)
	}
	if mb.Token() != 0 {
		t.Fatal("the Mutex thinks it holds")
	}
}

// TestCampaignKeepsItsPlaceAndGivesItUp: the same for elections.
func TestCampaignKeepsItsPlaceAndGivesItUp(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	rec := newReqRecorder()
	c := newRecordingClient(t, srv.URL, rec, 100*time.Millisecond)
	ctx := testCtx(t)
	a := newSession(t, c, 2*time.Second)
	b := newSession(t, c, 2*time.Second)
	ea, eb := a.NewElection("e"), b.NewElection("e")
	if err := ea.Campaign(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 450*time.Millisecond)
	defer cancel()
	if err := eb.Campaign(wctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Campaign: %v, want the context's deadline", err)
	}
	if n := rec.count("POST /v1/elections/e/campaign"); n < 4 {
		t.Fatalf("%d campaign requests, want at least the first and three more chunks", n)
	}
	if n := rec.count("POST /v1/elections/e/cancel"); n == 0 {
		t.Fatal("no cancel was sent")
	}
	if el, _ := c.ElectionInfo(ctx, "e"); len(el.Candidates) != 0 {
		t.Fatalf("the candidacy stayed: %+v", el.Candidates)
	}
}

// TestSettleGoesOnInTheBackground: a clean-up the cluster does not answer
// within its timeout goes on in the background, holding the caller's turn,
// until it is answered.
func TestSettleGoesOnInTheBackground(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	s := newSession(t, c, 2*time.Second)
	var answered atomic.Bool
	var tries atomic.Int64
	work := func(context.Context) bool { tries.Add(1); return answered.Load() }
	released := make(chan struct{})
	if !s.settle(context.Background(), 20*time.Millisecond, "x", work, func() { close(released) }) {
		t.Fatal("an unanswered clean-up did not go on in the background")
	}
	await.True(t, 10*time.Second, "the background clean-up retries", func() bool { return tries.Load() > 3 })
	select {
	case <-released:
		t.Fatal("the turn was released before the clean-up was answered")
	default:
	}
	answered.Store(true)
	<-released
	if s.settle(context.Background(), time.Second, "y", work, func() { t.Error("released a turn never taken") }) {
		t.Fatal("an answered clean-up went to the background")
	}
}

// TestLocksReadsEveryPage: Client.Locks follows the listing's pages.
func TestLocksReadsEveryPage(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	s := newSession(t, c, 2*time.Second)
	const n = 2500 // three pages of 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- s.NewMutex(fmt.Sprintf("p/%04d", i)).TryLock(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ls, err := c.Locks(ctx, "p/")
	if err != nil || len(ls) != n || ls[0].Name != "p/0000" || ls[n-1].Name != fmt.Sprintf("p/%04d", n-1) {
		t.Fatalf("Locks: %d locks (%v), want %d in order", len(ls), err, n)
	}
}

// acquireKinds is an http.RoundTripper that records, in order, whether
// each POST …/acquire was a try ("try") or a waiting request ("wait").
type acquireKinds struct {
	base http.RoundTripper
	mu   sync.Mutex
	seq  []string
}

func (r *acquireKinds) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/acquire") && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		var ar api.AcquireRequest
		kind := "try"
		if json.Unmarshal(b, &ar) == nil && ar.Wait > 0 {
			kind = "wait"
		}
		r.mu.Lock()
		r.seq = append(r.seq, kind)
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

// take returns the kinds recorded since the last call.
func (r *acquireKinds) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seq
	r.seq = nil
	return s
}

// TestContendedMutexWaitsWithoutATry: once a Mutex's try found its lock
// held, its next waiting Locks send one waiting acquire each (no try
// first), directRuns of them; then it tries first again. Each grant is
// still a real one: the lock is held by the Mutex afterwards.
func TestContendedMutexWaitsWithoutATry(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	kinds := &acquireKinds{base: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := New(Config{Endpoints: []string{srv.URL}, RequestTimeout: 5 * time.Second,
		HTTPClient: &http.Client{Transport: kinds}, UnbatchedLocks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := testCtx(t)
	a, b := newSession(t, c, 5*time.Second), newSession(t, c, 5*time.Second)
	ma, mb := a.NewMutex("d"), b.NewMutex("d")
	if err := ma.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	errC := make(chan error, 1)
	go func() { errC <- mb.Lock(ctx) }()
	await.True(t, 10*time.Second, "b queued", func() bool {
		l, err := c.LockInfo(ctx, "d")
		return err == nil && len(l.Waiters) == 1
	})
	if err := ma.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errC; err != nil {
		t.Fatal(err)
	}
	if got := kinds.take(); !slices.Equal(got, []string{"try", "try", "wait"}) {
		t.Fatalf("acquires %v, want a's try, then b's try and wait", got)
	}
	if err := mb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// The lock is free now: each direct wait is granted at once.
	for i := range directRuns {
		if err := mb.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if l, err := c.LockInfo(ctx, "d"); err != nil || l.Holder == nil || l.Holder.Session != b.ID() {
			t.Fatalf("run %d: lock %+v (%v), want held by b", i, l, err)
		}
		if err := mb.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := kinds.take(); len(got) != directRuns || slices.Contains(got, "try") {
		t.Fatalf("acquires %v, want %d waiting acquires and no try", got, directRuns)
	}
	if err := mb.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kinds.take(); !slices.Equal(got, []string{"try"}) {
		t.Fatalf("acquires %v after the runs are spent, want one try", got)
	}
}
