package lock

import (
	"fmt"
	"slices"
)

// lockRec is one lock, stored by value in Machine.locks under its name. A
// lock exists while it is held (holder != 0); its queue is non-empty only
// while it is held: a release grants the head at once, and a lock with
// neither holder nor waiters is deleted. queue is shared with snapshot
// captures: it is replaced, never changed in place (see without).
type lockRec struct {
	holder uint64 // session ID
	token  uint64
	since  int64
	queue  []waiter
	// delayedUntil, when not 0, is the end of the lock's lock-delay: its
	// holder expired with a lock-delay, and nobody holds it until then
	// (holder 0, the queue kept). See lockdelay.go.
	delayedUntil int64
}

// waiter is one place in a lock's queue.
type waiter struct {
	session uint64
	since   int64
}

// holderOf describes l's holder, nil for a free lock.
func (m *Machine) holderOf(l *lockRec) *Holder {
	if l.holder == 0 {
		return nil
	}
	return &Holder{Session: l.holder, Owner: m.sessions[l.holder].owner, Token: l.token, Since: l.since}
}

// grant makes s, which waited since waited, the holder of l (named name)
// with this entry's index as token. The caller stores l.
func (a *applier) grant(name string, l *lockRec, s *session, waited int64) {
	l.holder, l.token, l.since = s.id, a.index, a.m.clock
	s.held[name] = struct{}{}
	a.emit(EventLockGranted, s.id, name, l.token)
	a.res.Events[len(a.res.Events)-1].Since = waited
}

// releaseLock releases lock name from its holder and grants it to the head
// waiter, or deletes it when nobody waits.
func (a *applier) releaseLock(name string) {
	a.grantHead(name, a.takeFromHolder(name))
}

// takeFromHolder ends the hold of lock name (a lock_released event that
// carries when it was granted) and returns the lock, held by nobody, for
// the caller to store.
func (a *applier) takeFromHolder(name string) lockRec {
	m := a.m
	l, ok := m.locks.Get(name)
	if !ok || l.holder == 0 {
		panic(fmt.Sprintf("lock: release of free lock %q", name))
	}
	h := m.sessions[l.holder]
	a.emit(EventLockReleased, h.id, name, l.token)
	a.res.Events[len(a.res.Events)-1].Since = l.since
	delete(h.held, name)
	l.holder, l.token, l.since = 0, 0, 0
	return l
}

// grantHead grants free lock l (named name) to its head waiter, or deletes
// it when nobody waits.
func (a *applier) grantHead(name string, l lockRec) {
	m := a.m
	if len(l.queue) == 0 {
		m.locks.Delete(name)
		return
	}
	w := l.queue[0]
	l.queue = popped(l.queue)
	m.waiters--
	s := m.sessions[w.session]
	delete(s.waiting, name)
	a.grant(name, &l, s, w.since)
	m.locks.Set(name, l)
}

// dequeue removes s from the queue of lock name.
func (a *applier) dequeue(name string, s *session) {
	m := a.m
	l, _ := m.locks.Get(name)
	i := slices.IndexFunc(l.queue, func(w waiter) bool { return w.session == s.id })
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d not in the queue of %q", s.id, name))
	}
	l.queue = without(l.queue, i)
	m.waiters--
	delete(s.waiting, name)
	a.emit(EventLockCancelled, s.id, name, 0)
	if l.holder == 0 && l.delayedUntil == 0 && len(l.queue) == 0 {
		m.locks.Delete(name)
		return
	}
	m.locks.Set(name, l)
}

