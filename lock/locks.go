package lock

import (
	"fmt"
	"slices"
)

// lockRec is one lock, stored by value in Machine.locks under its name. A
// lock is held by one exclusive holder (holder != 0) or by shared holders
// (shared), never both. It exists while it is held or in its lock-delay;
// its queue is non-empty only then, and its head waiter can never be
// granted at once (grantReady grants every waiter that can be, after each
// change): no waiter waits behind a free lock. A lock with no holder, no
// lock-delay and no waiters is deleted. queue and shared are shared with
// snapshot captures: they are replaced, never changed in place (see
// without).
type lockRec struct {
	holder uint64 // exclusive holder's session ID
	token  uint64
	since  int64
	shared []hold // shared holders, in grant order
	queue  []waiter
	// delayedUntil, when not 0, is the end of the lock's lock-delay: its
	// holder expired with a lock-delay, and nobody holds it until then
	// (holder 0, the queue kept). See lockdelay.go.
	delayedUntil int64
}

// hold is one shared hold of a lock, or one permit of a semaphore.
type hold struct {
	session uint64
	token   uint64
	since   int64
}

// waiter is one place in a lock's or a semaphore's queue.
type waiter struct {
	session uint64
	since   int64
	mode    Mode // locks: the mode asked for
}

// held reports whether anybody holds l.
func (l *lockRec) held() bool { return l.holder != 0 || len(l.shared) > 0 }

// admits reports whether a request in mode could be granted l now, were
// nobody queued ahead of it.
func (l *lockRec) admits(mode Mode) bool {
	if l.holder != 0 || l.delayedUntil != 0 {
		return false
	}
	return mode == Shared || len(l.shared) == 0
}

// holderOf describes l's exclusive holder, nil when it has none.
func (m *Machine) holderOf(l *lockRec) *Holder {
	if l.holder == 0 {
		return nil
	}
	return &Holder{Session: l.holder, Owner: m.sessions[l.holder].owner, Token: l.token, Since: l.since}
}

// holdersOf describes every holder of l in grant order, nil when free.
func (m *Machine) holdersOf(l *lockRec) []Holder {
	if h := m.holderOf(l); h != nil {
		return []Holder{*h}
	}
	return m.holds(l.shared, Shared)
}

// holds describes hs, each in mode.
func (m *Machine) holds(hs []hold, mode Mode) []Holder {
	if len(hs) == 0 {
		return nil
	}
	out := make([]Holder, len(hs))
	for i, h := range hs {
		out[i] = Holder{Session: h.session, Owner: m.sessions[h.session].owner, Token: h.token, Since: h.since, Mode: mode}
	}
	return out
}

// heldBy returns the mode and token of the hold of l by session id, and
// false when id does not hold l.
func (l *lockRec) heldBy(id uint64) (Mode, uint64, bool) {
	if l.holder == id && id != 0 {
		return Exclusive, l.token, true
	}
	for _, h := range l.shared {
		if h.session == id {
			return Shared, h.token, true
		}
	}
	return 0, 0, false
}

// queuedMode returns the mode session id waits in l's queue with.
func (l *lockRec) queuedMode(id uint64) Mode {
	for _, w := range l.queue {
		if w.session == id {
			return w.mode
		}
	}
	return Exclusive
}

// grant makes s, which waited since waited, a holder of l (named name) in
// mode with this entry's index as token. The caller stores l.
func (a *applier) grant(name string, l *lockRec, s *session, waited int64, mode Mode) {
	if mode == Shared {
		l.shared = appended(l.shared, hold{session: s.id, token: a.index, since: a.m.clock})
		a.m.sharedLocks++
	} else {
		l.holder, l.token, l.since = s.id, a.index, a.m.clock
	}
	s.held[name] = struct{}{}
	s.locksAt = a.index
	a.emit(EventLockGranted, s.id, name, a.index)
	ev := &a.res.Events[len(a.res.Events)-1]
	ev.Since, ev.Mode = waited, mode
}

// releaseLock ends the hold of lock name by session id and grants the
// waiters that can be, or deletes the lock when it is left free with
// nobody waiting.
func (a *applier) releaseLock(name string, id uint64) {
	a.grantReady(name, a.takeFrom(name, id))
}

// takeFrom ends the hold of lock name by session id (a lock_released
// event that carries when it was granted) and returns the lock for the
// caller to store.
func (a *applier) takeFrom(name string, id uint64) lockRec {
	m := a.m
	l, ok := m.locks.Get(name)
	mode, token, held := l.heldBy(id)
	if !ok || !held {
		panic(fmt.Sprintf("lock: release of lock %q not held by session %d", name, id))
	}
	var since int64
	if mode == Exclusive {
		since = l.since
		l.holder, l.token, l.since = 0, 0, 0
	} else {
		i := slices.IndexFunc(l.shared, func(h hold) bool { return h.session == id })
		since = l.shared[i].since
		l.shared = without(l.shared, i)
		m.sharedLocks--
	}
	s := m.sessions[id]
	delete(s.held, name)
	s.locksAt = a.index
	a.emit(EventLockReleased, id, name, token)
	ev := &a.res.Events[len(a.res.Events)-1]
	ev.Since, ev.Mode = since, mode
	return l
}

