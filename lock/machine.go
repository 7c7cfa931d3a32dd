package lock

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// MaxTTL is the largest session TTL the machine accepts, in nanoseconds (24
// hours). OpOpenSession and ephemeral OpAcquire with a larger TTL answer
// CodeInvalid. Tighter bounds are the HTTP layer's business.
const MaxTTL int64 = 24 * 60 * 60 * 1_000_000_000

// MaxValueSize is the largest election value (Command.Value) the machine
// accepts, in bytes. OpCampaign and OpProclaim with a longer value answer
// CodeInvalid.
const MaxValueSize = 4096

// session is one open session. held and waiting are the names of the locks
// it holds and is queued for, leads and runs the names of the elections it
// leads and is a candidate in; pos is its position in Machine.deadlines.
type session struct {
	id       uint64
	owner    string
	ttl      int64
	deadline int64
	bound    string
	held     map[string]struct{}
	waiting  map[string]struct{}
	leads    map[string]struct{}
	runs     map[string]struct{}
	pos      int
}

func newSession(id uint64, owner string, ttl, deadline int64, bound string) *session {
	return &session{
		id:       id,
		owner:    owner,
		ttl:      ttl,
		deadline: deadline,
		bound:    bound,
		held:     make(map[string]struct{}),
		waiting:  make(map[string]struct{}),
		leads:    make(map[string]struct{}),
		runs:     make(map[string]struct{}),
	}
}

// waiter is one place in a lock's queue.
type waiter struct {
	s     *session
	since int64
}

// lockState is a lock that is held (holder != nil). Its queue is non-empty
// only while it is held: a release grants the head at once, and a lock with
// neither holder nor waiters is deleted.
type lockState struct {
	name   string
	holder *session
	token  uint64
	since  int64
	queue  []waiter
}

// candidate is one place in an election's queue.
type candidate struct {
	s     *session
	value string
	since int64
}

// election is an election with a leader (leader != nil). Its queue is
// non-empty only while it has a leader: when the leader leaves, the head
// candidate leads at once, and an election with neither is deleted.
type election struct {
	name   string
	leader *session
	value  string
	term   uint64 // index of the entry that elected the leader
	since  int64
	queue  []candidate
}

// Machine is the deterministic lock state machine (see the package doc for
// the full contract). The zero value is an empty machine ready to use, as is
// New(). It is not safe for concurrent use: raftnode's single loop goroutine
// owns it, and read methods return deep copies.
type Machine struct {
	applied   uint64
	clock     int64
	term      uint64 // term of the last clocked command (Now != 0) applied
	sessions  map[uint64]*session
	deadlines deadlineHeap // every session, min-heap on (deadline, id)
	locks     map[string]*lockState
	elections map[string]*election
	members   map[uint64]Member
}

// New returns an empty machine: applied index 0, clock 0, no sessions, locks
// or members.
func New() *Machine {
	m := &Machine{}
	m.init()
	return m
}

func (m *Machine) init() {
	if m.sessions == nil {
		m.sessions = make(map[uint64]*session)
	}
	if m.locks == nil {
		m.locks = make(map[string]*lockState)
	}
	if m.elections == nil {
		m.elections = make(map[string]*election)
	}
	if m.members == nil {
		m.members = make(map[uint64]Member)
	}
}

