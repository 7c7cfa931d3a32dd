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
// session, request IDs map to the sessions they opened, the trees are
// well formed, and ephemeral sessions touch only their bound lock.
func checkInvariants(m *Machine) error {
	waiters, shared := 0, 0
	for _, l := range m.locks.Ascend("") {
		waiters += len(l.queue)
		shared += len(l.shared)
		for _, w := range l.queue {
			if w.mode == Shared {
				shared++
			}
		}
	}
	for _, r := range m.sems.Ascend("") {
		waiters += len(r.queue)
	}
	if shared != m.sharedLocks {
		return fmt.Errorf("shared count %d, locks have %d shared holds and places", m.sharedLocks, shared)
	}
	if err := m.checkSemaphores(); err != nil {
		return err
	}
	if waiters != m.waiters {
		return fmt.Errorf("waiter count %d, queues hold %d", m.waiters, waiters)
	}
	if err := m.locks.check(); err != nil {
		return fmt.Errorf("locks tree: %w", err)
	}
	if err := m.elections.check(); err != nil {
		return fmt.Errorf("elections tree: %w", err)
	}
	for name, e := range m.elections.Ascend("") {
		leader := m.sessions[e.leader]
		if e.leader == 0 {
			// A queue without a leader: the head was not promoted.
			return fmt.Errorf("election %q exists without leader (candidates %d)", name, len(e.queue))
		}
		if leader == nil {
			return fmt.Errorf("election %q led by missing session %d", name, e.leader)
		}
		if !has(leader.leads, name) {
			return fmt.Errorf("election %q leader %d does not know it", name, e.leader)
		}
		if e.term == 0 || e.term > m.applied {
			return fmt.Errorf("election %q term %d (applied %d)", name, e.term, m.applied)
		}
		if len(e.value) > MaxValueSize {
			return fmt.Errorf("election %q value of %d bytes", name, len(e.value))
		}
		seen := map[uint64]bool{}
		for _, c := range e.queue {
			s := m.sessions[c.session]
			if s == nil {
				return fmt.Errorf("election %q candidate %d missing", name, c.session)
			}
			if c.session == e.leader {
				return fmt.Errorf("election %q: leader %d also a candidate", name, c.session)
			}
			if seen[c.session] {
				return fmt.Errorf("election %q: candidate %d queued twice", name, c.session)
			}
			seen[c.session] = true
			if !has(s.runs, name) {
				return fmt.Errorf("election %q candidate %d does not know it", name, c.session)
			}
			if len(c.value) > MaxValueSize {
				return fmt.Errorf("election %q candidate %d value of %d bytes", name, c.session, len(c.value))
			}
		}
	}
	delayed := 0
	for name, l := range m.locks.Ascend("") {
		switch {
		case l.delayedUntil != 0:
			// In its lock-delay: nobody holds it, waiters may wait.
			if l.holder != 0 || l.token != 0 || m.delays[name] != l.delayedUntil {
				return fmt.Errorf("lock %q in its lock-delay until %d: holder %d token %d, delays has %d", name, l.delayedUntil, l.holder, l.token, m.delays[name])
			}
			delayed++
			if len(l.shared) > 0 {
				return fmt.Errorf("lock %q in its lock-delay has shared holders", name)
			}
		case l.holder == 0 && len(l.shared) == 0:
			return fmt.Errorf("lock %q exists without holder (waiters %d)", name, len(l.queue))
		case l.holder == 0:
			var last uint64
			for _, h := range l.shared {
				s := m.sessions[h.session]
				if s == nil || !has(s.held, name) {
					return fmt.Errorf("lock %q shared holder %d missing or does not know it", name, h.session)
				}
				if h.token == 0 || h.token > m.applied || h.token < last {
					return fmt.Errorf("lock %q shared holder %d token %d", name, h.session, h.token)
				}
				last = h.token
			}
		case len(l.shared) > 0:
			return fmt.Errorf("lock %q held exclusive by %d and shared by %d", name, l.holder, len(l.shared))
		default:
			holder := m.sessions[l.holder]
			if holder == nil {
				return fmt.Errorf("lock %q held by missing session %d", name, l.holder)
			}
			if !has(holder.held, name) {
				return fmt.Errorf("lock %q holder %d does not know it", name, l.holder)
			}
			if l.token == 0 || l.token > m.applied {
				return fmt.Errorf("lock %q token %d (applied %d)", name, l.token, m.applied)
			}
		}
		if len(l.queue) > 0 && l.admits(l.queue[0].mode) {
			return fmt.Errorf("lock %q: head waiter %d (%v) could hold it", name, l.queue[0].session, l.queue[0].mode)
		}
		seen := map[uint64]bool{}
		for _, h := range l.shared {
			if seen[h.session] {
				return fmt.Errorf("lock %q: shared holder %d twice", name, h.session)
			}
			seen[h.session] = true
		}
		for _, w := range l.queue {
			s := m.sessions[w.session]
			if s == nil {
				return fmt.Errorf("lock %q waiter %d missing", name, w.session)
			}
			if _, _, held := l.heldBy(w.session); held || w.mode > Shared {
				return fmt.Errorf("lock %q: holder %d also waits", name, w.session)
			}
			if seen[w.session] {
				return fmt.Errorf("lock %q: waiter %d queued twice", name, w.session)
			}
			seen[w.session] = true
			if !has(s.waiting, name) {
				return fmt.Errorf("lock %q waiter %d does not know it", name, w.session)
			}
		}
	}
	if delayed != len(m.delays) {
		return fmt.Errorf("%d locks in their lock-delay, %d in delays", delayed, len(m.delays))
	}
	if m.byID.Len() != len(m.sessions) {
		return fmt.Errorf("%d sessions by ID, %d in the map", m.byID.Len(), len(m.sessions))
	}
	for _, s := range m.byID.Ascend("") {
		if m.sessions[s.id] != s {
			return fmt.Errorf("session %d by ID is not the map's", s.id)
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
	reqs := 0
	for id, s := range m.sessions {
		if s.id != id || id == 0 || id > m.applied {
			return fmt.Errorf("session %d stored under %d", s.id, id)
		}
		if s.pos < 0 || s.pos >= len(m.deadlines) || m.deadlines[s.pos] != s {
			return fmt.Errorf("session %d not in heap", id)
		}
		if s.requestID != "" {
			reqs++
			if m.openReqs[s.requestID] != id {
				return fmt.Errorf("session %d opened by request %q, which maps to %d", id, s.requestID, m.openReqs[s.requestID])
			}
		}
		for name := range s.held {
			if l, ok := m.locks.Get(name); !ok {
				return fmt.Errorf("session %d thinks it holds %q", id, name)
			} else if _, _, held := l.heldBy(id); !held {
				return fmt.Errorf("session %d thinks it holds %q", id, name)
			}
		}
		for name := range s.permits {
			if r, ok := m.sems.Get(name); !ok || r.permitOf(id) < 0 {
				return fmt.Errorf("session %d thinks it holds a permit of %q", id, name)
			}
		}
		for name := range s.semWaiting {
			r, ok := m.sems.Get(name)
			if !ok || !slices.ContainsFunc(r.queue, func(w waiter) bool { return w.session == id }) {
				return fmt.Errorf("session %d thinks it waits for semaphore %q", id, name)
			}
		}
		for name := range s.waiting {
			l, ok := m.locks.Get(name)
			if !ok || !slices.ContainsFunc(l.queue, func(w waiter) bool { return w.session == id }) {
				return fmt.Errorf("session %d thinks it waits for %q", id, name)
			}
		}
		for name := range s.leads {
			if e, ok := m.elections.Get(name); !ok || e.leader != id {
				return fmt.Errorf("session %d thinks it leads %q", id, name)
			}
		}
		for name := range s.runs {
			e, ok := m.elections.Get(name)
			if !ok || !slices.ContainsFunc(e.queue, func(c candidate) bool { return c.session == id }) {
				return fmt.Errorf("session %d thinks it is a candidate in %q", id, name)
			}
		}
		if s.bound != "" && len(s.leads)+len(s.runs)+len(s.permits)+len(s.semWaiting) != 0 {
			return fmt.Errorf("ephemeral session %d in elections: leads %v runs %v", id, s.leads, s.runs)
		}
		if s.bound != "" {
			if len(s.held)+len(s.waiting) != 1 || !(has(s.held, s.bound) || has(s.waiting, s.bound)) {
				return fmt.Errorf("ephemeral session %d not (only) on %q: held %v waiting %v", id, s.bound, s.held, s.waiting)
			}
		}
	}
	if reqs != len(m.openReqs) {
		return fmt.Errorf("%d request IDs recorded, %d sessions have one", len(m.openReqs), reqs)
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

// checkSemaphores verifies every semaphore: a limit, 1 to limit holders
// that exist and know it, one permit per session, tokens in grant order,
// waiters only while every permit is held, queued once, never holders.
func (m *Machine) checkSemaphores() error {
	if err := m.sems.check(); err != nil {
		return fmt.Errorf("semaphores tree: %w", err)
	}
	for name, r := range m.sems.Ascend("") {
		if r.limit == 0 || r.limit > MaxSemaphoreLimit || len(r.holders) == 0 || len(r.holders) > int(r.limit) {
			return fmt.Errorf("semaphore %q limit %d holders %d", name, r.limit, len(r.holders))
		}
		if len(r.queue) > 0 && !r.full() {
			return fmt.Errorf("semaphore %q: %d waiters behind a free permit", name, len(r.queue))
		}
		seen := map[uint64]bool{}
		var last uint64
		for _, h := range r.holders {
			s := m.sessions[h.session]
			if s == nil || !has(s.permits, name) || seen[h.session] {
				return fmt.Errorf("semaphore %q holder %d missing, unaware or twice", name, h.session)
			}
			if h.token == 0 || h.token > m.applied || h.token < last {
				return fmt.Errorf("semaphore %q holder %d token %d", name, h.session, h.token)
			}
			seen[h.session], last = true, h.token
		}
		for _, w := range r.queue {
			s := m.sessions[w.session]
			if s == nil || !has(s.semWaiting, name) || seen[w.session] {
				return fmt.Errorf("semaphore %q waiter %d missing, unaware, holder or twice", name, w.session)
			}
			seen[w.session] = true
		}
	}
	return nil
}
