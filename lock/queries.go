package lock

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// The read-only queries. Each returns deep copies, and each costs what it
// returns: a lookup is O(log n), a listing O(log n + k) for k results.

// AppliedIndex is the index of the last entry applied (or restored). The
// next Apply must use a greater index.
func (m *Machine) AppliedIndex() uint64 { return m.applied }

// Clock is the machine's clock: the maximum Command.Now applied, Unix ns.
func (m *Machine) Clock() int64 { return m.clock }

// NextDeadline is the earliest session deadline or end of a lock-delay
// (Unix ns on the machine's clock), and false when there is neither. The
// leader proposes OpExpire once its clock reaches it. O(1) in the sessions,
// O(locks in their lock-delay).
func (m *Machine) NextDeadline() (int64, bool) {
	d, ok := m.nextDelayEnd()
	if len(m.deadlines) == 0 {
		return d, ok
	}
	if ok && d < m.deadlines[0].deadline {
		return d, true
	}
	return m.deadlines[0].deadline, true
}

// Session returns a copy of session id, and false if it does not exist.
func (m *Machine) Session(id uint64) (SessionInfo, bool) {
	s, ok := m.sessions[id]
	if !ok {
		return SessionInfo{}, false
	}
	return s.info(), true
}

// SessionLocks returns the locks session id holds (sorted) for which keep
// (nil: all) is true, the index at which the session's locks last
// changed, and its principal; false if the session does not exist. When
// that index equals known, locks is nil and nothing is built: O(1), for a
// client that holds the list as of known already (GET
// /v1/sessions/{id}/locks with If-None-Match). Otherwise it costs O(held)
// to filter, and sorting only what keep keeps. The index is a sound
// validator across members and their restores: two answers with the same
// index, whatever member gave them and however far it had applied, list
// the same locks, since neither list changed after that index and both
// are the list as of it.
func (m *Machine) SessionLocks(id, known uint64, keep func(name string) bool) (locks []string, at uint64, principal string, ok bool) {
	s, ok := m.sessions[id]
	if !ok {
		return nil, 0, "", false
	}
	if s.locksAt != known {
		if keep == nil {
			locks = sortedKeys(s.held)
		} else {
			for name := range s.held {
				if keep(name) {
					locks = append(locks, name)
				}
			}
			slices.Sort(locks)
		}
	}
	return locks, s.locksAt, s.principal, true
}

// SessionTTL returns the TTL of session id (ns), and false if it does not
// exist. O(1): for keep-alive answers, which need nothing else.
func (m *Machine) SessionTTL(id uint64) (int64, bool) {
	s, ok := m.sessions[id]
	if !ok {
		return 0, false
	}
	return s.ttl, true
}

func (s *session) info() SessionInfo {
	si := SessionInfo{
		ID:         s.id,
		Principal:  s.principal,
		Owner:      s.owner,
		TTL:        s.ttl,
		Deadline:   s.deadline,
		Locks:      sortedKeys(s.held),
		Waiting:    sortedKeys(s.waiting),
		Bound:      s.bound,
		Permits:    sortedKeys(s.permits),
		SemWaiting: sortedKeys(s.semWaiting),
	}
	if len(s.leads)+len(s.runs) > 0 {
		si.Campaigns = append(sortedKeys(s.leads), sortedKeys(s.runs)...)
		slices.Sort(si.Campaigns)
	}
	return si
}

// PlaceState is what a session has in one queue, as Machine.PlaceState
// reads it for a waiter.
type PlaceState struct {
	SessionExists bool    // the session exists
	Queued        bool    // the session waits in the queue
	Holder        *Holder // KindLock: the lock's exclusive holder, nil when none
	Leader        *Leader // KindElection: the leader, nil when nobody leads
	// Held is the session's own hold (KindLock, any mode) or permit
	// (KindSemaphore), nil when it has none.
	Held *Holder
	// Holders counts the holders of the lock or semaphore.
	Holders int
}