// Apply applies the command of the entry at index and term and returns what
// it produced. cmd is nil for an entry without a command (raft's empty entry
// at the start of a term, a configuration change): then only the applied
// index advances, and the entry does not count as the first command of its
// term.
//
// For a command, the clock first becomes max(clock, cmd.Now); then, if the
// command carries a clock (Now != 0) and term is greater than the term of the
// last such command applied, every session's
// deadline becomes max(deadline, clock+TTL). A malformed command skips both
// and changes nothing but the applied index; it answers CodeInvalid with no
// other field set. Malformed means: an unknown Op; OpOpenSession, or
// OpAcquire with Session 0, without 0 < TTL <= MaxTTL; an empty Name for
// OpAcquire, OpRelease, OpCancel, OpCampaign, OpProclaim or OpResign;
// Session 0 for OpCloseSession, OpRelease, OpCancel, OpCampaign, OpProclaim
// or OpResign; a Value longer than MaxValueSize for OpCampaign or
// OpProclaim; Member.ID 0 for OpPublish. An ephemeral session that acquires
// another lock than its own, or that campaigns, is refused the same way
// (CodeInvalid with Result.Session set, nothing changed). The
// rules of each Op are documented on the Op constants and in the package's
// testdata scripts; Result.Events lists every change, stamped with Revision =
// index and Seq = 0, 1, ...
//
// Apply never returns errors. It panics if index is not greater than
// AppliedIndex: the caller must skip entries already applied or restored
// (fencing tokens and session IDs rely on increasing indexes). cmd is not
// retained.
func (m *Machine) Apply(index, term uint64, cmd *Command) Result {
	if index <= m.applied {
		panic(fmt.Sprintf("lock: apply of index %d, not after applied index %d", index, m.applied))
	}
	m.init()
	m.applied = index
	if cmd == nil {
		return Result{Code: CodeOK}
	}
	if !valid(cmd) {
		return Result{Code: CodeInvalid}
	}
	if id, bad := m.refused(cmd); bad {
		return Result{Code: CodeInvalid, Session: id}
	}
	if cmd.Now > m.clock {
		m.clock = cmd.Now
	}
	// Only a clocked command starts the term rule: an unclocked one
	// (OpPublish, which a follower may propose) would extend deadlines from
	// the previous leader's stale clock and use up the rule.
	if term > m.term && cmd.Now != 0 {
		m.term = term
		m.extendAll()
	}
	a := &applier{m: m, index: index}
	switch cmd.Op {
	case OpTick:
		a.res.Code = CodeOK
	case OpOpenSession:
		s := a.open(cmd.Owner, cmd.TTL, "")
		a.res = Result{Code: CodeOK, Session: s.id, TTL: s.ttl, Events: a.res.Events}
	case OpKeepAlive:
		a.keepAlive(cmd.Sessions)
	case OpCloseSession:
		a.closeSession(cmd.Session)
	case OpExpire:
		a.expire()
	case OpAcquire:
		a.acquire(cmd)
	case OpRelease:
		a.release(cmd.Session, cmd.Name, cmd.Token)
	case OpCancel:
		a.cancel(cmd.Session, cmd.Name)
	case OpPublish:
		m.members[cmd.Member.ID] = cmd.Member
		a.res.Code = CodeOK
	case OpCampaign:
		a.campaign(cmd)
	case OpProclaim:
		a.proclaim(cmd.Session, cmd.Name, cmd.Token, cmd.Value)
	case OpResign:
		a.resign(cmd.Session, cmd.Name, cmd.Token)
	default:
		panic(fmt.Sprintf("lock: op %d passed validation", cmd.Op))
	}
	return a.res
}

// valid reports whether cmd is well formed. It depends on cmd alone, so an
// invalid command changes nothing.
func valid(c *Command) bool {
	ttlOK := c.TTL > 0 && c.TTL <= MaxTTL
	switch c.Op {
	case OpTick, OpExpire, OpKeepAlive:
		return true
	case OpOpenSession:
		return ttlOK
	case OpCloseSession:
		return c.Session != 0
	case OpAcquire:
		return c.Name != "" && (c.Session != 0 || ttlOK)
	case OpRelease, OpCancel, OpResign:
		return c.Name != "" && c.Session != 0
	case OpCampaign, OpProclaim:
		return c.Name != "" && c.Session != 0 && len(c.Value) <= MaxValueSize
	case OpPublish:
		return c.Member.ID != 0
	}
	return false
}

// refused reports the commands that are well formed but that an existing
// session may never make: an ephemeral session exists for its bound lock
// only, so it may not acquire another lock nor campaign. It runs before the
// clock and term rules so that, like a malformed command, the refusal
// changes nothing but the applied index.
func (m *Machine) refused(c *Command) (uint64, bool) {
	if c.Op != OpAcquire && c.Op != OpCampaign {
		return 0, false
	}
	s, ok := m.sessions[c.Session]
	if !ok || s.bound == "" || (c.Op == OpAcquire && s.bound == c.Name) {
		return 0, false
	}
	return s.id, true
}