// grantReady grants lock l (named name) to the waiters at the head of its
// queue that can hold it now, in queue order (consecutive shared waiters
// together; an exclusive one only when nobody holds), each with this
// entry's index as token, and stores l, or deletes it when it is left
// with no holder, no lock-delay and no waiters.
func (a *applier) grantReady(name string, l lockRec) {
	m := a.m
	for len(l.queue) > 0 && l.admits(l.queue[0].mode) {
		w := l.queue[0]
		l.queue = popped(l.queue)
		m.waiters--
		if w.mode == Shared {
			m.sharedLocks--
		}
		s := m.sessions[w.session]
		delete(s.waiting, name)
		a.grant(name, &l, s, w.since, w.mode)
	}
	if !l.held() && l.delayedUntil == 0 && len(l.queue) == 0 {
		m.locks.Delete(name)
		return
	}
	m.locks.Set(name, l)
}

// dequeue removes s from the queue of lock name, then grants the waiters
// its leaving lets through (a shared waiter behind it, when it waited
// for exclusive) unless regrant is false: expire takes every dying
// session out of the queues first, and grants afterwards.
func (a *applier) dequeue(name string, s *session, regrant bool) {
	m := a.m
	l, _ := m.locks.Get(name)
	i := slices.IndexFunc(l.queue, func(w waiter) bool { return w.session == s.id })
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d not in the queue of %q", s.id, name))
	}
	mode := l.queue[i].mode
	l.queue = without(l.queue, i)
	m.waiters--
	if mode == Shared {
		m.sharedLocks--
	}
	delete(s.waiting, name)
	a.emit(EventLockCancelled, s.id, name, 0)
	a.res.Events[len(a.res.Events)-1].Mode = mode
	if regrant || (!l.held() && l.delayedUntil == 0 && len(l.queue) == 0) {
		a.grantReady(name, l)
		return
	}
	m.locks.Set(name, l)
}

