package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/client"
)

// stopGracefully sends SIGTERM and waits for the process to end by itself
// (a leader hands leadership over first).
func (c *cluster) stopGracefully(m *member) {
	c.t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("member %d did not stop within 20s of SIGTERM", m.id)
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Errorf("member %d exited with %d after SIGTERM, want 0", m.id, code)
	}
	m.cmd = nil
}

// writeLog records the times of the writes the clients saw succeed.
type writeLog struct {
	mu    sync.Mutex
	times []time.Time
	fails int
}

func (w *writeLog) ok() {
	w.mu.Lock()
	w.times = append(w.times, time.Now())
	w.mu.Unlock()
}

func (w *writeLog) failed() {
	w.mu.Lock()
	w.fails++
	w.mu.Unlock()
}

// gap returns the longest time without a successful write between from
// and to.
func (w *writeLog) gap(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, longest := from, time.Duration(0)
	for _, t := range w.times {
		if t.Before(from) || t.After(to) {
			continue
		}
		longest = max(longest, t.Sub(last))
		last = t
	}
	return max(longest, to.Sub(last))
}

// TestRollingRestart restarts every member, followers first and the
// leader last, while SDK clients lock and unlock: twice, once with
// SIGTERM (a leader hands leadership over before it stops) and once with
// SIGKILL (the cluster waits an election timeout). The sessions survive
// both, a lock held throughout keeps its token, and the longest time
// without a successful client write while the leader restarts is
// measured for each (not asserted: a timing figure).
func TestRollingRestart(t *testing.T) {
	c := startCluster(t, 3)
	c.leader(c.members...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl := sdkClient(t, c.members...)
	holder := sdkSession(t, ctx, cl, "holder")
	kept := holder.NewMutex("rolling/kept")
	if err := kept.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	token := kept.Token()

	var log writeLog
	var wg sync.WaitGroup
	var sessions []*client.Session
	for i := range 4 {
		s := sdkSession(t, ctx, cl, fmt.Sprintf("roller-%d", i))
		sessions = append(sessions, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu := s.NewMutex(fmt.Sprintf("rolling/%d", i%2))
			for j := 0; j < 1_000_000 && ctx.Err() == nil; j++ {
				lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
				err := mu.Lock(lctx)
				lcancel()
				if err != nil {
					log.failed()
					continue
				}
				log.ok()
				uctx, ucancel := context.WithTimeout(ctx, 10*time.Second)
				err = mu.Unlock(uctx)
				ucancel()
				if err != nil {
					log.failed()
					continue
				}
				log.ok()
			}
		}()
	}

	roll := func(stop func(*member)) (leaderGap time.Duration) {
		lead := c.leader(c.members...)
		order := slices.DeleteFunc(slices.Clone(c.members), func(m *member) bool { return m == lead })
		order = append(order, lead)
		for _, m := range order {
			began := time.Now()
			stop(m)
			c.start(m, false)
			c.leader(c.members...)
			if m == lead {
				sleep(ctx, 500*time.Millisecond) // writes after the new leader settles count too
				leaderGap = log.gap(began, time.Now())
			}
		}
		return leaderGap
	}
	sleep(ctx, 500*time.Millisecond)
	graceful := roll(c.stopGracefully)
	killed := roll(c.kill)
	sleep(ctx, 300*time.Millisecond)
	cancel()
	wg.Wait()

	for _, s := range append(sessions, holder) {
		if s.Err() != nil {
			t.Errorf("session %v ended during the rolling restarts: %v", s.ID(), s.Err())
		}
	}
	info, err := cl.LockInfo(context.Background(), "rolling/kept")
	if err != nil || info.Holder == nil || info.Holder.Token != token || info.Holder.Session != holder.ID() {
		t.Fatalf("the lock held throughout: %+v, %v; want session %v token %d", info, err, holder.ID(), token)
	}
	log.mu.Lock()
	n, fails := len(log.times), log.fails
	log.mu.Unlock()
	if n == 0 {
		t.Fatal("no write succeeded")
	}
	t.Logf("FIGURE: longest client-visible write gap while the leader restarts: %v with SIGTERM (leader transfer), %v with SIGKILL (election timeout %v); %d writes succeeded, %d failed calls",
		graceful.Round(time.Millisecond), killed.Round(time.Millisecond), 10*50*time.Millisecond, n, fails)
}