// addSat returns a+b (b >= 0), saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// extendAll applies the term rule: every deadline becomes at least clock+TTL.
func (m *Machine) extendAll() {
	if mutated(noTermExtension) {
		return // mutant (tests only): a new leader does not push deadlines
	}
	for _, s := range m.deadlines {
		s.deadline = max(s.deadline, addSat(m.clock, s.ttl))
	}
	heap.Init(&m.deadlines)
}

// applier carries the state of one Apply call.
type applier struct {
	m     *Machine
	index uint64
	res   Result
}

func (a *applier) emit(t EventType, session uint64, name string, token uint64) {
	a.emitValue(t, session, name, token, "")
}

func (a *applier) emitValue(t EventType, session uint64, name string, token uint64, value string) {
	ev := Event{
		Revision: a.index,
		Seq:      uint32(len(a.res.Events)),
		Type:     t,
		Session:  session,
		Name:     name,
		Token:    token,
		Time:     a.m.clock,
		Value:    value,
	}
	if s, ok := a.m.sessions[session]; ok {
		ev.Owner = s.owner
	}
	a.res.Events = append(a.res.Events, ev)
}

// open creates a session whose ID is the entry's index.
func (a *applier) open(owner string, ttl int64, bound string) *session {
	m := a.m
	if _, dup := m.sessions[a.index]; dup {
		panic(fmt.Sprintf("lock: session %d already exists", a.index))
	}
	s := newSession(a.index, owner, ttl, addSat(m.clock, ttl), bound)
	m.sessions[s.id] = s
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
		}
	}
	slices.Sort(missing)
	a.res = Result{Code: CodeOK, Missing: slices.Compact(missing)}
}

func (a *applier) closeSession(id uint64) {
	s, ok := a.m.sessions[id]
	if !ok {
		a.res = Result{Code: CodeSessionNotFound, Session: id}
		return
	}
	a.end(s, EventSessionClosed)
	a.res.Code, a.res.Session = CodeOK, id
}

// expire ends every session whose deadline is at or before the clock, in
// ascending ID order. All of them first leave every queue (ascending ID,
// then lock queues by name, then candidate queues by name), so that no lock
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
	for _, s := range due {
		if mutated(noLeaseRecheckAfterWait) {
			break // mutant (tests only): dying sessions stay queued
		}
		for _, name := range sortedKeys(s.waiting) {
			a.dequeue(m.locks[name], s)
		}
		for _, name := range sortedKeys(s.runs) {
			a.withdraw(m.elections[name], s)
		}
	}
	for _, s := range due {
		a.end(s, EventSessionExpired)
	}
	a.res.Code = CodeOK
}

// end releases every lock s holds (granting each to its head waiter), removes
// s from every lock queue, ends every leadership of s (electing each
// election's head candidate) with a resigned event, or leader_expired when
// final is EventSessionExpired, withdraws s from every candidate queue, and
// deletes it; the last event is final. Each group goes in name order.
func (a *applier) end(s *session, final EventType) {
	m := a.m
	for _, name := range sortedKeys(s.held) {
		a.releaseLock(m.locks[name])
	}
	for _, name := range sortedKeys(s.waiting) {
		a.dequeue(m.locks[name], s)
	}
	left := EventResigned
	if final == EventSessionExpired {
		left = EventLeaderExpired
	}
	for _, name := range sortedKeys(s.leads) {
		a.stepDown(m.elections[name], left)
	}
	for _, name := range sortedKeys(s.runs) {
		a.withdraw(m.elections[name], s)
	}
	if s.pos >= 0 {
		heap.Remove(&m.deadlines, s.pos)
	}
	delete(m.sessions, s.id)
	a.emit(final, s.id, "", 0)
}

