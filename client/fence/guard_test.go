package fence_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/client/fence"
)

// TestCheck walks one name through accepted, equal, stale and invalid
// tokens, and checks that a refusal records nothing.
func TestCheck(t *testing.T) {
	var g fence.Guard // the zero value is ready
	steps := []struct {
		name    string
		token   uint64
		stale   uint64 // > 0: want a *StaleError with this Highest
		invalid bool
		highest uint64 // g.Highest(name) afterwards
	}{
		{name: "docs", token: 10, highest: 10},
		{name: "docs", token: 10, highest: 10}, // the same holder writes again: accepted
		{name: "docs", token: 12, highest: 12},
		{name: "docs", token: 10, stale: 12, highest: 12}, // the paused holder: refused
		{name: "docs", token: 11, stale: 12, highest: 12},
		{name: "docs", token: 0, invalid: true, highest: 12}, // never granted
		{name: "other", token: 0, invalid: true, highest: 0},
		{name: "other", token: 3, highest: 3}, // names are independent
		{name: "docs", token: 12, highest: 12},
		{name: "docs", token: 1 << 63, highest: 1 << 63},
		{name: "", token: 5, invalid: true},
		{name: "a//b", token: 5, invalid: true},
	}
	for i, s := range steps {
		err := g.Check(s.name, s.token)
		switch {
		case s.stale > 0:
			var se *fence.StaleError
			if !errors.As(err, &se) || !errors.Is(err, fence.ErrStale) || errors.Is(err, fence.ErrInvalidArgument) {
				t.Fatalf("step %d: Check(%q, %d) = %v, want a *StaleError", i, s.name, s.token, err)
			}
			if want := (fence.StaleError{Name: s.name, Token: s.token, Highest: s.stale}); *se != want {
				t.Errorf("step %d: %+v, want %+v", i, *se, want)
			}
		case s.invalid:
			if !errors.Is(err, fence.ErrInvalidArgument) || errors.Is(err, fence.ErrStale) {
				t.Fatalf("step %d: Check(%q, %d) = %v, want ErrInvalidArgument", i, s.name, s.token, err)
			}
		case err != nil:
			t.Fatalf("step %d: Check(%q, %d) = %v", i, s.name, s.token, err)
		}
		if got := g.Highest(s.name); got != s.highest {
			t.Errorf("step %d: Highest(%q) = %d, want %d", i, s.name, got, s.highest)
		}
	}
	if n := g.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (refused names are not remembered)", n)
	}
	want := `fence: stale token 10 for lock "docs": 12 was accepted`
	if got := (&fence.StaleError{Name: "docs", Token: 10, Highest: 12}).Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if err := g.Check("docs", 0); err.Error() != `fence: invalid argument: token 0 for lock "docs": fencing tokens start at 1` {
		t.Errorf("token 0: %q", err)
	}

	if !g.Forget("docs") || g.Highest("docs") != 0 || g.Len() != 1 {
		t.Fatalf("after Forget: Highest %d, Len %d", g.Highest("docs"), g.Len())
	}
	if err := g.Check("docs", 1); err != nil {
		t.Errorf("a forgotten name takes any token: %v", err)
	}
	if !g.Forget("never-seen") {
		t.Error("Forget of an unknown name: false")
	}
}

