package client

import (
	"context"
	"errors"
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

// recorder collects an Elector's callbacks in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// split returns the leadership callbacks and the identities reported by
// OnNewLeader, each in order (the two come from different goroutines, so
// their interleaving is not defined).
func (r *recorder) split() (leading, leaders []string) {
	for _, ev := range r.get() {
		if id, ok := strings.CutPrefix(ev, "leader "); ok {
			leaders = append(leaders, id)
		} else {
			leading = append(leading, ev)
		}
	}
	return leading, leaders
}

func (r *recorder) callbacks() Callbacks {
	return Callbacks{
		OnStartedLeading: func(ctx context.Context) {
			r.add("started")
			<-ctx.Done()
			r.add("ctx done")
		},
		OnStoppedLeading: func() { r.add("stopped") },
		OnNewLeader:      func(id string) { r.add("leader " + id) },
	}
}

// runElector runs e.Run in a goroutine; the returned function cancels it
// and returns Run's error.
func runElector(t *testing.T, e *Elector) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10s of its ctx ending")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// exclusion polls a and b until stopped and counts the polls at which both
// claimed to lead.
type exclusion struct {
	both, polls atomic.Int64
	stop        chan struct{}
	done        chan struct{}
}

func watchExclusion(a, b *Elector) *exclusion {
	x := &exclusion{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(x.done)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			if a.IsLeader() && b.IsLeader() {
				x.both.Add(1)
			}
			x.polls.Add(1)
			select {
			case <-x.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return x
}

func (x *exclusion) end() (both, polls int64) {
	close(x.stop)
	<-x.done
	return x.both.Load(), x.polls.Load()
}

func TestElectorHandsOverOnCancel(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	var ra, rb recorder
	a := &Elector{Client: c, Name: "svc", Identity: "A", TTL: 600 * time.Millisecond, Callbacks: ra.callbacks(), ReleaseOnCancel: true}
	b := &Elector{Client: c, Name: "svc", Identity: "B", TTL: 600 * time.Millisecond, Callbacks: rb.callbacks(), ReleaseOnCancel: true}
	x := watchExclusion(a, b)

	stopA := runElector(t, a)
	await.True(t, 5*time.Second, "A leads", a.IsLeader)
	termA := a.Term()
	if termA == 0 {
		t.Fatal("A leads with term 0")
	}
	stopB := runElector(t, b)
	await.True(t, 5*time.Second, "B queued and has seen A", func() bool {
		el, err := c.ElectionInfo(ctx, "svc")
		id, term, ok := b.Leader()
		return err == nil && len(el.Candidates) == 1 && el.Candidates[0].Value == "B" && ok && id == "A" && term == termA
	})
	if b.IsLeader() || b.Term() != 0 || !a.IsLeader() {
		t.Fatalf("A leads %v, B leads %v (term %d)", a.IsLeader(), b.IsLeader(), b.Term())
	}
	if err := a.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second concurrent Run: %v", err)
	}

	if err := stopA(); err != nil {
		t.Fatalf("A's Run: %v", err)
	}
	if a.IsLeader() || a.Term() != 0 {
		t.Fatal("A still leads after its Run returned")
	}
	if got, want := firstOf(ra.split()), []string{"started", "ctx done", "stopped"}; !slices.Equal(got, want) {
		t.Fatalf("A's callbacks %q, want %q", got, want)
	}
	await.True(t, 5*time.Second, "B leads", b.IsLeader)
	if termB := b.Term(); termB <= termA {
		t.Fatalf("B's term %d, want > %d", termB, termA)
	}
	// A's resign hands over in one log entry; the stream may show it as
	// "resigned" (nobody) then "elected", so "" may come in between.
	await.True(t, 5*time.Second, "B reported as the new leader", func() bool {
		_, leaders := rb.split()
		return len(leaders) > 0 && leaders[len(leaders)-1] == "B"
	})
	if _, leaders := rb.split(); !slices.Equal(leaders, []string{"A", "B"}) && !slices.Equal(leaders, []string{"A", "", "B"}) {
		t.Fatalf("B's OnNewLeader reported %q, want A then B", leaders)
	}
	if err := stopB(); err != nil {
		t.Fatalf("B's Run: %v", err)
	}
	if got, want := firstOf(rb.split()), []string{"started", "ctx done", "stopped"}; !slices.Equal(got, want) {
		t.Fatalf("B's callbacks %q, want %q", got, want)
	}
	if both, polls := x.end(); both != 0 || polls == 0 {
		t.Fatalf("both electors led at %d of %d polls", both, polls)
	}
	if el, err := c.ElectionInfo(ctx, "svc"); err != nil || el.Leader != nil || len(el.Candidates) != 0 {
		t.Fatalf("election after both resigned: %+v, %v", el, err)
	}
}

func TestElectorWithoutReleaseLetsLeaseRunOut(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	const ttl = 600 * time.Millisecond
	var ra recorder
	a := &Elector{Client: c, Name: "lease", Identity: "A", TTL: ttl, Callbacks: ra.callbacks()}
	stopA := runElector(t, a)
	await.True(t, 5*time.Second, "A leads", a.IsLeader)
	termA := a.Term()
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	if a.IsLeader() {
		t.Fatal("A leads after its Run returned")
	}
	// The server still has A as the leader: its lease runs out.
	el, err := c.ElectionInfo(ctx, "lease")
	if err != nil || el.Leader == nil || el.Leader.Term != termA {
		t.Fatalf("election right after A stopped: %+v, %v", el, err)
	}
	b := &Elector{Client: c, Name: "lease", Identity: "B", TTL: ttl}
	runElector(t, b)
	await.True(t, 5*time.Second, "B leads", b.IsLeader)
	if d := time.Since(stoppedAt); d < ttl/2 {
		t.Fatalf("B led %v after A stopped renewing, before A's lease could run out", d)
	}
	if got, want := firstOf(ra.split()), []string{"started", "ctx done", "stopped"}; !slices.Equal(got, want) {
		t.Fatalf("A's callbacks %q, want %q", got, want)
	}
}

func TestElectorLeadsAgainAfterSessionLoss(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	var ra recorder
	a := &Elector{Client: c, Name: "again", Identity: "A", TTL: 600 * time.Millisecond, Callbacks: ra.callbacks(), ReleaseOnCancel: true}
	runElector(t, a)
	await.True(t, 5*time.Second, "A leads", a.IsLeader)
	term := a.Term()
	// The observe stream is connected once it reported A: from then on it
	// skips no change (before, its first event could already be A's next
	// leadership, and "nobody" would never be seen).
	await.True(t, 5*time.Second, "A observed", func() bool {
		_, leaders := ra.split()
		return len(leaders) > 0 && leaders[0] == "A"
	})
	a.mu.Lock()
	sid := a.sess.ID()
	a.mu.Unlock()
	if err := c.CloseSession(ctx, sid); err != nil {
		t.Fatal(err)
	}
	// The observe stream shows nobody leading: the leadership ends, and
	// A campaigns again with a new session.
	await.True(t, 5*time.Second, "A leads again", func() bool { return a.Term() > term })
	await.True(t, 5*time.Second, "started again", func() bool {
		return slices.Equal(firstOf(ra.split()), []string{"started", "ctx done", "stopped", "started"})
	})
	// OnNewLeader comes from the observe stream, apart from the
	// campaign: wait for it rather than expect it with "started".
	if _, ok := await.Within(5*time.Second, func() bool {
		_, leaders := ra.split()
		return len(leaders) >= 3 && leaders[0] == "A" && leaders[len(leaders)-1] == "A" && slices.Contains(leaders, "")
	}); !ok {
		_, leaders := ra.split()
		t.Fatalf("OnNewLeader reported %q, want A, then \"\" (nobody), then A", leaders)
	}
}

func TestElectorIsLeaderChecksSafeUntilAtCallTime(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	a := &Elector{Client: c, Name: "frozen", Identity: "A", TTL: 10 * time.Second}
	runElector(t, a)
	await.True(t, 5*time.Second, "A leads", a.IsLeader)
	// As if the process had been stopped past its lease: SafeUntil is in
	// the past, and no goroutine has had a chance to notice.
	a.mu.Lock()
	s := a.sess
	a.mu.Unlock()
	s.mu.Lock()
	s.safeUntil = time.Now().Add(-time.Millisecond)
	s.mu.Unlock()
	if a.IsLeader() || a.Term() != 0 {
		t.Fatal("IsLeader true past SafeUntil")
	}
}

func TestElectorConfigErrors(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	for _, e := range []*Elector{
		{Name: "x", Identity: "a"},
		{Client: c, Name: "bad name", Identity: "a"},
		{Client: c, Name: "x"},
		{Client: c, Name: "x", Identity: strings.Repeat("v", 5000)},
		{Client: c, Name: "x", Identity: "a", TTL: -time.Second},
		{Client: c, Name: "x", Identity: "a", TTL: time.Millisecond}, // below the server's minimum
	} {
		if err := e.Run(ctx); !errors.Is(err, api.ErrInvalidArgument) {
			t.Errorf("Run(%+v): %v, want api.ErrInvalidArgument", e, err)
		}
	}
}

func firstOf(a, _ []string) []string { return a }