// grant makes s the holder of l with this entry's index as token.
func (a *applier) grant(l *lockState, s *session) {
	l.holder, l.token, l.since = s, a.index, a.m.clock
	s.held[l.name] = struct{}{}
	a.emit(EventLockGranted, s.id, l.name, l.token)
}

// releaseLock releases l from its holder and grants it to the head waiter, or
// deletes it when nobody waits.
func (a *applier) releaseLock(l *lockState) {
	h := l.holder
	if h == nil {
		panic(fmt.Sprintf("lock: release of free lock %q", l.name))
	}
	a.emit(EventLockReleased, h.id, l.name, l.token)
	delete(h.held, l.name)
	l.holder, l.token, l.since = nil, 0, 0
	if len(l.queue) == 0 {
		delete(a.m.locks, l.name)
		return
	}
	w := l.queue[0]
	l.queue[0] = waiter{}
	l.queue = l.queue[1:]
	if len(l.queue) == 0 {
		l.queue = nil
	}
	delete(w.s.waiting, l.name)
	a.grant(l, w.s)
}

// dequeue removes s from l's queue.
func (a *applier) dequeue(l *lockState, s *session) {
	i := slices.IndexFunc(l.queue, func(w waiter) bool { return w.s == s })
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d not in the queue of %q", s.id, l.name))
	}
	l.queue = slices.Delete(l.queue, i, i+1)
	if len(l.queue) == 0 {
		l.queue = nil
	}
	delete(s.waiting, l.name)
	a.emit(EventLockCancelled, s.id, l.name, 0)
	if l.holder == nil && len(l.queue) == 0 {
		delete(a.m.locks, l.name)
	}
}

func (a *applier) acquire(c *Command) {
	m := a.m
	l := m.locks[c.Name]
	var s *session
	if c.Session == 0 {
		if l != nil && !c.Wait {
			a.res = Result{Code: CodeLockHeld, Holder: l.holderCopy()}
			return
		}
		s = a.open(c.Owner, c.TTL, c.Name)
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
	switch {
	case l == nil:
		l = &lockState{name: c.Name}
		m.locks[c.Name] = l
		a.grant(l, s)
		a.res.Code, a.res.Token = CodeOK, l.token
	case l.holder == s:
		a.res.Code, a.res.Token = CodeOK, l.token
	case has(s.waiting, c.Name):
		a.res.Code, a.res.Holder = CodeQueued, l.holderCopy()
	case !c.Wait:
		a.res.Code, a.res.Holder = CodeLockHeld, l.holderCopy()
	default:
		l.queue = append(l.queue, waiter{s: s, since: m.clock})
		s.waiting[c.Name] = struct{}{}
		a.emit(EventLockQueued, s.id, c.Name, 0)
		a.res.Code, a.res.Holder = CodeQueued, l.holderCopy()
	}
}

func (a *applier) release(id uint64, name string, token uint64) {
	a.res.Session = id
	l := a.m.locks[name]
	if l != nil && l.holder != nil && mutated(releaseWithStaleToken) {
		token = l.token // mutant (tests only): any token of the holder releases
	}
	if l == nil || l.holder == nil || l.holder.id != id || l.token != token {
		a.res.Code = CodeNotHolder
		return
	}
	s := l.holder
	a.releaseLock(l)
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
	l := m.locks[name]
	switch {
	case has(s.waiting, name):
		a.dequeue(l, s)
		if s.bound == name {
			// An ephemeral session that gave up its only lock has no use.
			a.end(s, EventSessionClosed)
		}
	case l != nil && l.holder == s:
		a.res.Token = l.token
	}
}

// elect makes s the leader of e with value and this entry's index as term.
func (a *applier) elect(e *election, s *session, value string) {
	e.leader, e.value, e.term, e.since = s, value, a.index, a.m.clock
	s.leads[e.name] = struct{}{}
	a.emitValue(EventElected, s.id, e.name, e.term, value)
}

// stepDown ends the leadership of e's leader with the event left (resigned
// or leader_expired) and elects the head candidate, or deletes e with a
// no_leader event when nobody waits.
func (a *applier) stepDown(e *election, left EventType) {
	l := e.leader
	if l == nil {
		panic(fmt.Sprintf("lock: step down in election %q without leader", e.name))
	}
	a.emit(left, l.id, e.name, e.term)
	delete(l.leads, e.name)
	e.leader, e.value, e.term, e.since = nil, "", 0, 0
	if len(e.queue) == 0 {
		delete(a.m.elections, e.name)
		a.emit(EventNoLeader, 0, e.name, 0)
		return
	}
	c := e.queue[0]
	e.queue[0] = candidate{}
	e.queue = e.queue[1:]
	if len(e.queue) == 0 {
		e.queue = nil
	}
	delete(c.s.runs, e.name)
	a.elect(e, c.s, c.value)
}

// withdraw removes candidate s from e's queue.
func (a *applier) withdraw(e *election, s *session) {
	i := slices.IndexFunc(e.queue, func(c candidate) bool { return c.s == s })
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d not a candidate in %q", s.id, e.name))
	}
	e.queue = slices.Delete(e.queue, i, i+1)
	if len(e.queue) == 0 {
		e.queue = nil
	}
	delete(s.runs, e.name)
	a.emit(EventCandidateLeft, s.id, e.name, 0)
}