// TestCheckConcurrent races goroutines that each take tokens from a
// per-name counter (as the cluster grants them, in increasing order) and
// use them after a random delay (a paused holder). Once a Check of a token
// has returned nil, every Check of a lower token of that name that starts
// afterwards must be refused, and a refusal must name a higher token that
// was really accepted.
func TestCheckConcurrent(t *testing.T) {
	const (
		names      = 4
		goroutines = 16
		rounds     = 300
	)
	var g fence.Guard
	var issued, published [names]atomic.Uint64 // last token handed out; highest token seen accepted
	var accepted [names]sync.Map               // tokens accepted, per name
	var wg sync.WaitGroup
	errC := make(chan error, goroutines)
	for w := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				n := r.IntN(names)
				name := fmt.Sprintf("jobs/%d", n)
				token := issued[n].Add(1)
				if r.IntN(4) == 0 {
					if back := uint64(r.IntN(5)); back < token {
						token -= back // the same holder again, or a late one
					}
				}
				for range r.IntN(3) {
					runtime.Gosched() // the holder pauses
				}
				before := published[n].Load()
				err := g.Check(name, token)
				var se *fence.StaleError
				switch {
				case err == nil:
					if token < before {
						errC <- fmt.Errorf("%s: token %d accepted after %d was", name, token, before)
						return
					}
					accepted[n].Store(token, true)
					for {
						p := published[n].Load()
						if p >= token || published[n].CompareAndSwap(p, token) {
							break
						}
					}
				case errors.As(err, &se):
					if se.Name != name || se.Token != token || se.Highest <= token {
						errC <- fmt.Errorf("%s: token %d: %+v", name, token, *se)
						return
					}
				default:
					errC <- fmt.Errorf("%s: token %d: %v", name, token, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errC)
	for err := range errC {
		t.Error(err)
	}
	for n := range names {
		name := fmt.Sprintf("jobs/%d", n)
		h := g.Highest(name)
		if _, ok := accepted[n].Load(h); !ok {
			t.Errorf("%s: Highest %d was never accepted", name, h)
		}
		var maxAccepted uint64
		accepted[n].Range(func(k, _ any) bool { maxAccepted = max(maxAccepted, k.(uint64)); return true })
		if h != maxAccepted || h != published[n].Load() {
			t.Errorf("%s: Highest %d, highest accepted %d, published %d", name, h, maxAccepted, published[n].Load())
		}
		// A lower token after the highest is always refused; the same is accepted.
		if err := g.Check(name, h-1); h > 1 && !errors.Is(err, fence.ErrStale) {
			t.Errorf("%s: token %d after %d: %v", name, h-1, h, err)
		}
		if err := g.Check(name, h); err != nil {
			t.Errorf("%s: token %d again: %v", name, h, err)
		}
	}
}

// TestEnterConcurrent checks Enter's ordering: requests that write a
// per-name log from inside their admission, with pauses between reading
// its end and appending, never append a token lower than the last one.
func TestEnterConcurrent(t *testing.T) {
	const (
		names      = 3
		goroutines = 12
		rounds     = 200
	)
	var g fence.Guard
	var issued [names]atomic.Uint64
	var logs [names]struct {
		mu  sync.Mutex
		log []uint64
	}
	var wg sync.WaitGroup
	var violations, admitted, stale atomic.Int64
	for w := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range rounds {
				n := r.IntN(names)
				token := issued[n].Add(1)
				if r.IntN(3) == 0 {
					if back := uint64(r.IntN(4)); back < token {
						token -= back
					}
				}
				_, release, err := g.Enter(context.Background(), fmt.Sprintf("jobs/%d", n), token)
				if errors.Is(err, fence.ErrStale) {
					stale.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				admitted.Add(1)
				l := &logs[n]
				l.mu.Lock()
				last := uint64(0)
				if len(l.log) > 0 {
					last = l.log[len(l.log)-1]
				}
				l.mu.Unlock()
				for range r.IntN(4) {
					runtime.Gosched() // a read-modify-write that takes its time
				}
				l.mu.Lock()
				if len(l.log) > 0 && l.log[len(l.log)-1] > token || last > token {
					violations.Add(1)
				}
				l.log = append(l.log, token)
				l.mu.Unlock()
				release()
			}
		})
	}
	wg.Wait()
	if v := violations.Load(); v > 0 {
		t.Errorf("%d writes of a token lower than one already written", v)
	}
	for n := range names {
		if err := g.Check(fmt.Sprintf("jobs/%d", n), 1); g.Highest(fmt.Sprintf("jobs/%d", n)) > 1 && !errors.Is(err, fence.ErrStale) {
			t.Errorf("jobs/%d: %v", n, err)
		}
	}
	t.Logf("%d admitted, %d stale", admitted.Load(), stale.Load())
	if stale.Load() == 0 {
		t.Error("no token was ever stale: the test tests nothing")
	}
}

