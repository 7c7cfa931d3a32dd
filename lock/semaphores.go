package lock

import (
	"fmt"
	"slices"
	"strings"
)

// semRec is one counting semaphore, stored by value in Machine.sems under
// its name (a namespace of its own: semaphore "x" and lock "x" are
// unrelated). It exists while a permit is held; its queue is non-empty
// only while every permit is held (a freed permit goes to the head waiter
// at once: grantPermits), so a waiter never waits behind a free permit.
// holders and queue are shared with snapshot captures: they are replaced,
// never changed in place (see without).
type semRec struct {
	limit   uint32
	holders []hold // grant order
	queue   []waiter
}

// permitOf is the index of session id in r.holders, -1 when it holds no
// permit.
func (r *semRec) permitOf(id uint64) int {
	return slices.IndexFunc(r.holders, func(h hold) bool { return h.session == id })
}

// full reports whether every permit of r is held.
func (r *semRec) full() bool { return len(r.holders) >= int(r.limit) }

// grantPermit gives s, which waited since waited, a permit of r (named
// name) with this entry's index as token. The caller stores r.
func (a *applier) grantPermit(name string, r *semRec, s *session, waited int64) {
	r.holders = appended(r.holders, hold{session: s.id, token: a.index, since: a.m.clock})
	if s.permits == nil {
		s.permits = make(map[string]struct{})
	}
	s.permits[name] = struct{}{}
	a.emit(EventPermitGranted, s.id, name, a.index)
	a.res.Events[len(a.res.Events)-1].Since = waited
}

// grantPermits grants the free permits of r (named name) to its head
// waiters, in queue order, and stores r, or deletes it when nobody holds a
// permit.
func (a *applier) grantPermits(name string, r semRec) {
	m := a.m
	for len(r.queue) > 0 && !r.full() {
		w := r.queue[0]
		r.queue = popped(r.queue)
		m.waiters--
		s := m.sessions[w.session]
		delete(s.semWaiting, name)
		a.grantPermit(name, &r, s, w.since)
	}
	if len(r.holders) == 0 && len(r.queue) == 0 {
		m.sems.Delete(name)
		return
	}
	m.sems.Set(name, r)
}

// releasePermit gives back the permit of semaphore name held by session
// id and grants the freed permit.
func (a *applier) releasePermit(name string, id uint64) {
	m := a.m
	r, _ := m.sems.Get(name)
	i := r.permitOf(id)
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d holds no permit of semaphore %q", id, name))
	}
	h := r.holders[i]
	r.holders = without(r.holders, i)
	delete(m.sessions[id].permits, name)
	a.emit(EventPermitReleased, id, name, h.token)
	a.res.Events[len(a.res.Events)-1].Since = h.since
	a.grantPermits(name, r)
}

// semDequeue removes s from the queue of semaphore name (granting the
// free permits afterwards unless regrant is false, as dequeue).
func (a *applier) semDequeue(name string, s *session, regrant bool) {
	m := a.m
	r, _ := m.sems.Get(name)
	i := slices.IndexFunc(r.queue, func(w waiter) bool { return w.session == s.id })
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d not in the queue of semaphore %q", s.id, name))
	}
	r.queue = without(r.queue, i)
	m.waiters--
	delete(s.semWaiting, name)
	a.emit(EventPermitCancelled, s.id, name, 0)
	if regrant || (len(r.holders) == 0 && len(r.queue) == 0) {
		a.grantPermits(name, r)
		return
	}
	m.sems.Set(name, r)
}