func (a *applier) acquire(c *Command) {
	m := a.m
	l, exists := m.locks.Get(c.Name)
	// now: the request would be granted at once (nobody queued ahead).
	now := !exists || (len(l.queue) == 0 && l.admits(c.Mode))
	var s *session
	if c.Session == 0 {
		if !now && !c.Wait {
			a.res = Result{Code: CodeLockHeld, Holder: m.holderOf(&l), Holders: m.holdersOf(&l)}
			return
		}
		if a.sessionQuota(c.Principal) || (!exists && a.noSpace(sessionBytes+lockBytes)) ||
			(exists && a.quota(len(l.queue)+len(l.shared), m.Limits().WaitersPerLock, fmt.Sprintf("lock %q has too many waiters (waiters_per_lock)", c.Name))) {
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
	heldMode, token, holds := l.heldBy(s.id)
	queued := has(s.waiting, c.Name)
	if (holds && heldMode != c.Mode) || (queued && l.queuedMode(s.id) != c.Mode) {
		a.res.Code, a.res.Holder, a.res.Holders = CodeModeMismatch, m.holderOf(&l), m.holdersOf(&l)
		a.res.Reason = fmt.Sprintf("session %d holds or waits for lock %q in the other mode: release it first (no upgrades or downgrades)", s.id, c.Name)
		return
	}
	// Growth by an existing session (a new lock record, a new hold or a
	// new place in a queue) within the quotas; a retry (holder or already
	// queued) or a try that fails does not grow.
	if c.Session != 0 && !holds && !queued && (now || c.Wait) {
		if a.quota(len(s.held)+len(s.waiting)+len(s.permits)+len(s.semWaiting), m.Limits().LocksPerSession,
			fmt.Sprintf("session %d holds or waits for too many locks (locks_per_session)", s.id)) ||
			(!exists && a.noSpace(lockBytes)) ||
			(exists && a.quota(len(l.queue)+len(l.shared), m.Limits().WaitersPerLock, fmt.Sprintf("lock %q has too many waiters (waiters_per_lock)", c.Name))) {
			a.res.Session = s.id
			return
		}
	}
	switch {
	case holds:
		a.res.Code, a.res.Token = CodeOK, token
	case queued:
		a.res.Code, a.res.Holder, a.res.Holders = CodeQueued, m.holderOf(&l), m.holdersOf(&l)
	case now:
		a.grant(c.Name, &l, s, m.clock, c.Mode)
		m.locks.Set(c.Name, l)
		a.res.Code, a.res.Token = CodeOK, a.index
	case !c.Wait:
		a.res.Code, a.res.Holder, a.res.Holders = CodeLockHeld, m.holderOf(&l), m.holdersOf(&l)
		if l.delayedUntil != 0 {
			a.res.Reason = delayReason(l.delayedUntil)
		}
	case m.ClusterVersion() >= deadlockVersion && a.deadlock(s, resource{name: c.Name}, c.Mode):
		a.res.Holder, a.res.Holders = m.holderOf(&l), m.holdersOf(&l)
	default:
		l.queue = appended(l.queue, waiter{session: s.id, since: m.clock, mode: c.Mode})
		m.waiters++
		if c.Mode == Shared {
			m.sharedLocks++
		}
		m.locks.Set(c.Name, l)
		s.waiting[c.Name] = struct{}{}
		a.emit(EventLockQueued, s.id, c.Name, 0)
		a.res.Events[len(a.res.Events)-1].Mode = c.Mode
		a.res.Code, a.res.Holder, a.res.Holders = CodeQueued, m.holderOf(&l), m.holdersOf(&l)
	}
}

func (a *applier) release(id uint64, name string, token uint64) {
	m := a.m
	a.res.Session = id
	l, ok := m.locks.Get(name)
	if ok && l.holder != 0 && mutated(releaseWithStaleToken) {
		token = l.token
	}
	if _, t, holds := l.heldBy(id); !ok || !holds || t != token {
		a.res.Code = CodeNotHolder
		return
	}
	s := m.sessions[id]
	a.releaseLock(name, id)
	if s.bound == name {
		a.end(s, EventSessionClosed)
	}
	a.res.Code = CodeOK
}

// forceRelease applies OpRelease with Force: the lock is released whoever
// holds it, every shared holder too (granting the waiters that can be
// then); the events name the admin by; an ephemeral holder bound to it is
// closed. CodeNotHolder when it is free. Result.Holders are the holds
// released, and Session and Token the first of them.
func (a *applier) forceRelease(name, by string) {
	m := a.m
	l, ok := m.locks.Get(name)
	if !ok || !l.held() {
		a.res.Code = CodeNotHolder
		return
	}
	holders := m.holdersOf(&l)
	a.by = by
	a.res.Session, a.res.Token, a.res.Holders = holders[0].Session, holders[0].Token, holders
	for _, h := range holders {
		l = a.takeFrom(name, h.Session)
		m.locks.Set(name, l)
	}
	a.grantReady(name, l)
	for _, h := range holders {
		if s := m.sessions[h.Session]; s.bound == name {
			a.end(s, EventSessionClosed)
		}
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
		a.dequeue(name, s, true)
		if s.bound == name {
			// An ephemeral session that gave up its only lock has no use.
			a.end(s, EventSessionClosed)
		}
	case has(s.held, name):
		l, _ := m.locks.Get(name)
		a.res.Mode, a.res.Token, _ = l.heldBy(id)
	}
}

// acquireAll applies OpAcquireAll: every name of c.Names for c.Session in
// this entry, each in its mode of c.Modes, or none (see the Op).
func (a *applier) acquireAll(c *Command) {
	m := a.m
	s, ok := m.sessions[c.Session]
	if !ok {
		a.res = Result{Code: CodeSessionNotFound, Session: c.Session}
		return
	}
	a.res.Session = s.id
	modeOf := func(i int) Mode {
		if c.Modes == nil {
			return Exclusive
		}
		return c.Modes[i]
	}
	fresh := 0
	for i, name := range c.Names {
		l, exists := m.locks.Get(name)
		mode := modeOf(i)
		heldMode, _, holds := l.heldBy(s.id)
		switch {
		case holds && heldMode != mode, has(s.waiting, name) && l.queuedMode(s.id) != mode:
			a.res = Result{Code: CodeModeMismatch, Session: s.id, Holder: m.holderOf(&l), Holders: m.holdersOf(&l),
				Reason: fmt.Sprintf("session %d holds or waits for lock %q in the other mode: release it first (no upgrades or downgrades)", s.id, name)}
			return
		case holds:
		case !exists || (len(l.queue) == 0 && l.admits(mode)):
			fresh++
		default:
			a.res = Result{Code: CodeLockHeld, Session: s.id, Holder: m.holderOf(&l), Holders: m.holdersOf(&l), Reason: name}
			return
		}
	}
	if fresh > 0 && (a.quota(len(s.held)+len(s.waiting)+len(s.permits)+len(s.semWaiting)+fresh-1, m.Limits().LocksPerSession,
		fmt.Sprintf("session %d would hold or wait for too many locks (locks_per_session)", s.id)) ||
		a.noSpace(uint64(fresh)*lockBytes)) {
		a.res.Session = s.id
		return
	}
	tokens := make([]uint64, len(c.Names))
	for i, name := range c.Names {
		l, _ := m.locks.Get(name)
		_, token, holds := l.heldBy(s.id)
		if !holds {
			a.grant(name, &l, s, m.clock, modeOf(i))
			m.locks.Set(name, l)
			token = a.index
		}
		tokens[i] = token
	}
	a.res.Code, a.res.Tokens, a.res.Token = CodeOK, tokens, tokens[0]
	if fresh > 0 {
		a.res.Token = a.index
	}
}
