package lock

import (
	"container/heap"
	"fmt"
	"slices"
	"sort"
)

// session is one open session. held and waiting are the names of the locks
// it holds and is queued for, leads and runs the names of the elections it
// leads and is a candidate in; pos is its position in Machine.deadlines.
//
// Snapshot captures read id, owner, ttl, bound, requestID, principal and
// lockDelay from other goroutines (see sessionRec): they never change once
// the Apply that opened the session returns. Its deadline does change: the
// machine records every new deadline in Machine.slots too (slot).
type session struct {
	id        uint64
	owner     string
	ttl       int64
	deadline  int64
	bound     string
	requestID string // the client request ID that opened it ("" if none)
	principal string // the user that opened it ("" when anonymous)
	lockDelay int64  // see Command.LockDelay
	held      map[string]struct{}
	// locksAt is the index of the entry that last changed held (a grant
	// or a release), or an index at which held was already what it is
	// (the snapshot this machine was restored from; 0 for a session that
	// never held a lock). Not in snapshots: members restored at different
	// indexes answer different values for the same held, which only
	// costs a client one full answer (see Machine.SessionLocks).
	locksAt uint64
	waiting map[string]struct{}
	leads   map[string]struct{}
	runs    map[string]struct{}
	// permits and semWaiting are the semaphores it holds a permit of and
	// is queued for (semaphores.go); nil until it uses one.
	permits    map[string]struct{}
	semWaiting map[string]struct{}
	pos        int
	slot       int // its record in Machine.slots
}

func newSession(id uint64, owner string, ttl, deadline int64, bound, requestID string) *session {
	return &session{
		id:        id,
		owner:     owner,
		ttl:       ttl,
		deadline:  deadline,
		bound:     bound,
		requestID: requestID,
		held:      make(map[string]struct{}),
		waiting:   make(map[string]struct{}),
		leads:     make(map[string]struct{}),
		runs:      make(map[string]struct{}),
	}
}

// extendAll applies the term rule: every deadline becomes at least clock+TTL.
func (m *Machine) extendAll() {
	if mutated(noTermExtension) {
		return
	}
	for _, s := range m.deadlines {
		if d := max(s.deadline, addSat(m.clock, s.ttl)); d != s.deadline {
			s.deadline = d
			m.slots.update(s)
		}
	}
	heap.Init(&m.deadlines)
}

// openSession applies OpOpenSession: a new session, unless a session opened
// by the same client request ID still lives (a retry): then that one.
func (a *applier) openSession(c *Command) {
	if c.RequestID != "" {
		if id, ok := a.m.openReqs[c.RequestID]; ok {
			s := a.m.sessions[id]
			a.res = Result{Code: CodeOK, Session: s.id, TTL: s.ttl}
			return
		}
	}
	if a.sessionQuota(c.Principal) {
		return
	}
	s := a.open(c.Owner, c.TTL, "", c.RequestID, c.Principal)
	s.lockDelay = c.LockDelay
	if s.lockDelay != 0 {
		a.m.delayedSessions++
	}
	a.res = Result{Code: CodeOK, Session: s.id, TTL: s.ttl, Events: a.res.Events}
}

// open creates a session whose ID is the entry's index, belonging to
// principal.
func (a *applier) open(owner string, ttl int64, bound, requestID, principal string) *session {
	m := a.m
	if _, dup := m.sessions[a.index]; dup {
		panic(fmt.Sprintf("lock: session %d already exists", a.index))
	}
	s := newSession(a.index, owner, ttl, addSat(m.clock, ttl), bound, requestID)
	s.principal = principal
	if principal != "" {
		m.byPrincipal[principal]++
	}
	m.sessions[s.id] = s
	m.byID.Set(sessionKey(s.id), s)
	m.slots.add(s)
	if requestID != "" {
		m.openReqs[requestID] = s.id
	}
	heap.Push(&m.deadlines, s)
	a.emit(EventSessionOpened, s.id, "", 0)
	return s
}