// semAcquire applies OpSemAcquire.
func (a *applier) semAcquire(c *Command) {
	m := a.m
	s, ok := m.sessions[c.Session]
	if !ok {
		a.res = Result{Code: CodeSessionNotFound, Session: c.Session}
		return
	}
	a.res.Session = s.id
	r, exists := m.sems.Get(c.Name)
	if exists && r.limit != c.Limit {
		a.res.Code, a.res.Limit = CodeLimitMismatch, r.limit
		a.res.Reason = fmt.Sprintf("semaphore %q has a limit of %d while it has holders", c.Name, r.limit)
		return
	}
	a.res.Limit = c.Limit
	i := r.permitOf(s.id)
	queued := has(s.semWaiting, c.Name)
	now := !exists || (len(r.queue) == 0 && !r.full())
	if i < 0 && !queued && (now || c.Wait) {
		if a.quota(len(s.held)+len(s.waiting)+len(s.permits)+len(s.semWaiting), m.Limits().LocksPerSession,
			fmt.Sprintf("session %d holds or waits for too many locks (locks_per_session)", s.id)) ||
			(!exists && a.noSpace(lockBytes)) ||
			(!now && a.quota(len(r.queue), m.Limits().WaitersPerLock, fmt.Sprintf("semaphore %q has too many waiters (waiters_per_lock)", c.Name))) {
			a.res.Session = s.id
			return
		}
	}
	switch {
	case i >= 0:
		a.res.Code, a.res.Token = CodeOK, r.holders[i].token
	case queued:
		a.res.Code, a.res.Holders = CodeQueued, m.holds(r.holders, Exclusive)
	case now:
		if !exists {
			r.limit = c.Limit
		}
		a.grantPermit(c.Name, &r, s, m.clock)
		m.sems.Set(c.Name, r)
		a.res.Code, a.res.Token = CodeOK, a.index
	case !c.Wait:
		a.res.Code, a.res.Holders = CodeLockHeld, m.holds(r.holders, Exclusive)
	case a.deadlock(s, resource{sem: true, name: c.Name}, Exclusive):
		a.res.Holders = m.holds(r.holders, Exclusive)
		a.res.Limit = r.limit
	default:
		r.queue = appended(r.queue, waiter{session: s.id, since: m.clock})
		m.waiters++
		m.sems.Set(c.Name, r)
		if s.semWaiting == nil {
			s.semWaiting = make(map[string]struct{})
		}
		s.semWaiting[c.Name] = struct{}{}
		a.emit(EventPermitQueued, s.id, c.Name, 0)
		a.res.Code, a.res.Holders = CodeQueued, m.holds(r.holders, Exclusive)
	}
}

// semRelease applies OpSemRelease.
func (a *applier) semRelease(id uint64, name string, token uint64) {
	m := a.m
	a.res.Session = id
	r, ok := m.sems.Get(name)
	if i := r.permitOf(id); !ok || i < 0 || r.holders[i].token != token {
		a.res.Code = CodeNotHolder
		return
	}
	a.releasePermit(name, id)
	a.res.Code = CodeOK
}

// semCancel applies OpSemCancel.
func (a *applier) semCancel(id uint64, name string) {
	m := a.m
	a.res.Session = id
	s, ok := m.sessions[id]
	if !ok {
		a.res.Code = CodeSessionNotFound
		return
	}
	a.res.Code = CodeOK
	switch {
	case has(s.semWaiting, name):
		a.semDequeue(name, s, true)
	case has(s.permits, name):
		r, _ := m.sems.Get(name)
		a.res.Token = r.holders[r.permitOf(id)].token
	}
}

// Semaphore returns a copy of semaphore name, and false when nobody holds
// a permit of it (such a semaphore does not exist).
func (m *Machine) Semaphore(name string) (SemaphoreInfo, bool) {
	r, ok := m.sems.Get(name)
	if !ok {
		return SemaphoreInfo{}, false
	}
	return m.semInfo(name, &r), true
}

func (m *Machine) semInfo(name string, r *semRec) SemaphoreInfo {
	return SemaphoreInfo{Name: name, Limit: r.limit, Holders: m.holds(r.holders, Exclusive), Waiters: m.waitersOf(r.queue)}
}

// ListSemaphores is ListLocks for semaphores.
func (m *Machine) ListSemaphores(prefix, after string, limit int) ([]SemaphoreInfo, bool) {
	var out []SemaphoreInfo
	for name, r := range m.sems.Ascend(listFrom(prefix, after)) {
		if !strings.HasPrefix(name, prefix) {
			break
		}
		if limit > 0 && len(out) == limit {
			return out, true
		}
		out = append(out, m.semInfo(name, &r))
	}
	return out, false
}

// SemaphoreCount is the number of semaphores with a permit held. O(1).
func (m *Machine) SemaphoreCount() int { return m.sems.Len() }