// PlaceState reads the stake of p.Session in the queue p names, in
// O(log n): whether the session exists and waits in the queue, and the
// queue's holder (or leader), which may be the session itself. It copies
// no queue.
func (m *Machine) PlaceState(p Place) PlaceState {
	var ps PlaceState
	s, ok := m.sessions[p.Session]
	ps.SessionExists = ok
	switch p.Kind {
	case KindLock:
		ps.Queued = ok && has(s.waiting, p.Name)
		if l, ok := m.locks.Get(p.Name); ok {
			ps.Holder = m.holderOf(&l)
			if mode, token, held := l.heldBy(p.Session); held {
				ps.Held = &Holder{Session: p.Session, Owner: s.owner, Token: token, Mode: mode}
			}
			ps.Holders = len(l.shared)
			if l.holder != 0 {
				ps.Holders = 1
			}
		}
	case KindSemaphore:
		ps.Queued = ok && has(s.semWaiting, p.Name)
		if r, ok := m.sems.Get(p.Name); ok {
			if i := r.permitOf(p.Session); i >= 0 {
				h := r.holders[i]
				ps.Held = &Holder{Session: p.Session, Owner: s.owner, Token: h.token, Since: h.since}
			}
			ps.Holders = len(r.holders)
		}
	case KindElection:
		ps.Queued = ok && has(s.runs, p.Name)
		ps.Leader = m.leaderOf(m.election(p.Name))
	}
	return ps
}

// Lock returns a copy of lock name, and false when it is free with no
// waiters (such a lock does not exist).
func (m *Machine) Lock(name string) (LockInfo, bool) {
	l, ok := m.locks.Get(name)
	if !ok {
		return LockInfo{}, false
	}
	return m.lockInfo(name, &l), true
}

func (m *Machine) lockInfo(name string, l *lockRec) LockInfo {
	return LockInfo{Name: name, Holder: m.holderOf(l), Holders: m.holdersOf(l), Waiters: m.waitersOf(l.queue), DelayedUntil: l.delayedUntil}
}

// waitersOf describes queue q, nil when empty.
func (m *Machine) waitersOf(q []waiter) []Waiter {
	if len(q) == 0 {
		return nil
	}
	out := make([]Waiter, len(q))
	for i, w := range q {
		out[i] = Waiter{Session: w.session, Owner: m.sessions[w.session].owner, Since: w.since, Mode: w.mode}
	}
	return out
}

// Locks returns copies of the existing locks whose name starts with prefix
// (all of them for ""), sorted by name. It costs O(log n + k) for k results:
// use ListLocks to bound k.
func (m *Machine) Locks(prefix string) []LockInfo {
	out, _ := m.ListLocks(prefix, "", 0)
	return out
}

// ListLocks returns, sorted by name, copies of at most limit existing locks
// (no limit when limit <= 0) whose name starts with prefix and sorts after
// after (from the first one when after is ""), and whether more follow: a
// page of a listing, resumed by passing the last name returned as after.
// It costs O(log n + k) for k results.
func (m *Machine) ListLocks(prefix, after string, limit int) ([]LockInfo, bool) {
	var out []LockInfo
	for name, l := range m.locks.Ascend(listFrom(prefix, after)) {
		if !strings.HasPrefix(name, prefix) {
			break
		}
		if limit > 0 && len(out) == limit {
			return out, true
		}
		out = append(out, m.lockInfo(name, &l))
	}
	return out, false
}

// listFrom is the first key a listing of prefix after after may return.
func listFrom(prefix, after string) string {
	if after == "" || after < prefix {
		return prefix
	}
	return after + "\x00" // the smallest string greater than after
}

// Election returns a copy of election name, and false when nobody leads it
// (such an election does not exist; nobody can wait in it either).
func (m *Machine) Election(name string) (ElectionInfo, bool) {
	e := m.election(name)
	if e == nil {
		return ElectionInfo{}, false
	}
	return m.electionInfo(name, e), true
}

func (m *Machine) electionInfo(name string, e *electionRec) ElectionInfo {
	ei := ElectionInfo{Name: name, Leader: m.leaderOf(e)}
	if len(e.queue) > 0 {
		ei.Candidates = make([]Candidate, len(e.queue))
		for i, c := range e.queue {
			ei.Candidates[i] = Candidate{Session: c.session, Owner: m.sessions[c.session].owner, Value: c.value, Since: c.since}
		}
	}
	return ei
}

// Elections returns copies of the existing elections whose name starts with
// prefix (all of them for ""), sorted by name, in O(log n + k): use
// ListElections to bound k.
func (m *Machine) Elections(prefix string) []ElectionInfo {
	out, _ := m.ListElections(prefix, "", 0)
	return out
}

// ListElections is ListLocks for elections.
func (m *Machine) ListElections(prefix, after string, limit int) ([]ElectionInfo, bool) {
	var out []ElectionInfo
	for name, e := range m.elections.Ascend(listFrom(prefix, after)) {
		if !strings.HasPrefix(name, prefix) {
			break
		}
		if limit > 0 && len(out) == limit {
			return out, true
		}
		out = append(out, m.electionInfo(name, &e))
	}
	return out, false
}

