package lock

import (
	"fmt"
	"slices"
)

// checkInvariants verifies the machine's internal consistency: every lock
// has exactly one holder that exists and knows it, waiters exist, are queued
// once and never hold the lock they wait for, the deadline heap indexes
// every session, and ephemeral sessions touch only their bound lock.
func checkInvariants(m *Machine) error {
	for name, l := range m.locks {
		if l.name != name {
			return fmt.Errorf("lock %q stored under %q", l.name, name)
		}
		if l.holder == nil {
			return fmt.Errorf("lock %q exists without holder (waiters %d)", name, len(l.queue))
		}
		if m.sessions[l.holder.id] != l.holder {
			return fmt.Errorf("lock %q held by missing session %d", name, l.holder.id)
		}
		if !has(l.holder.held, name) {
			return fmt.Errorf("lock %q holder %d does not know it", name, l.holder.id)
		}
		if l.token == 0 || l.token > m.applied {
			return fmt.Errorf("lock %q token %d (applied %d)", name, l.token, m.applied)
		}
		seen := map[uint64]bool{}
		for _, w := range l.queue {
			if m.sessions[w.s.id] != w.s {
				return fmt.Errorf("lock %q waiter %d missing", name, w.s.id)
			}
			if w.s == l.holder {
				return fmt.Errorf("lock %q: holder %d also waits", name, w.s.id)
			}
			if seen[w.s.id] {
				return fmt.Errorf("lock %q: waiter %d queued twice", name, w.s.id)
			}
			seen[w.s.id] = true
			if !has(w.s.waiting, name) {
				return fmt.Errorf("lock %q waiter %d does not know it", name, w.s.id)
			}
		}
	}
	if len(m.deadlines) != len(m.sessions) {
		return fmt.Errorf("heap has %d sessions, map %d", len(m.deadlines), len(m.sessions))
	}
	for i, s := range m.deadlines {
		if s.pos != i {
			return fmt.Errorf("session %d at heap %d thinks %d", s.id, i, s.pos)
		}
		if i > 0 && m.deadlines.Less(i, (i-1)/2) {
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	for id, s := range m.sessions {
		if s.id != id || id == 0 || id > m.applied {
			return fmt.Errorf("session %d stored under %d", s.id, id)
		}
		if s.pos < 0 || s.pos >= len(m.deadlines) || m.deadlines[s.pos] != s {
			return fmt.Errorf("session %d not in heap", id)
		}
		for name := range s.held {
			if l := m.locks[name]; l == nil || l.holder != s {
				return fmt.Errorf("session %d thinks it holds %q", id, name)
			}
		}
		for name := range s.waiting {
			l := m.locks[name]
			if l == nil || !slices.ContainsFunc(l.queue, func(w waiter) bool { return w.s == s }) {
				return fmt.Errorf("session %d thinks it waits for %q", id, name)
			}
		}
		if s.bound != "" {
			if len(s.held)+len(s.waiting) != 1 || !(has(s.held, s.bound) || has(s.waiting, s.bound)) {
				return fmt.Errorf("ephemeral session %d not (only) on %q: held %v waiting %v", id, s.bound, s.held, s.waiting)
			}
		}
	}
	if d, ok := m.NextDeadline(); ok {
		for _, s := range m.sessions {
			if s.deadline < d {
				return fmt.Errorf("NextDeadline %d but session %d has %d", d, s.id, s.deadline)
			}
		}
	} else if len(m.sessions) > 0 {
		return fmt.Errorf("NextDeadline false with %d sessions", len(m.sessions))
	}
	return nil
}
