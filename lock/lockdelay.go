package lock

import (
	"sort"
	"time"
)

// Lock-delay (Chubby's and Consul's idea, for resources that cannot check
// fencing tokens): a session opened with a LockDelay that *expires* holding
// a lock leaves that lock held by nobody until the delay has passed on the
// log's clock, so that the expired holder, which may still be writing
// (paused, cut off), has time to notice before anyone else writes. Its
// waiters keep their places; a try meanwhile answers CodeLockHeld with no
// holder. The leader proposes OpExpire when the delay ends (NextDeadline
// includes it), and that entry grants the waiters at the head, or drops the
// lock when nobody waits. A shared hold is released at once. A clean release or close grants at once, as always.

// delayLock takes lock name from its exclusive holder id, which expired
// with a lock-delay of delay: a lock_released event, and nobody holds the
// lock until clock + delay. (A shared hold is released as usual: the
// lock-delay protects a resource from a late writer.)
func (a *applier) delayLock(name string, id uint64, delay int64) {
	m := a.m
	l := a.takeFrom(name, id)
	l.delayedUntil = addSat(m.clock, delay)
	m.delays[name] = l.delayedUntil
	m.locks.Set(name, l)
}

// endDelays ends the lock-delays due at the clock, in name order: each lock
// goes to its head waiter (token = this index), or is dropped when nobody
// waits.
func (a *applier) endDelays() {
	m := a.m
	var due []string
	for name, until := range m.delays {
		if until <= m.clock {
			due = append(due, name)
		}
	}
	sort.Strings(due)
	for _, name := range due {
		delete(m.delays, name)
		l, _ := m.locks.Get(name)
		l.delayedUntil = 0
		a.grantReady(name, l)
	}
}

// nextDelayEnd is the earliest end of a lock-delay, and false when no lock
// is in one.
func (m *Machine) nextDelayEnd() (int64, bool) {
	var first int64
	ok := false
	for _, until := range m.delays {
		if !ok || until < first {
			first, ok = until, true
		}
	}
	return first, ok
}

// delayReason says why a lock in its lock-delay is held by nobody.
func delayReason(until int64) string {
	return "in its lock-delay until " + time.Unix(0, until).UTC().Format(time.RFC3339Nano) + " (its holder expired)"
}
