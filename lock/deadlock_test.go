package lock

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// exclusiveWaitGraph returns the wait-for graph of m's locks: waiter → holder.
func exclusiveWaitGraph(m *Machine, names []string) map[uint64][]uint64 {
	g := map[uint64][]uint64{}
	for _, n := range names {
		li, ok := m.Lock(n)
		if !ok || li.Holder == nil {
			continue
		}
		for i, w := range li.Waiters {
			g[w.Session] = append(g[w.Session], li.Holder.Session)
			for _, ahead := range li.Waiters[:i] {
				g[w.Session] = append(g[w.Session], ahead.Session)
			}
		}
	}
	return g
}

// reaches reports whether to is reachable from from in g.
func reaches(g map[uint64][]uint64, from, to uint64) bool {
	seen := map[uint64]bool{}
	var walk func(x uint64) bool
	walk = func(x uint64) bool {
		if x == to {
			return true
		}
		if seen[x] {
			return false
		}
		seen[x] = true
		for _, y := range g[x] {
			if walk(y) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// Random acquires, waits, releases and cancels on few sessions and locks,
// with the deadlock rule on: the wait-for graph never has a cycle, and a
// wait is refused exactly when queueing it would have closed one (checked
// against the graph, not against the machine's own search).
func TestDeadlockRuleRandom(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		m := New()
		idx := uint64(0)
		apply := func(c *Command) Result {
			idx++
			c.Now = int64(idx)
			return m.Apply(idx, 1, c)
		}
		apply(&Command{Op: OpClusterVersion, ClusterVersion: deadlockVersion})
		var sessions []uint64
		for range 5 {
			sessions = append(sessions, apply(&Command{Op: OpOpenSession, TTL: int64(1e12)}).Session)
		}
		names := []string{"a", "b", "c", "d", "e"}
		refused := 0
		for step := 0; step < 2000; step++ {
			s := sessions[rng.IntN(len(sessions))]
			name := names[rng.IntN(len(names))]
			switch rng.IntN(4) {
			case 0, 1:
				g := exclusiveWaitGraph(m, names)
				li, held := m.Lock(name)
				wouldCycle := false
				if held && li.Holder != nil && li.Holder.Session != s {
					wouldCycle = reaches(g, li.Holder.Session, s)
					for _, w := range li.Waiters {
						wouldCycle = wouldCycle || (w.Session != s && reaches(g, w.Session, s))
					}
				}
				res := apply(&Command{Op: OpAcquire, Session: s, Name: name, Wait: true})
				queuedBefore := false
				if held {
					for _, w := range li.Waiters {
						queuedBefore = queuedBefore || w.Session == s
					}
				}
				switch {
				case res.Code == CodeDeadlock && !wouldCycle:
					t.Fatalf("seed %d step %d: wait of %d for %q refused without a cycle: %s", seed, step, s, name, res.Reason)
				case res.Code != CodeDeadlock && wouldCycle && !queuedBefore:
					t.Fatalf("seed %d step %d: wait of %d for %q queued (%v) though it closes a cycle", seed, step, s, name, res.Code)
				case res.Code == CodeDeadlock:
					refused++
				}
			case 2:
				if li, ok := m.Lock(name); ok && li.Holder != nil && li.Holder.Session == s {
					apply(&Command{Op: OpRelease, Session: s, Name: name, Token: li.Holder.Token})
				}
			case 3:
				apply(&Command{Op: OpCancel, Session: s, Name: name})
			}
			g := exclusiveWaitGraph(m, names)
			for x := range g {
				for _, y := range g[x] {
					if reaches(g, y, x) {
						t.Fatalf("seed %d step %d: a cycle of waits through %d and %d", seed, step, x, y)
					}
				}
			}
			if err := checkInvariants(m); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
		}
		if refused == 0 {
			t.Errorf("seed %d: no wait was refused: the test does not exercise the rule", seed)
		}
		_ = fmt.Sprint(refused)
	}
}
