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
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// lockGate is an http.RoundTripper in front of a real server. It holds
// every acquire and release sent alone until open is closed, records the
// operations of every POST /v1/batch, and can answer batches itself with
// batchStatus and batchBody (a server without the endpoint, or a failing
// one).
type lockGate struct {
	base http.RoundTripper
	open chan struct{}

	mu          sync.Mutex
	singles     int             // acquires and releases sent alone
	held        int             // singles waiting for open now
	batches     [][]api.BatchOp // operations of each batch request, in order
	batchStatus int
	batchBody   string
}

func newLockGate() *lockGate {
	return &lockGate{base: http.DefaultTransport.(*http.Transport).Clone(), open: make(chan struct{})}
}

func (g *lockGate) RoundTrip(r *http.Request) (*http.Response, error) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && p == api.BatchPath:
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		var req api.BatchRequest
		if err := json.Unmarshal(b, &req); err != nil {
			return nil, fmt.Errorf("lockGate: batch body %s: %v", b, err)
		}
		g.mu.Lock()
		g.batches = append(g.batches, req.Ops)
		status, body := g.batchStatus, g.batchBody
		g.mu.Unlock()
		if status != 0 {
			return &http.Response{StatusCode: status, Status: http.StatusText(status),
				Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)), Request: r}, nil
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/locks/") && (strings.HasSuffix(p, "/acquire") || strings.HasSuffix(p, "/release")):
		g.mu.Lock()
		g.singles++
		g.held++
		open := g.open
		g.mu.Unlock()
		select {
		case <-open:
		case <-r.Context().Done():
		}
		g.mu.Lock()
		g.held--
		g.mu.Unlock()
	}
	return g.base.RoundTrip(r)
}

func (g *lockGate) stats() (singles, held int, batches [][]api.BatchOp) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.singles, g.held, slices.Clone(g.batches)
}

