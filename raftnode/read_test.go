package raftnode

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

// TestConcurrentReadsShareReadIndex: 64 linearizable reads issued at once
// cost far fewer ReadIndex requests than reads: the reads that arrive while
// one request is in flight share the next. To make "at once" certain, the
// node's first request is held up (its messages to the other members are
// lost) until every read has reached the node; then the network heals, the
// request is sent again for all the reads queued behind it, and every read
// is answered.
func TestConcurrentReadsShareReadIndex(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	s, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	c.converged()
	for _, tn := range []*testNode{lead, c.follower()} {
		for id := range c.nodes {
			if id != tn.n.ID() {
				c.nw.Cut(tn.n.ID(), id)
			}
		}
		before := tn.n.Status().ReadIndexRounds
		const reads = 64
		var entered atomic.Int64
		errs := make(chan error, reads)
		for range reads {
			go func() {
				entered.Add(1)
				var ok bool
				err := tn.n.Read(context.Background(), false, func(m *lock.Machine) { _, ok = m.Session(s.Session) })
				if err == nil && !ok {
					err = fmt.Errorf("a linearizable read on node %d does not see session %d", tn.n.ID(), s.Session)
				}
				errs <- err
			}()
		}
		await.True(t, 10*time.Second, "every read handed to the node", func() bool {
			return entered.Load() == reads && len(tn.n.readC) == 0 && tn.n.Status().ReadIndexRounds > before
		})
		c.nw.Heal()
		done := 0
		c.tickUntil("64 reads answered", 1000, func() bool {
			for {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatalf("read on node %d: %v", tn.n.ID(), err)
					}
					done++
				default:
					return done == reads
				}
			}
		})
		st := tn.n.Status()
		rounds := st.ReadIndexRounds - before
		t.Logf("node %d (leader %v): %d linearizable reads, %d ReadIndex requests (%d sent again)", tn.n.ID(), tn == lead, reads, rounds, st.ReadIndexRetries)
		if rounds == 0 || rounds > 4 {
			t.Fatalf("node %d: %d ReadIndex requests for %d concurrent reads, want 1 to 4", tn.n.ID(), rounds, reads)
		}
	}
}

// TestLostReadIndexIsRetried: a follower's ReadIndex request is lost on
// the way to the leader; the follower asks again after readRetryTicks and
// the read is answered, instead of waiting until its context ends.
func TestLostReadIndexIsRetried(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	c.converged()
	f := c.follower()
	c.nw.Cut(f.n.ID(), lead.n.ID())
	done := make(chan error, 1)
	go func() { done <- f.n.Read(context.Background(), false, func(*lock.Machine) {}) }()
	c.tickUntil("the follower sent its ReadIndex request", 100, func() bool { return f.n.Status().ReadIndexRounds > 0 })
	c.ticks(2)
	select {
	case err := <-done:
		t.Fatalf("the read was answered (%v) although its ReadIndex request was lost", err)
	default:
	}
	c.nw.Heal()
	c.tickUntil("the read answered", 100, func() bool {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			return true
		default:
			return false
		}
	})
	if st := f.n.Status(); st.ReadIndexRetries == 0 {
		t.Fatalf("the read was answered with no retry (%d requests): it cannot have been lost", st.ReadIndexRounds)
	}
}

// TestAbandonedReadIsDropped: a read whose context ends while it waits for
// a ReadIndex answer that never comes is dropped by the loop at the next
// tick; Read returned at once.
func TestAbandonedReadIsDropped(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	c.converged()
	f := c.follower()
	c.nw.Cut(f.n.ID(), lead.n.ID())
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- f.n.Read(ctx, false, func(*lock.Machine) { called <- struct{}{} }) }()
	c.tickUntil("the follower sent its ReadIndex request", 100, func() bool { return f.n.Status().ReadIndexRounds > 0 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Read after its context ended: %v", err)
	}
	c.ticks(1)
	c.nw.Heal()
	c.ticks(3 * int(f.n.readRetryTicks()))
	select {
	case <-called:
		t.Fatal("the loop served a read whose caller had gone")
	default:
	}
	// Served and pending reads are gone: a read now costs a new request.
	before := f.n.Status().ReadIndexRetries
	c.ticks(3 * int(f.n.readRetryTicks()))
	if after := f.n.Status().ReadIndexRetries; after != before {
		t.Fatalf("the dropped read is still being retried (%d, then %d retries)", before, after)
	}
}