func (a *applier) campaign(c *Command) {
	m := a.m
	a.res.Session = c.Session
	s, ok := m.sessions[c.Session]
	if !ok {
		a.res.Code = CodeSessionNotFound
		return
	}
	e := m.elections[c.Name]
	switch {
	case e == nil:
		e = &election{name: c.Name}
		m.elections[c.Name] = e
		a.elect(e, s, c.Value)
		a.res.Code, a.res.Token = CodeOK, e.term
	case e.leader == s:
		// A retry, or a campaign with a new value by the leader: like etcd's
		// Campaign, the new value is proclaimed (no event when unchanged).
		a.proclaim(s.id, c.Name, e.term, c.Value)
	case has(s.runs, c.Name):
		// Already queued: it keeps its place; a campaign that waits (joins
		// again) takes the new value, a try changes nothing.
		if c.Wait {
			for i := range e.queue {
				if e.queue[i].s == s {
					e.queue[i].value = c.Value
				}
			}
		}
		a.res.Code = CodeQueued
	case !c.Wait:
		a.res.Code = CodeNotLeader
	default:
		e.queue = append(e.queue, candidate{s: s, value: c.Value, since: m.clock})
		s.runs[c.Name] = struct{}{}
		a.emitValue(EventCandidateJoined, s.id, c.Name, 0, c.Value)
		a.res.Code = CodeQueued
	}
	a.res.Leader = e.leaderCopy()
}

// leads returns election name if session id leads it with term, else nil.
func (m *Machine) leads(id uint64, name string, term uint64) *election {
	e := m.elections[name]
	if e == nil || e.leader.id != id || e.term != term {
		return nil
	}
	return e
}

func (a *applier) proclaim(id uint64, name string, term uint64, value string) {
	a.res.Session = id
	e := a.m.leads(id, name, term)
	if e == nil {
		a.res.Code, a.res.Leader = CodeNotLeader, a.m.elections[name].leaderCopy()
		return
	}
	if e.value != value {
		e.value = value
		a.emitValue(EventProclaimed, id, name, e.term, value)
	}
	a.res.Code, a.res.Token, a.res.Leader = CodeOK, e.term, e.leaderCopy()
}

func (a *applier) resign(id uint64, name string, term uint64) {
	m := a.m
	a.res.Session = id
	if term != 0 {
		e := m.leads(id, name, term)
		if e == nil {
			a.res.Code, a.res.Leader = CodeNotLeader, m.elections[name].leaderCopy()
			return
		}
		a.stepDown(e, EventResigned)
		a.res.Code = CodeOK
		return
	}
	s, ok := m.sessions[id]
	if !ok {
		a.res.Code = CodeSessionNotFound
		return
	}
	a.res.Code = CodeOK
	e := m.elections[name]
	switch {
	case has(s.runs, name):
		a.withdraw(e, s)
	case e != nil && e.leader == s:
		a.res.Token = e.term
	}
}

