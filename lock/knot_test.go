package lock

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// canEverGrant is the oracle of the deadlock rule, independent of the
// machine's own search: it explores every order in which sessions that
// wait for nothing release their holds (sessions that wait are blocked and
// release nothing; session w never releases), through the machine's own
// grants, and reports whether some order reaches a state where w's
// request (a try of c's lock or semaphore) would be granted: the queue
// ahead of it granted and room for it.
func canEverGrant(t *testing.T, m *Machine, c *Command) bool {
	t.Helper()
	seen := map[string]bool{}
	var search func(m *Machine, depth int) bool
	search = func(m *Machine, depth int) bool {
		snap := string(m.Snapshot()[1+uvarintLen(m.applied):]) // not the applied index
		if seen[snap] {
			return false
		}
		seen[snap] = true
		if depth > 40 {
			t.Fatal("oracle: search too deep")
		}
		if tryWouldGrant(m, c) {
			return true
		}
		for _, id := range sortedIDs(m) {
			si, _ := m.Session(id)
			if id == c.Session || len(si.Waiting)+len(si.SemWaiting) > 0 {
				continue
			}
			for _, name := range si.Locks {
				l, _ := m.Lock(name)
				for _, h := range l.Holders {
					if h.Session == id {
						if search(applyClone(t, m, &Command{Op: OpRelease, Session: id, Name: name, Token: h.Token}), depth+1) {
							return true
						}
					}
				}
			}
			for _, name := range si.Permits {
				r, _ := m.Semaphore(name)
				for _, h := range r.Holders {
					if h.Session == id {
						if search(applyClone(t, m, &Command{Op: OpSemRelease, Session: id, Name: name, Token: h.Token}), depth+1) {
							return true
						}
					}
				}
			}
		}
		return false
	}
	return search(m, 0)
}

// tryWouldGrant reports whether c, as a try, would be granted by m now.
func tryWouldGrant(m *Machine, c *Command) bool {
	if c.Op == OpSemAcquire {
		r, ok := m.Semaphore(c.Name)
		return !ok || (len(r.Waiters) == 0 && len(r.Holders) < int(r.Limit))
	}
	l, ok := m.locks.Get(c.Name)
	return !ok || (len(l.queue) == 0 && l.admits(c.Mode))
}

func sortedIDs(m *Machine) []uint64 {
	var ids []uint64
	for _, s := range m.deadlines {
		ids = append(ids, s.id)
	}
	return sortedUint64s(ids)
}

func sortedUint64s(ids []uint64) []uint64 {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// applyClone applies c to a copy of m and returns the copy.
func applyClone(t *testing.T, m *Machine, c *Command) *Machine {
	t.Helper()
	n := New()
	if err := n.Restore(m.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if res := n.Apply(n.AppliedIndex()+1, 1, c); res.Code != CodeOK {
		t.Fatalf("oracle move %+v: %v", c, res.Code)
	}
	return n
}

// TestDeadlockRuleIsExact: with exclusive and shared locks and semaphores
// mixed, a wait is refused with CodeDeadlock exactly when no order of
// releases by the sessions that can still act would ever grant it
// (checked against canEverGrant before each wait). Never a wait that some
// release would grant; never a wait that nothing could grant.
func TestDeadlockRuleIsExact(t *testing.T) {
	refused, queued := 0, 0
	for seed := uint64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		m := New()
		apply := func(c *Command) Result {
			c.Now = 1
			return m.Apply(m.AppliedIndex()+1, 1, c)
		}
		apply(&Command{Op: OpClusterVersion, ClusterVersion: MaxCommandVersion})
		var ids []uint64
		for range 4 {
			ids = append(ids, apply(&Command{Op: OpOpenSession, TTL: 3600e9}).Session)
		}
		locks := []string{"a", "b", "c"}
		for step := range 60 {
			id := ids[rng.IntN(len(ids))]
			var c *Command
			switch k := rng.IntN(10); {
			case k < 5:
				c = &Command{Op: OpAcquire, Session: id, Name: locks[rng.IntN(len(locks))], Mode: Mode(rng.IntN(2)), Wait: rng.IntN(3) > 0}
			case k < 8:
				c = &Command{Op: OpSemAcquire, Session: id, Name: "s", Limit: 2, Wait: rng.IntN(3) > 0}
			default:
				// A session that waits for nothing releases something.
				si, _ := m.Session(id)
				if len(si.Waiting)+len(si.SemWaiting) > 0 {
					continue
				}
				if len(si.Locks) > 0 {
					l, _ := m.Lock(si.Locks[0])
					for _, h := range l.Holders {
						if h.Session == id {
							c = &Command{Op: OpRelease, Session: id, Name: l.Name, Token: h.Token}
						}
					}
				} else if len(si.Permits) > 0 {
					r, _ := m.Semaphore(si.Permits[0])
					for _, h := range r.Holders {
						if h.Session == id {
							c = &Command{Op: OpSemRelease, Session: id, Name: r.Name, Token: h.Token}
						}
					}
				}
				if c == nil {
					continue
				}
			}
			// Would it queue? Only a wait that cannot be granted now is
			// checked by the rule.
			wouldQueue := c.Wait && !tryWouldGrant(m, c)
			si, _ := m.Session(id)
			if c.Op == OpAcquire {
				l, _ := m.locks.Get(c.Name)
				if _, _, held := l.heldBy(id); held || has(m.sessions[id].waiting, c.Name) {
					wouldQueue = false
				}
			} else if has(m.sessions[id].permits, c.Name) || has(m.sessions[id].semWaiting, c.Name) {
				wouldQueue = false
			}
			_ = si
			var oracle bool
			if wouldQueue {
				oracle = canEverGrant(t, m, c)
			}
			res := apply(c)
			if err := checkInvariants(m); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			if !wouldQueue {
				if res.Code == CodeDeadlock {
					t.Fatalf("seed %d step %d: %+v refused though it would not queue", seed, step, c)
				}
				continue
			}
			switch {
			case res.Code == CodeDeadlock && oracle:
				t.Fatalf("seed %d step %d: %+v refused, but some order of releases grants it: %s", seed, step, c, res.Reason)
			case res.Code == CodeQueued && !oracle:
				t.Fatalf("seed %d step %d: %+v queued, but no order of releases ever grants it", seed, step, c)
			case res.Code == CodeDeadlock:
				refused++
			case res.Code == CodeQueued:
				queued++
			case res.Code != CodeModeMismatch:
				t.Fatalf("seed %d step %d: %+v answered %v", seed, step, c, res.Code)
			}
		}
	}
	t.Logf("%d waits refused, %d queued", refused, queued)
	if refused < 30 || queued < 100 {
		t.Fatalf("weak test: %d waits refused, %d queued", refused, queued)
	}
}

var _ = fmt.Sprint
