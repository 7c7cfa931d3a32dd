package lock

import (
	"fmt"
	"slices"
)

// checkInvariants verifies the machine's internal consistency: every lock
// has exactly one holder that exists and knows it, waiters exist, are queued
// once and never hold the lock they wait for, every election has exactly
// one leader that exists and knows it, candidates exist, are queued once and
// never lead the election they wait in, the deadline heap indexes every
// session, and ephemeral sessions touch only their bound lock.
func checkInvariants(m *Machine) error {
	for name, e := range m.elections {
		if e.name != name {
			return fmt.Errorf("election %q stored under %q", e.name, name)
		}
		if e.leader == nil {
			// A queue without a leader: the head was not promoted.
			return fmt.Errorf("election %q exists without leader (candidates %d)", name, len(e.queue))
		}
		if m.sessions[e.leader.id] != e.leader {
			return fmt.Errorf("election %q led by missing session %d", name, e.leader.id)
		}
		if !has(e.leader.leads, name) {
			return fmt.Errorf("election %q leader %d does not know it", name, e.leader.id)
		}
		if e.term == 0 || e.term > m.applied {
			return fmt.Errorf("election %q term %d (applied %d)", name, e.term, m.applied)
		}
		if len(e.value) > MaxValueSize {
			return fmt.Errorf("election %q value of %d bytes", name, len(e.value))
		}
		seen := map[uint64]bool{}
		for _, c := range e.queue {
			if m.sessions[c.s.id] != c.s {
				return fmt.Errorf("election %q candidate %d missing", name, c.s.id)
			}
			if c.s == e.leader {
				return fmt.Errorf("election %q: leader %d also a candidate", name, c.s.id)
			}
			if seen[c.s.id] {
				return fmt.Errorf("election %q: candidate %d queued twice", name, c.s.id)
			}
			seen[c.s.id] = true
			if !has(c.s.runs, name) {
				return fmt.Errorf("election %q candidate %d does not know it", name, c.s.id)
			}
			if len(c.value) > MaxValueSize {
				return fmt.Errorf("election %q candidate %d value of %d bytes", name, c.s.id, len(c.value))
			}
		}
	}
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
		for name := range s.leads {
			if e := m.elections[name]; e == nil || e.leader != s {
				return fmt.Errorf("session %d thinks it leads %q", id, name)
			}
		}
		for name := range s.runs {
			e := m.elections[name]
			if e == nil || !slices.ContainsFunc(e.queue, func(c candidate) bool { return c.s == s }) {
				return fmt.Errorf("session %d thinks it is a candidate in %q", id, name)
			}
		}
		if s.bound != "" && len(s.leads)+len(s.runs) != 0 {
			return fmt.Errorf("ephemeral session %d in elections: leads %v runs %v", id, s.leads, s.runs)
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