// Members returns the published members sorted by ID.
func (m *Machine) Members() []Member {
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// WaiterCount is the number of places in lock and semaphore queues. O(1).
func (m *Machine) WaiterCount() int { return m.waiters }

// SessionCount is the number of open sessions. O(1).
func (m *Machine) SessionCount() int { return len(m.sessions) }

// LockCount is the number of locks held (a lock exists only while held).
// O(1).
func (m *Machine) LockCount() int { return m.locks.Len() }

// ElectionCount is the number of elections that have a leader (an
// election exists only while it has one). O(1).
func (m *Machine) ElectionCount() int { return m.elections.Len() }

// ListSessions returns, sorted by ID, copies of at most limit sessions
// (limit > 0) with an ID above after, whose owner label is owner (any when
// owner is "") and which belong to principal (any when anyPrincipal), and
// the cursor to resume from (0 when the listing is over): a page. Sessions
// are kept in ID order, so a page costs O(log n + what it scans); the scan
// stops after 4·limit + 1,000 sessions that do not match, so a filter
// that matches rarely gives short pages (even empty ones) with a cursor,
// never a long stall of the loop that owns the machine.
func (m *Machine) ListSessions(after uint64, limit int, owner, principal string, anyPrincipal bool) ([]SessionInfo, uint64) {
	if after == math.MaxUint64 {
		return nil, 0
	}
	var out []SessionInfo
	budget := 4*limit + 1000
	var last uint64
	for _, s := range m.byID.Ascend(sessionKey(after + 1)) {
		if len(out) == limit {
			return out, last
		}
		last = s.id
		if (owner != "" && s.owner != owner) || (!anyPrincipal && s.principal != principal) {
			if budget--; budget <= 0 {
				return out, last
			}
			continue
		}
		out = append(out, s.info())
	}
	return out, 0
}

// AcquireMustWait reports whether the OpAcquire c, applied now, could not
// be granted: c waits (Wait), names an existing session, and the lock c.Name
// is held by others or has a queue that c's session would join or keep
// (or the session is already queued). Applying c then changes at most the
// queue. The loop uses it only as a hint, to let such a join ride with the
// next entry (raftnode's deferred joins); the answer of c is still whatever
// its entry's apply says, so a wrong hint costs time, never correctness.
// O(log locks).
func (m *Machine) AcquireMustWait(c *Command) bool {
	if c.Op != OpAcquire || !c.Wait || c.Session == 0 {
		return false
	}
	if _, ok := m.sessions[c.Session]; !ok {
		return false
	}
	l, ok := m.locks.Get(c.Name)
	if !ok {
		return false
	}
	if _, _, holds := l.heldBy(c.Session); holds {
		return false
	}
	return len(l.queue) > 0 || !l.admits(c.Mode)
}

// AcquireRetry returns the result that applying the OpAcquire c would
// have now when applying it would change nothing but the clock: c's
// session holds lock c.Name in c.Mode (CodeOK with its token) or waits in
// its queue in c.Mode (CodeQueued, with the holders), and c is well
// formed and allowed. In every other case it returns false, and the
// command must go through the log. The HTTP layer answers such a retry
// (the wait of a session that joined the queue already) from a
// linearizable read instead of an entry: the same answer without a write
// on every member's disk.
func (m *Machine) AcquireRetry(c *Command) (Result, bool) {
	if c.Op != OpAcquire || c.Session == 0 || !valid(c) {
		return Result{}, false
	}
	if _, bad := m.refused(c); bad {
		return Result{}, false
	}
	if _, bad := m.denied(c); bad {
		return Result{}, false
	}
	s, ok := m.sessions[c.Session]
	if !ok {
		return Result{}, false
	}
	l, ok := m.locks.Get(c.Name)
	if !ok {
		return Result{}, false
	}
	mode, token, holds := l.heldBy(s.id)
	switch {
	case holds && mode == c.Mode:
		return Result{Code: CodeOK, Session: s.id, Token: token}, true
	case !holds && has(s.waiting, c.Name) && l.queuedMode(s.id) == c.Mode:
		return Result{Code: CodeQueued, Session: s.id, Holder: m.holderOf(&l), Holders: m.holdersOf(&l)}, true
	}
	return Result{}, false
}