func (a *applier) keepAlive(ids []uint64) {
	m := a.m
	var missing []uint64
	for _, id := range ids {
		s, ok := m.sessions[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if d := addSat(m.clock, s.ttl); d > s.deadline {
			s.deadline = d
			heap.Fix(&m.deadlines, s.pos)
			m.slots.update(s)
		}
	}
	slices.Sort(missing)
	a.res = Result{Code: CodeOK, Missing: slices.Compact(missing)}
}

// closeSession applies OpCloseSession by principal: when that is not the
// session's own principal (an admin), its events name the admin in By.
func (a *applier) closeSession(id uint64, principal string) {
	s, ok := a.m.sessions[id]
	if !ok {
		a.res = Result{Code: CodeSessionNotFound, Session: id}
		return
	}
	if principal != s.principal {
		a.by = principal
	}
	a.end(s, EventSessionClosed)
	a.res.Code, a.res.Session = CodeOK, id
}

// expire ends every session whose deadline is at or before the clock, in
// ascending ID order. All of them first leave every queue (ascending ID,
// then lock queues by name, semaphore queues by name, candidate queues by
// name; the waiters their leaving lets through are granted after that, by
// lock name, then semaphore name), so that no lock
// released by one is granted to another that expires in the same entry, and
// no leadership passes to a dying candidate: each lock is granted and each
// election won at most once per entry, and a dying session never sees a
// grant or an election.
func (a *applier) expire() {
	m := a.m
	var due []*session
	for len(m.deadlines) > 0 && m.deadlines[0].deadline <= m.clock {
		due = append(due, heap.Pop(&m.deadlines).(*session))
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	left := map[string]struct{}{} // locks whose queues lost a waiter
	leftSem := map[string]struct{}{}
	for _, s := range due {
		if mutated(noLeaseRecheckAfterWait) {
			break
		}
		for _, name := range sortedKeys(s.waiting) {
			a.dequeue(name, s, false)
			left[name] = struct{}{}
		}
		for _, name := range sortedKeys(s.semWaiting) {
			a.semDequeue(name, s, false)
			leftSem[name] = struct{}{}
		}
		for _, name := range sortedKeys(s.runs) {
			a.withdraw(name, s)
		}
	}
	// A shared waiter behind a dying exclusive one may hold now. The
	// dying sessions are out of every queue: none of them is granted.
	for _, name := range sortedKeys(left) {
		if l, ok := a.m.locks.Get(name); ok {
			a.grantReady(name, l)
		}
	}
	for _, name := range sortedKeys(leftSem) {
		if r, ok := a.m.sems.Get(name); ok {
			a.grantPermits(name, r)
		}
	}
	for _, s := range due {
		a.end(s, EventSessionExpired)
	}
	a.endDelays()
	a.res.Code = CodeOK
}

// end releases every lock s holds (granting each to its head waiters),
// removes s from every lock queue, gives back its semaphore permits and
// leaves the semaphore queues (granting likewise), ends every leadership of s (electing each
// election's head candidate) with a resigned event, or leader_expired when
// final is EventSessionExpired, withdraws s from every candidate queue, and
// deletes it; the last event is final. Each group goes in name order.
func (a *applier) end(s *session, final EventType) {
	m := a.m
	for _, name := range sortedKeys(s.held) {
		if l, _ := m.locks.Get(name); final == EventSessionExpired && s.lockDelay > 0 && l.holder == s.id {
			a.delayLock(name, s.id, s.lockDelay)
			continue
		}
		a.releaseLock(name, s.id)
	}
	for _, name := range sortedKeys(s.waiting) {
		a.dequeue(name, s, true)
	}
	for _, name := range sortedKeys(s.permits) {
		a.releasePermit(name, s.id)
	}
	for _, name := range sortedKeys(s.semWaiting) {
		a.semDequeue(name, s, true)
	}
	left := EventResigned
	if final == EventSessionExpired {
		left = EventLeaderExpired
	}
	for _, name := range sortedKeys(s.leads) {
		a.stepDown(name, left)
	}
	for _, name := range sortedKeys(s.runs) {
		a.withdraw(name, s)
	}
	if s.pos >= 0 {
		heap.Remove(&m.deadlines, s.pos)
	}
	delete(m.sessions, s.id)
	m.byID.Delete(sessionKey(s.id))
	m.slots.remove(s)
	if s.lockDelay != 0 {
		m.delayedSessions--
	}
	if s.principal != "" {
		if m.byPrincipal[s.principal]--; m.byPrincipal[s.principal] <= 0 {
			delete(m.byPrincipal, s.principal)
		}
	}
	if s.requestID != "" {
		delete(m.openReqs, s.requestID)
	}
	a.emit(final, s.id, "", 0)
}

func has(set map[string]struct{}, k string) bool {
	_, ok := set[k]
	return ok
}

func sortedKeys(set map[string]struct{}) []string {
	if len(set) == 0 {
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// deadlineHeap is a min-heap of sessions on (deadline, id); each session
// knows its position so that renewals and closes are O(log n).
type deadlineHeap []*session

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].id < h[j].id
}
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *deadlineHeap) Push(x any) {
	s := x.(*session)
	s.pos = len(*h)
	*h = append(*h, s)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.pos = -1
	return s
}

// sessionKey is the key of session id in Machine.byID: fixed-width hex,
// so that keys sort as IDs do.
func sessionKey(id uint64) string { return fmt.Sprintf("%016x", id) }

// sessionSlots records every session for snapshot captures (sessionRec:
// the session and its deadline by value) in the slots of fixed-size
// chunks, copy-on-write: a capture takes the chunks as they are in O(1)
// (capture), and the machine copies a chunk before its first write to it
// after a capture, and the list of chunks likewise (32 KiB at a million
// sessions, once per capture). Updates are O(1). A session keeps its slot
// for life (session.slot); the slots of ended sessions are reused. The
// zero value is empty and ready to use.
type sessionSlots struct {
	chunks []*slotChunk
	free   []int32 // slots of ended sessions
	next   int     // the next slot never used
	// gen is the current generation: a chunk of an older one is shared
	// with a capture; chunksGen is the generation of chunks itself.
	gen, chunksGen uint64
}

// slotChunkSize is the number of slots in a chunk: a chunk is 6 KiB, what
// the first write after a capture copies.
const slotChunkSize = 256

type slotChunk struct {
	gen  uint64 // written only in this generation (see sessionSlots)
	recs [slotChunkSize]sessionRec
}

// add gives s a slot and records it.
func (t *sessionSlots) add(s *session) {
	if n := len(t.free); n > 0 {
		s.slot = int(t.free[n-1])
		t.free = t.free[:n-1]
	} else {
		s.slot = t.next
		t.next++
	}
	t.update(s)
}

// update records the current deadline of s.
func (t *sessionSlots) update(s *session) {
	t.set(s.slot, sessionRec{id: s.id, s: s, deadline: s.deadline})
}

// remove empties the slot of s, for a later session.
func (t *sessionSlots) remove(s *session) {
	t.set(s.slot, sessionRec{})
	t.free = append(t.free, int32(s.slot))
}

func (t *sessionSlots) set(slot int, r sessionRec) {
	if t.chunksGen != t.gen {
		t.chunks = slices.Clone(t.chunks)
		t.chunksGen = t.gen
	}
	i := slot / slotChunkSize
	if i == len(t.chunks) {
		t.chunks = append(t.chunks, &slotChunk{gen: t.gen})
	}
	c := t.chunks[i]
	if c.gen != t.gen {
		c = &slotChunk{gen: t.gen, recs: c.recs}
		t.chunks[i] = c
	}
	c.recs[slot%slotChunkSize] = r
}

// capture returns the chunks as they are, which the machine never writes
// again: they may be read on any goroutine.
func (t *sessionSlots) capture() []*slotChunk {
	t.gen++
	return t.chunks
}
