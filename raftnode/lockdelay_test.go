package raftnode

import (
	"context"
	"testing"
	"time"

	"github.com/raftlock/raftlock/lock"
)

// The leader proposes the entry that ends a lock-delay: a lock whose
// holder expired with a 5 s lock-delay goes to its waiter only when the
// leader's clock has passed it, without any other traffic.
func TestLeaderEndsLockDelays(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	lead := c.leader()
	c.tickUntil("cluster version 5", 100, func() bool { return lead.n.Status().ClusterVersion >= 5 })
	a, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(2 * time.Second), LockDelay: int64(5 * time.Second)})
	b, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	if r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "d"}); r.Code != lock.CodeOK {
		t.Fatalf("acquire: %+v", r)
	}
	if r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: b.Session, Name: "d", Wait: true}); r.Code != lock.CodeQueued {
		t.Fatalf("wait: %+v", r)
	}
	holder := func() (uint64, int64) {
		var h uint64
		var until int64
		_ = lead.n.Read(context.Background(), true, func(m *lock.Machine) {
			li, _ := m.Lock("d")
			if li.Holder != nil {
				h = li.Holder.Session
			}
			until = li.DelayedUntil
		})
		return h, until
	}
	c.clock.Advance(3 * time.Second)
	c.tickUntil("a expired, d in its lock-delay", 100, func() bool { h, until := holder(); return h == 0 && until != 0 })
	c.ticks(20) // time does not pass on the clock: the delay must not end
	if h, _ := holder(); h != 0 {
		t.Fatalf("d granted to %d during its lock-delay", h)
	}
	c.clock.Advance(5 * time.Second)
	c.tickUntil("d granted to b when the delay ends", 100, func() bool { h, _ := holder(); return h == b.Session })
}