// leaderCopy returns a copy of e's leader, nil for a nil e.
func (e *election) leaderCopy() *Leader {
	if e == nil || e.leader == nil {
		return nil
	}
	return &Leader{Session: e.leader.id, Owner: e.leader.owner, Value: e.value, Term: e.term, Since: e.since}
}

func (l *lockState) holderCopy() *Holder {
	if l.holder == nil {
		return nil
	}
	return &Holder{Session: l.holder.id, Owner: l.holder.owner, Token: l.token, Since: l.since}
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

// AppliedIndex is the index of the last entry applied (or restored). The
// next Apply must use a greater index.
func (m *Machine) AppliedIndex() uint64 { return m.applied }

// Clock is the machine's clock: the maximum Command.Now applied, Unix ns.
func (m *Machine) Clock() int64 { return m.clock }

// NextDeadline is the earliest session deadline (Unix ns on the machine's
// clock), and false when there are no sessions. The leader proposes OpExpire
// once its clock reaches it. O(1).
func (m *Machine) NextDeadline() (int64, bool) {
	if len(m.deadlines) == 0 {
		return 0, false
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

func (s *session) info() SessionInfo {
	si := SessionInfo{
		ID:       s.id,
		Owner:    s.owner,
		TTL:      s.ttl,
		Deadline: s.deadline,
		Locks:    sortedKeys(s.held),
		Waiting:  sortedKeys(s.waiting),
		Bound:    s.bound,
	}
	if len(s.leads)+len(s.runs) > 0 {
		si.Campaigns = append(sortedKeys(s.leads), sortedKeys(s.runs)...)
		slices.Sort(si.Campaigns)
	}
	return si
}

// Lock returns a copy of lock name, and false when it is free with no
// waiters (such a lock does not exist).
func (m *Machine) Lock(name string) (LockInfo, bool) {
	l, ok := m.locks[name]
	if !ok {
		return LockInfo{}, false
	}
	return l.info(), true
}

func (l *lockState) info() LockInfo {
	li := LockInfo{Name: l.name, Holder: l.holderCopy()}
	if len(l.queue) > 0 {
		li.Waiters = make([]Waiter, len(l.queue))
		for i, w := range l.queue {
			li.Waiters[i] = Waiter{Session: w.s.id, Owner: w.s.owner, Since: w.since}
		}
	}
	return li
}

// Locks returns copies of the existing locks whose name starts with prefix
// (all of them for ""), sorted by name. It scans every lock: O(n + k log k).
func (m *Machine) Locks(prefix string) []LockInfo {
	var names []string
	for name := range m.locks {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make([]LockInfo, len(names))
	for i, name := range names {
		out[i] = m.locks[name].info()
	}
	return out
}

// Election returns a copy of election name, and false when nobody leads it
// (such an election does not exist; nobody can wait in it either).
func (m *Machine) Election(name string) (ElectionInfo, bool) {
	e, ok := m.elections[name]
	if !ok {
		return ElectionInfo{}, false
	}
	return e.info(), true
}

func (e *election) info() ElectionInfo {
	ei := ElectionInfo{Name: e.name, Leader: e.leaderCopy()}
	if len(e.queue) > 0 {
		ei.Candidates = make([]Candidate, len(e.queue))
		for i, c := range e.queue {
			ei.Candidates[i] = Candidate{Session: c.s.id, Owner: c.s.owner, Value: c.value, Since: c.since}
		}
	}
	return ei
}

// Elections returns copies of the existing elections whose name starts with
// prefix (all of them for ""), sorted by name. It scans every election:
// O(n + k log k).
func (m *Machine) Elections(prefix string) []ElectionInfo {
	var names []string
	for name := range m.elections {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := make([]ElectionInfo, len(names))
	for i, name := range names {
		out[i] = m.elections[name].info()
	}
	return out
}

// Members returns the published members sorted by ID.
func (m *Machine) Members() []Member {
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