func (a *applier) acquire(c *Command) {
	m := a.m
	l, exists := m.locks.Get(c.Name)
	var s *session
	if c.Session == 0 {
		if exists && !c.Wait {
			a.res = Result{Code: CodeLockHeld, Holder: m.holderOf(&l)}
			return
		}
		if a.sessionQuota(c.Principal) || (!exists && a.noSpace(sessionBytes+lockBytes)) ||
			(exists && a.quota(len(l.queue), m.Limits().WaitersPerLock, fmt.Sprintf("lock %q has too many waiters (waiters_per_lock)", c.Name))) {
			return
		}
		s = a.open(c.Owner, c.TTL, c.Name, "", c.Principal)
	} else {
		// An ephemeral session acquiring another lock was refused before.
		var ok bool
		if s, ok = m.sessions[c.Session]; !ok {
			a.res = Result{Code: CodeSessionNotFound, Session: c.Session}
			return
		}
	}
	a.res.Session = s.id
	if c.Session == 0 {
		a.res.TTL = s.ttl
	}
	// Growth by an existing session (a new lock record, or a new place in
	// a queue) within the quotas; a retry (holder or already queued) or a
	// try of a held lock does not grow.
	if c.Session != 0 && (!exists || (c.Wait && l.holder != s.id && !has(s.waiting, c.Name))) {
		if a.quota(len(s.held)+len(s.waiting), m.Limits().LocksPerSession,
			fmt.Sprintf("session %d holds or waits for too many locks (locks_per_session)", s.id)) ||
			(!exists && a.noSpace(lockBytes)) ||
			(exists && a.quota(len(l.queue), m.Limits().WaitersPerLock, fmt.Sprintf("lock %q has too many waiters (waiters_per_lock)", c.Name))) {
			a.res.Session = s.id
			return
		}
	}
	switch {
	case !exists:
		a.grant(c.Name, &l, s, m.clock)
		m.locks.Set(c.Name, l)
		a.res.Code, a.res.Token = CodeOK, l.token
	case l.holder == s.id:
		a.res.Code, a.res.Token = CodeOK, l.token
	case has(s.waiting, c.Name):
		a.res.Code, a.res.Holder = CodeQueued, m.holderOf(&l)
	case !c.Wait:
		a.res.Code, a.res.Holder = CodeLockHeld, m.holderOf(&l)
		if l.delayedUntil != 0 {
			a.res.Reason = delayReason(l.delayedUntil)
		}
	case m.ClusterVersion() >= deadlockVersion && a.deadlock(s, c.Name, l.holder):
		a.res.Holder = m.holderOf(&l)
	default:
		l.queue = appended(l.queue, waiter{session: s.id, since: m.clock})
		m.waiters++
		m.locks.Set(c.Name, l)
		s.waiting[c.Name] = struct{}{}
		a.emit(EventLockQueued, s.id, c.Name, 0)
		a.res.Code, a.res.Holder = CodeQueued, m.holderOf(&l)
	}
}

func (a *applier) release(id uint64, name string, token uint64) {
	m := a.m
	a.res.Session = id
	l, ok := m.locks.Get(name)
	if ok && l.holder != 0 && mutated(releaseWithStaleToken) {
		token = l.token
	}
	if !ok || l.holder == 0 || l.holder != id || l.token != token {
		a.res.Code = CodeNotHolder
		return
	}
	s := m.sessions[l.holder]
	a.releaseLock(name)
	if s.bound == name {
		a.end(s, EventSessionClosed)
	}
	a.res.Code = CodeOK
}

// forceRelease applies OpRelease with Force: the lock is released whoever
// holds it (granting the head waiter), the events name the admin by; an
// ephemeral holder bound to it is closed. CodeNotHolder when it is free.
// Result.Session and Token are the holder and token released.
func (a *applier) forceRelease(name, by string) {
	m := a.m
	l, ok := m.locks.Get(name)
	if !ok || l.holder == 0 {
		a.res.Code = CodeNotHolder
		return
	}
	s := m.sessions[l.holder]
	a.by = by
	a.res.Session, a.res.Token = s.id, l.token
	a.releaseLock(name)
	if s.bound == name {
		a.end(s, EventSessionClosed)
	}
	a.res.Code = CodeOK
}

func (a *applier) cancel(id uint64, name string) {
	m := a.m
	a.res.Session = id
	s, ok := m.sessions[id]
	if !ok {
		a.res.Code = CodeSessionNotFound
		return
	}
	a.res.Code = CodeOK
	switch {
	case has(s.waiting, name):
		a.dequeue(name, s)
		if s.bound == name {
			// An ephemeral session that gave up its only lock has no use.
			a.end(s, EventSessionClosed)
		}
	case has(s.held, name):
		l, _ := m.locks.Get(name)
		a.res.Token = l.token
	}
}

// acquireAll applies OpAcquireAll: every name of c.Names for c.Session in
// this entry, or none (see the Op).
func (a *applier) acquireAll(c *Command) {
	m := a.m
	s, ok := m.sessions[c.Session]
	if !ok {
		a.res = Result{Code: CodeSessionNotFound, Session: c.Session}
		return
	}
	a.res.Session = s.id
	fresh := 0
	for _, name := range c.Names {
		l, exists := m.locks.Get(name)
		switch {
		case !exists:
			fresh++
		case l.holder != s.id:
			a.res = Result{Code: CodeLockHeld, Session: s.id, Holder: m.holderOf(&l), Reason: name}
			return
		}
	}
	if fresh > 0 && (a.quota(len(s.held)+len(s.waiting)+fresh-1, m.Limits().LocksPerSession,
		fmt.Sprintf("session %d would hold or wait for too many locks (locks_per_session)", s.id)) ||
		a.noSpace(uint64(fresh)*lockBytes)) {
		a.res.Session = s.id
		return
	}
	tokens := make([]uint64, len(c.Names))
	for i, name := range c.Names {
		l, exists := m.locks.Get(name)
		if !exists {
			a.grant(name, &l, s, m.clock)
			m.locks.Set(name, l)
		}
		tokens[i] = l.token
	}
	a.res.Code, a.res.Tokens, a.res.Token = CodeOK, tokens, tokens[0]
	if fresh > 0 {
		a.res.Token = a.index
	}
}