// TestEnterSupersede follows holder A (token 10), then B (12) while A's
// request still runs: A's context is cancelled with a *StaleError, B waits
// until A's request is released, a late request of A is refused, and a
// second request of B runs alongside the first.
func TestEnterSupersede(t *testing.T) {
	var g fence.Guard
	ctxA, releaseA, err := g.Enter(context.Background(), "docs", 10)
	if err != nil {
		t.Fatal(err)
	}
	if g.Forget("docs") {
		t.Error("Forget of a name with a request running: true")
	}
	type entered struct {
		release func()
		err     error
	}
	bC := make(chan entered, 1)
	go func() {
		_, release, err := g.Enter(context.Background(), "docs", 12)
		bC <- entered{release, err}
	}()
	<-ctxA.Done() // B's arrival cancels A
	var se *fence.StaleError
	if cause := context.Cause(ctxA); !errors.As(cause, &se) || *se != (fence.StaleError{Name: "docs", Token: 10, Highest: 12}) {
		t.Fatalf("A's cause: %v", cause)
	}
	if _, _, err := g.Enter(context.Background(), "docs", 10); !errors.Is(err, fence.ErrStale) {
		t.Fatalf("A's late request: %v", err)
	}
	select {
	case b := <-bC:
		t.Fatalf("B admitted while A runs: %v", b.err)
	case <-time.After(20 * time.Millisecond):
	}
	releaseA()
	releaseA() // a second call does nothing
	b := <-bC
	if b.err != nil {
		t.Fatal(b.err)
	}
	ctxB2, releaseB2, err := g.Enter(context.Background(), "docs", 12) // B again, alongside
	if err != nil {
		t.Fatal(err)
	}
	if ctxB2.Err() != nil {
		t.Fatalf("B's second request is cancelled: %v", context.Cause(ctxB2))
	}
	b.release()
	releaseB2()
	if err := ctxB2.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("after release: %v", err)
	}
	if !g.Forget("docs") {
		t.Error("Forget after every release: false")
	}
}

// TestEnterOvertaken: while B (12) waits for A (10), C (14) arrives; when A
// ends, B is refused and C runs.
func TestEnterOvertaken(t *testing.T) {
	var g fence.Guard
	_, releaseA, err := g.Enter(context.Background(), "docs", 10)
	if err != nil {
		t.Fatal(err)
	}
	bC, cC := make(chan error, 1), make(chan error, 1)
	enter := func(token uint64, errC chan<- error) {
		_, release, err := g.Enter(context.Background(), "docs", token)
		if err == nil {
			release()
		}
		errC <- err
	}
	go enter(12, bC)
	waitFor(t, func() bool { return g.Highest("docs") == 12 })
	go enter(14, cC)
	waitFor(t, func() bool { return g.Highest("docs") == 14 })
	releaseA()
	if err := <-bC; !errors.Is(err, fence.ErrStale) {
		t.Errorf("B: %v, want stale", err)
	}
	if err := <-cC; err != nil {
		t.Errorf("C: %v", err)
	}
}

// TestEnterWaitCancelled: a request that gives up waiting returns its
// context's cause, and its token stays recorded.
func TestEnterWaitCancelled(t *testing.T) {
	var g fence.Guard
	_, releaseA, err := g.Enter(context.Background(), "docs", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	gone := errors.New("client gone")
	ctx, cancel := context.WithCancelCause(context.Background())
	errC := make(chan error, 1)
	go func() {
		_, _, err := g.Enter(ctx, "docs", 12)
		errC <- err
	}()
	waitFor(t, func() bool { return g.Highest("docs") == 12 })
	cancel(gone)
	if err := <-errC; !errors.Is(err, gone) || errors.Is(err, fence.ErrStale) {
		t.Fatalf("Enter = %v, want the cause", err)
	}
	if h := g.Highest("docs"); h != 12 {
		t.Errorf("Highest = %d, want 12", h)
	}
}

// TestCheckSupersedesEnter: Check of a higher token cancels the requests
// Enter admitted, without waiting for them.
func TestCheckSupersedesEnter(t *testing.T) {
	var g fence.Guard
	ctx, release, err := g.Enter(context.Background(), "docs", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := g.Check("docs", 11); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(context.Cause(ctx), fence.ErrStale) {
		t.Errorf("cause: %v", context.Cause(ctx))
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 5s")
		}
	}
}