func newGatedClient(t *testing.T, url string, g *lockGate) *Client {
	t.Helper()
	c, err := New(Config{Endpoints: []string{url}, RequestTimeout: 5 * time.Second, HTTPClient: &http.Client{Transport: g}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// queued returns how many operations wait in c's batcher.
func (c *Client) queued() int {
	c.batch.mu.Lock()
	defer c.batch.mu.Unlock()
	return len(c.batch.queue)
}

// startLocks starts Lock of n Mutexes of s, named prefix/0 ... in
// goroutines, and returns them with a channel of their results.
func startLocks(t *testing.T, s *Session, prefix string, n int) ([]*Mutex, chan error) {
	t.Helper()
	ctx := testCtx(t)
	ms := make([]*Mutex, n)
	errc := make(chan error, n)
	for i := range ms {
		ms[i] = s.NewMutex(fmt.Sprintf("%s/%d", prefix, i))
		go func() { errc <- ms[i].Lock(ctx) }()
	}
	return ms, errc
}

// awaitNil takes n results from errc and fails the test on any error.
func awaitNil(t *testing.T, errc <-chan error, n int) {
	t.Helper()
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// fillFlights starts maxLockFlights Locks, of locks "f/0"..., whose
// requests the gate holds, and waits until they are all held. It returns
// their Mutexes and a channel of their results.
func fillFlights(t *testing.T, s *Session, g *lockGate) ([]*Mutex, chan error) {
	t.Helper()
	ms, errc := startLocks(t, s, "f", maxLockFlights)
	await.True(t, 10*time.Second, "every flight held by the gate", func() bool {
		_, held, _ := g.stats()
		return held == maxLockFlights
	})
	return ms, errc
}

// TestLocksCoalesce: with every flight busy, further Locks and Unlocks of
// a Client wait and then go together in POST /v1/batch; each gets its own
// grant, with a distinct fencing token, as the server's state confirms.
func TestLocksCoalesce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	g := newLockGate()
	c := newGatedClient(t, srv.URL, g)
	s := newSession(t, c, 10*time.Second)
	ctx := testCtx(t)
	first, firstErrs := fillFlights(t, s, g)

	const n = 20
	ms, errc := startLocks(t, s, "q", n)
	await.True(t, 10*time.Second, "every further Lock queued", func() bool { return c.queued() == n })
	if singles, _, batches := g.stats(); singles != maxLockFlights || len(batches) != 0 {
		t.Fatalf("before the flights land: %d sent alone, %d batches; want %d and 0", singles, len(batches), maxLockFlights)
	}
	close(g.open)
	awaitNil(t, firstErrs, maxLockFlights)
	awaitNil(t, errc, n)
	singles, _, batches := g.stats()
	batched := 0
	for _, b := range batches {
		batched += len(b)
		for _, op := range b {
			if op.Op != api.BatchAcquire || op.Session != s.ID() || !strings.HasPrefix(op.Name, "q/") {
				t.Fatalf("unexpected operation in a batch: %+v", op)
			}
		}
	}
	if singles != maxLockFlights || batched != n || len(batches) >= n {
		t.Fatalf("%d acquires sent alone, %d in %d batches; want %d alone and %d in fewer than %d batches", singles, batched, len(batches), maxLockFlights, n, n)
	}
	tokens := map[uint64]string{}
	for _, m := range append(first, ms...) {
		tok := m.Token()
		l, err := c.LockInfo(ctx, m.Name())
		if err != nil {
			t.Fatal(err)
		}
		if tok == 0 || l.Holder == nil || l.Holder.Session != s.ID() || l.Holder.Token != tok {
			t.Fatalf("%s: Mutex token %d, server says %+v", m.Name(), tok, l.Holder)
		}
		if other, dup := tokens[tok]; dup {
			t.Fatalf("token %d granted for %s and %s", tok, other, m.Name())
		}
		tokens[tok] = m.Name()
	}

	// Unlocks coalesce the same way. The last batch was a full one, so
	// only busyLockFlights requests go alone now; the rest queue.
	g.mu.Lock()
	g.open = make(chan struct{})
	open := g.open
	g.mu.Unlock()
	for i := range first {
		go func() { firstErrs <- first[i].Unlock(ctx) }()
	}
	await.True(t, 10*time.Second, "the first unlocks held by the gate or queued", func() bool {
		_, held, _ := g.stats()
		return held == busyLockFlights && c.queued() == maxLockFlights-busyLockFlights
	})
	for i := range ms {
		go func() { errc <- ms[i].Unlock(ctx) }()
	}
	await.True(t, 10*time.Second, "every further Unlock queued", func() bool { return c.queued() == n+maxLockFlights-busyLockFlights })
	close(open)
	for range maxLockFlights + n {
		select {
		case err := <-firstErrs:
			if err != nil {
				t.Fatal(err)
			}
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	locks, err := c.Locks(ctx, "")
	if err != nil || len(locks) != 0 {
		t.Fatalf("locks after every Unlock: %+v %v", locks, err)
	}
	if _, _, after := g.stats(); len(after) == len(batches) {
		t.Fatal("no release went in a batch")
	}
}

// TestBatchWithdrawnWhenCallerGivesUp: a Lock whose context ends while its
// acquire waits in the queue takes it out: it is never sent, and the lock
// stays free.
func TestBatchWithdrawnWhenCallerGivesUp(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	g := newLockGate()
	c := newGatedClient(t, srv.URL, g)
	s := newSession(t, c, 10*time.Second)
	_, firstErrs := fillFlights(t, s, g)

	ctx, cancel := context.WithCancel(testCtx(t))
	errc := make(chan error, 1)
	m := s.NewMutex("gives-up")
	go func() { errc <- m.Lock(ctx) }()
	await.True(t, 10*time.Second, "the Lock queued", func() bool { return c.queued() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock: %v, want context.Canceled", err)
	}
	if q := c.queued(); q != 0 {
		t.Fatalf("%d operations still queued", q)
	}
	close(g.open)
	awaitNil(t, firstErrs, maxLockFlights)
	for _, b := range func() [][]api.BatchOp { _, _, b := g.stats(); return b }() {
		for _, op := range b {
			if op.Name == "gives-up" {
				t.Fatalf("the withdrawn acquire was sent: %+v", b)
			}
		}
	}
	if l, err := c.LockInfo(testCtx(t), "gives-up"); err != nil || l.Holder != nil || len(l.Waiters) != 0 {
		t.Fatalf("lock after the withdrawn Lock: %+v %v", l, err)
	}
}

// TestBatchFailureFallsBack: when a batch fails as a whole, each of its
// operations goes again alone and succeeds; a server without the endpoint
// (404) turns batching off for the Client.
func TestBatchFailureFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		off        bool
	}{
		{"unavailable", `{"error":{"code":"unavailable","message":"no leader"}}`, http.StatusServiceUnavailable, false},
		{"outcome unknown", `{"error":{"code":"timeout","message":"outcome unknown"}}`, http.StatusServiceUnavailable, false},
		{"old server", `{"error":{"code":"not_found","message":"no such path: POST /v1/batch"}}`, http.StatusNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, testserver.Options{})
			g := newLockGate()
			g.batchStatus, g.batchBody = tc.status, tc.body
			c := newGatedClient(t, srv.URL, g)
			s := newSession(t, c, 10*time.Second)
			ctx := testCtx(t)
			_, firstErrs := fillFlights(t, s, g)
			const n = 5
			ms, errc := startLocks(t, s, "q", n)
			await.True(t, 10*time.Second, "every further Lock queued", func() bool { return c.queued() == n })
			close(g.open)
			awaitNil(t, firstErrs, maxLockFlights)
			awaitNil(t, errc, n)
			singles, _, batches := g.stats()
			if len(batches) == 0 || singles < maxLockFlights+n {
				t.Fatalf("%d batches, %d sent alone; want the batch to fail and its %d operations to go alone", len(batches), singles, n)
			}
			for _, m := range ms {
				l, err := c.LockInfo(ctx, m.Name())
				if err != nil || l.Holder == nil || l.Holder.Token != m.Token() || m.Token() == 0 {
					t.Fatalf("%s: token %d, server says %+v %v", m.Name(), m.Token(), l, err)
				}
			}
			if c.batch.off.Load() != tc.off {
				t.Fatalf("batching off = %v, want %v", c.batch.off.Load(), tc.off)
			}
		})
	}
}

// TestElectionsCoalesce: with every flight busy, the first attempts of
// Campaigns (tries) and Resigns of a Client go together in POST /v1/batch,
// and each gets its own leadership, as the server's state confirms.
func TestElectionsCoalesce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	g := newLockGate()
	c := newGatedClient(t, srv.URL, g)
	s := newSession(t, c, 10*time.Second)
	ctx := testCtx(t)
	_, firstErrs := fillFlights(t, s, g)

	const n = 10
	es := make([]*Election, n)
	errc := make(chan error, n)
	for i := range es {
		es[i] = s.NewElection(fmt.Sprintf("e/%d", i))
		go func() { errc <- es[i].Campaign(ctx, fmt.Sprintf("v%d", i)) }()
	}
	await.True(t, 10*time.Second, "every Campaign queued", func() bool { return c.queued() == n })
	close(g.open)
	awaitNil(t, firstErrs, maxLockFlights)
	awaitNil(t, errc, n)
	countOps := func(op string) int {
		_, _, batches := g.stats()
		k := 0
		for _, b := range batches {
			for _, o := range b {
				if o.Op == op {
					k++
				}
			}
		}
		return k
	}
	if k := countOps(api.BatchCampaign); k != n {
		t.Fatalf("%d campaigns went in batches, want %d", k, n)
	}
	for i, e := range es {
		l, err := e.Leader(ctx)
		if err != nil || l == nil || l.Session != s.ID() || l.Term != e.Term() || e.Term() == 0 || l.Value != fmt.Sprintf("v%d", i) {
			t.Fatalf("%s: term %d, server says %+v %v", e.Name(), e.Term(), l, err)
		}
	}

	// Resigns coalesce too, behind busy flights.
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
	ms, more := startLocks(t, s, "f2", busyLockFlights)
	await.True(t, 10*time.Second, "the flights held again", func() bool {
		_, held, _ := g.stats()
		return held == busyLockFlights
	})
	for i := range es {
		go func() { errc <- es[i].Resign(ctx) }()
	}
	await.True(t, 10*time.Second, "every Resign queued", func() bool { return c.queued() == n })
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
	awaitNil(t, more, len(ms))
	awaitNil(t, errc, n)
	if k := countOps(api.BatchResign); k != n {
		t.Fatalf("%d resigns went in batches, want %d", k, n)
	}
	for _, e := range es {
		if l, err := e.Leader(ctx); err != nil || l != nil || e.Term() != 0 {
			t.Fatalf("%s after Resign: term %d, server says %+v %v", e.Name(), e.Term(), l, err)
		}
	}
}
