package raftnode

// The invariants the deterministic simulation checks after every step of
// every node (see sim_test.go).

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
)

// simChecker holds the cluster's committed log as the nodes report it and
// a reference state machine that applies it.
type simChecker struct {
	s       *sim
	clog    []*raftpb.Entry // clog[i-1] is the committed entry at index i
	ref     *lock.Machine
	refHash []uint64            // refHash[i-1]: hash of the reference state after index i
	leaders map[uint64]uint64   // term → the node that led it
	pending map[uint64][]simAck // acknowledged writes not yet committed, by index

	// Session deadlines computed from the log, independently of the
	// machine: a session may not expire before bound (log clock, ns).
	clock    int64
	term     uint64 // term of the last clocked command
	sessions map[uint64]*chkSession
	// realBound: a session may not expire before this simulated time (µs):
	// the send time of its last acknowledged renewal (or open) plus its
	// TTL at the fastest clock rate, whatever the leaders' wall clocks say.
	realBound map[uint64]int64
	locks     map[string]*chkQueue
	sems      map[string]*chkQueue
	elects    map[string]*chkQueue

	// The configuration as the committed log makes it (see
	// applyConfChange): confs[i] holds from confs[i].index on.
	confs []simConf
	// Membership (sim_membership_test.go): the highest member ID ever
	// used, and the index at which each removed member's removal was
	// committed (removed: their IDs, ascending).
	maxID     uint64
	removedAt map[uint64]uint64
	removed   []uint64
}

// simConf is a configuration of the cluster from index on: its voters and
// learners, ascending.
type simConf struct {
	index            uint64
	voters, learners []uint64
}

type chkSession struct {
	ttl, bound int64
}

// chkQueue is a lock, a semaphore or an election as its events tell it.
type chkQueue struct {
	holder uint64 // the exclusive holder (the leader); 0 = none
	token  uint64 // its token (term)
	// shared are a lock's shared holders, or a semaphore's permit
	// holders, in grant order.
	shared []chkHold
	last   uint64 // the last token granted
	// lastExcl: the last token was an exclusive grant's (or a term),
	// which no other grant may share.
	lastExcl bool
	queue    []chkWaiter
	limit    uint32 // a semaphore's limit (0: not known)
}

type chkHold struct{ session, token uint64 }

type chkWaiter struct {
	session uint64
	shared  bool // a lock's shared waiter
}

// holds reports whether session id holds q.
func (q *chkQueue) holds(id uint64) bool {
	return q.holder == id || slices.ContainsFunc(q.shared, func(h chkHold) bool { return h.session == id })
}

// queued returns the place of session id in q's queue, -1 if none.
func (q *chkQueue) queued(id uint64) int {
	return slices.IndexFunc(q.queue, func(w chkWaiter) bool { return w.session == id })
}

// sessions lists the sessions of q's shared (permit) holders.
func (q *chkQueue) sessions() []uint64 {
	var out []uint64
	for _, h := range q.shared {
		out = append(out, h.session)
	}
	return out
}

// waiting lists the sessions of q's queue.
func (q *chkQueue) waiting() []uint64 {
	var out []uint64
	for _, w := range q.queue {
		out = append(out, w.session)
	}
	return out
}

type simAck struct {
	index uint64
	cmd   lock.Command
}

func newSimChecker(s *sim) *simChecker {
	return &simChecker{
		s:         s,
		ref:       lock.New(),
		leaders:   map[uint64]uint64{},
		pending:   map[uint64][]simAck{},
		sessions:  map[uint64]*chkSession{},
		realBound: map[uint64]int64{},
		locks:     map[string]*chkQueue{},
		sems:      map[string]*chkQueue{},
		elects:    map[string]*chkQueue{},
		confs:     []simConf{{}},
		maxID:     uint64(len(s.peers)),
		removedAt: map[uint64]uint64{},
	}
}

// afterActivation runs every check after a step of node sn, then delivers
// the answers it gave.
func (s *sim) afterActivation(sn *simNode) {
	if s.failure != nil || sn.n == nil {
		return
	}
	s.chk.node(sn)
	if s.failure != nil {
		return
	}
	s.pollRequests(sn)
	s.checkWaits(sn)
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// renewed records that a renewal (or the open) of session id, sent at
// simulated time sent (µs), was acknowledged: the cluster may not expire
// the session before sent + ttl (µs) as the fastest node's monotonic clock
// measures it. A leader measures a TTL from a stamp it takes after the
// request was sent, on its monotonic clock; a new leader first extends
// every session by a whole TTL from its own first stamp. Wall clock steps
// must change nothing of it.
func (c *simChecker) renewed(id uint64, sent, ttl int64) {
	bound := sent + ttl*1_000_000/simMaxRatePPM
	c.realBound[id] = max(c.realBound[id], bound)
}

// leads records that node id leads term t, and fails the run if another
// node led it.
func (c *simChecker) leads(id, t uint64) {
	if l, ok := c.leaders[t]; ok && l != id {
		c.s.fail("one-leader-per-term", "nodes %d and %d both lead term %d", l, id, t)
		return
	}
	if _, ok := c.leaders[t]; !ok {
		c.s.stats.leaderTerms++
	}
	c.leaders[t] = id
}

func (c *simChecker) node(sn *simNode) {
	s := c.s
	// At most one leader per term.
	st := sn.n.rn.BasicStatus()
	leader := st.RaftState == raft.StateLeader
	if leader {
		c.leads(sn.id, st.GetTerm())
		if s.failure != nil {
			return
		}
	}
	// The committed prefixes agree: every entry this node saved as
	// committed equals the cluster's.
	commit := sn.disk.hs.GetCommit()
	for i := max(sn.chkCommit, sn.disk.stale) + 1; i <= commit && s.failure == nil; i++ {
		e := sn.disk.entry(i)
		switch {
		case e == nil: // not on this node's disk
		case i <= uint64(len(c.clog)):
			if ce := c.clog[i-1]; ce.GetTerm() != e.GetTerm() || ce.GetType() != e.GetType() || !bytes.Equal(ce.GetData(), e.GetData()) {
				s.fail("committed-prefix", "node %d committed entry %d term %d, the cluster committed term %d there", sn.id, i, e.GetTerm(), ce.GetTerm())
			}
		case i == uint64(len(c.clog))+1:
			c.commit(e)
		default:
			s.fail("committed-prefix", "node %d committed entry %d, but the cluster's log ends at %d", sn.id, i, len(c.clog))
		}
	}
	if s.failure != nil {
		return
	}
	sn.chkCommit = max(sn.chkCommit, commit)
	// Nodes at the same applied index hold identical state.
	if a := sn.n.applied; a != sn.chkApplied && a > 0 {
		sn.chkApplied = a
		if a > uint64(len(c.refHash)) {
			s.fail("state", "node %d applied index %d, beyond the committed log (%d)", sn.id, a, len(c.clog))
			return
		}
		if hashBytes(sn.n.machine.Snapshot()) != c.refHash[a-1] {
			s.fail("state", "node %d's state machine at index %d differs from the reference's", sn.id, a)
			return
		}
		// And the same configuration.
		want := c.confAt(a)
		voters, learners := slices.Sorted(slices.Values(sn.n.confState.GetVoters())), slices.Sorted(slices.Values(sn.n.confState.GetLearners()))
		if !slices.Equal(voters, want.voters) || !slices.Equal(learners, want.learners) {
			s.fail("configuration", "node %d at index %d has voters %v and learners %v, the committed log says voters %v and learners %v (from index %d)",
				sn.id, a, voters, learners, want.voters, want.learners, want.index)
			return
		}
		if s.opt.membership {
			c.removedGone(sn, leader)
		}
	}
	if s.opt.membership && s.failure == nil {
		c.memberChecks(sn, st, leader)
	}
}

// commit appends the next committed entry, applies it to the reference
// machine, and checks what it did.
func (c *simChecker) commit(e *raftpb.Entry) {
	s := c.s
	c.clog = append(c.clog, e)
	idx, term := e.GetIndex(), e.GetTerm()
	if idx != uint64(len(c.clog)) {
		s.fail("committed-prefix", "entry at position %d has index %d", len(c.clog), idx)
		return
	}
	var cmd *lock.Command
	if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
		var err error
		if _, _, cmd, err = decodeEnvelope(e.GetData()); err != nil {
			s.fail("committed-entry", "entry %d: %v", idx, err)
			return
		}
	}
	var res lock.Result
	if e.GetType() == raftpb.EntryConfChange {
		if cmd, res = c.applyConfChange(e); s.failure != nil {
			return
		}
	} else {
		res = c.ref.Apply(idx, term, cmd)
	}
	if s.opt.trace != nil && cmd != nil {
		s.opt.trace(fmt.Sprintf("commit %d term %d: %+v -> %v token %d events %+v", idx, term, *cmd, res.Code, res.Token, res.Events))
	}
	c.refHash = append(c.refHash, hashBytes(c.ref.Snapshot()))
	if cmd != nil && res.Code != lock.CodeInvalid {
		c.clock = max(c.clock, cmd.Now)
		if cmd.Now != 0 && term > c.term {
			// The first clocked command of a term: no session of the old
			// term may expire before this clock + its TTL.
			c.term = term
			for _, cs := range c.sessions {
				cs.bound = max(cs.bound, c.clock+cs.ttl)
			}
		}
		if cmd.Op == lock.OpKeepAlive {
			for _, id := range cmd.Sessions {
				if cs := c.sessions[id]; cs != nil {
					cs.bound = max(cs.bound, c.clock+cs.ttl)
				}
			}
		}
	}
	c.events(idx, cmd, res.Events)
	c.matchState(idx)
	for _, a := range c.pending[idx] {
		c.verifyAck(a)
	}
	delete(c.pending, idx)
}

func (c *simChecker) queue(m map[string]*chkQueue, name string) *chkQueue {
	q := m[name]
	if q == nil {
		q = &chkQueue{}
		m[name] = q
	}
	return q
}

// namespaceOf is the namespace of the name of an event of type t: "lock",
// "semaphore" or "election".
func namespaceOf(t lock.EventType) string {
	switch t {
	case lock.EventElected, lock.EventResigned, lock.EventLeaderExpired, lock.EventProclaimed,
		lock.EventNoLeader, lock.EventCandidateJoined, lock.EventCandidateLeft:
		return "election"
	case lock.EventPermitGranted, lock.EventPermitReleased, lock.EventPermitQueued, lock.EventPermitCancelled:
		return "semaphore"
	}
	return "lock"
}

// chkKind is the namespace of the name of an event of type t, and the
// checker's map of it.
func (c *simChecker) chkKind(t lock.EventType) (string, map[string]*chkQueue) {
	switch ns := namespaceOf(t); ns {
	case "election":
		return ns, c.elects
	case "semaphore":
		return ns, c.sems
	default:
		return ns, c.locks
	}
}

// events checks one entry's events: fencing tokens (terms) are the entry's
// index and strictly increase per name (shared holds and permits granted
// in one entry share it); a lock has one exclusive holder or shared
// holders, never both, and an election one leader; a semaphore has at
// most its limit of permit holders, one permit per session; grants follow
// the queue's FIFO order; after the entry nobody waits behind a free lock
// or permit, nor a candidate in an election nobody leads; a session never
// expires before its bound and never receives a grant in the entry that
// expires it.
//
// The reference machine applies every committed entry and every node's
// state equals it at every index the node applies (node), so these hold
// of every node's state after every apply.
func (c *simChecker) events(idx uint64, cmd *lock.Command, evs []lock.Event) {
	s := c.s
	var granted []uint64
	for _, ev := range evs {
		if s.failure != nil {
			return
		}
		switch ev.Type {
		case lock.EventSessionOpened:
			ttl := int64(0)
			if cmd != nil {
				ttl = cmd.TTL
			}
			c.sessions[ev.Session] = &chkSession{ttl: ttl, bound: c.clock + ttl}
		case lock.EventSessionClosed:
			delete(c.sessions, ev.Session)
		case lock.EventSessionExpired:
			s.stats.expiries++
			if cs := c.sessions[ev.Session]; cs != nil && c.clock < cs.bound {
				s.fail("session-expiry", "session %d expired at entry %d at log time %d, %v before its last renewal or the new term's first command + TTL (%d)",
					ev.Session, idx, c.clock, time.Duration(cs.bound-c.clock), cs.bound)
				return
			}
			if b, ok := c.realBound[ev.Session]; ok && s.now < b {
				s.fail("session-expiry-real-time", "session %d expired at entry %d at simulated time %.6fs, %v before the send time of its last acknowledged renewal + its TTL at the fastest clock rate",
					ev.Session, idx, float64(s.now)/float64(simSec), time.Duration(b-s.now)*time.Microsecond)
				return
			}
			delete(c.realBound, ev.Session)
			if slices.Contains(granted, ev.Session) {
				s.fail("grant-to-dying", "entry %d granted a lock, a permit or an election to session %d and expired it", idx, ev.Session)
				return
			}
			delete(c.sessions, ev.Session)
		case lock.EventLockGranted, lock.EventElected, lock.EventPermitGranted:
			c.grant(idx, cmd, ev)
			granted = append(granted, ev.Session)
		case lock.EventLockReleased, lock.EventPermitReleased, lock.EventResigned, lock.EventLeaderExpired, lock.EventProclaimed:
			_, m := c.chkKind(ev.Type)
			q := c.queue(m, ev.Name)
			if ev.Type == lock.EventPermitReleased || ev.Type == lock.EventLockReleased && ev.Mode == lock.Shared {
				i := slices.IndexFunc(q.shared, func(h chkHold) bool { return h.session == ev.Session })
				if i < 0 || q.shared[i].token != ev.Token {
					s.fail("events", "entry %d: %v of %q by session %d token %d, but the shared holders (permit holders) are %+v", idx, ev.Type, ev.Name, ev.Session, ev.Token, q.shared)
					return
				}
				q.shared = slices.Delete(q.shared, i, i+1)
				continue
			}
			if q.holder != ev.Session || q.token != ev.Token {
				s.fail("events", "entry %d: %v of %q by session %d token %d, but the holder is session %d with token %d", idx, ev.Type, ev.Name, ev.Session, ev.Token, q.holder, q.token)
			}
			if ev.Type != lock.EventProclaimed {
				q.holder, q.token = 0, 0
			}
		case lock.EventNoLeader:
			if q := c.queue(c.elects, ev.Name); q.holder != 0 || len(q.queue) != 0 {
				s.fail("events", "entry %d: election %q has no leader, but session %d leads and %v wait", idx, ev.Name, q.holder, q.waiting())
			}
		case lock.EventLockQueued, lock.EventCandidateJoined, lock.EventPermitQueued:
			_, m := c.chkKind(ev.Type)
			q := c.queue(m, ev.Name)
			if q.holds(ev.Session) || q.queued(ev.Session) >= 0 {
				s.fail("fifo", "entry %d: session %d queued for %q a second time (holder %d, shared holders %v, queue %v)", idx, ev.Session, ev.Name, q.holder, q.sessions(), q.waiting())
			}
			if q.holder == 0 && len(q.shared) == 0 {
				s.fail("fifo", "entry %d: session %d queued for %q, which nobody holds", idx, ev.Session, ev.Name)
			}
			if ev.Type == lock.EventPermitQueued {
				s.stats.semWaits++
			}
			q.queue = append(q.queue, chkWaiter{session: ev.Session, shared: ev.Type == lock.EventLockQueued && ev.Mode == lock.Shared})
		case lock.EventLockCancelled, lock.EventCandidateLeft, lock.EventPermitCancelled:
			_, m := c.chkKind(ev.Type)
			q := c.queue(m, ev.Name)
			i := q.queued(ev.Session)
			if i < 0 {
				s.fail("fifo", "entry %d: session %d left the queue of %q, which it was not in (%v)", idx, ev.Session, ev.Name, q.waiting())
				return
			}
			q.queue = slices.Delete(q.queue, i, i+1)
		}
	}
	// Between entries: nobody waits for what is free.
	for i, ev := range evs {
		if ev.Name == "" || s.failure != nil || slices.ContainsFunc(evs[:i], func(e lock.Event) bool { return e.Name == ev.Name && namespaceOf(e.Type) == namespaceOf(ev.Type) }) {
			continue
		}
		what, m := c.chkKind(ev.Type)
		c.settled(idx, what, ev.Name, m[ev.Name])
	}
}

// grant checks a grant (lock_granted, permit_granted, elected) of entry
// idx, made by cmd.
func (c *simChecker) grant(idx uint64, cmd *lock.Command, ev lock.Event) {
	s := c.s
	what, m := c.chkKind(ev.Type)
	q := c.queue(m, ev.Name)
	sem := ev.Type == lock.EventPermitGranted
	shared := sem || ev.Type == lock.EventLockGranted && ev.Mode == lock.Shared
	switch {
	case ev.Type == lock.EventElected:
		s.stats.elected++
	case sem:
		s.stats.permits++
		if q.holder == 0 && len(q.shared) == 0 && len(q.queue) == 0 && cmd != nil && cmd.Op == lock.OpSemAcquire {
			// A new semaphore: its first acquirer sets the limit.
			q.limit = cmd.Limit
		}
	default:
		s.stats.grants++
		if shared {
			s.stats.sharedGrants++
			if len(q.shared) > 0 {
				s.stats.sharedTogether++
			}
		}
	}
	mode := "exclusively"
	if shared {
		mode = "shared"
	}
	if sem {
		mode = "a permit"
	}
	switch {
	case ev.Token != idx:
		s.fail("fencing-token", "%s %q granted at entry %d with token %d", what, ev.Name, idx, ev.Token)
	case ev.Token < q.last || ev.Token == q.last && (!shared || q.lastExcl):
		s.fail("fencing-token", "%s %q granted (%s) token %d to session %d at entry %d after token %d: reused or not increasing", what, ev.Name, mode, ev.Token, ev.Session, idx, q.last)
	case q.holds(ev.Session):
		s.fail("exclusion", "%s %q granted (%s) to session %d at entry %d, which holds it already", what, ev.Name, mode, ev.Session, idx)
	case q.holder != 0:
		s.fail("exclusion", "%s %q granted (%s) to session %d at entry %d while session %d holds it", what, ev.Name, mode, ev.Session, idx, q.holder)
	case !shared && len(q.shared) > 0:
		s.fail("exclusion", "%s %q granted exclusively to session %d at entry %d while sessions %v hold it shared", what, ev.Name, ev.Session, idx, q.sessions())
	case sem && q.limit > 0 && len(q.shared) >= int(q.limit):
		s.fail("semaphore-limit", "semaphore %q granted a permit to session %d at entry %d while sessions %v hold its %d permits", ev.Name, ev.Session, idx, q.sessions(), q.limit)
	case len(q.queue) > 0 && q.queue[0].session != ev.Session:
		s.fail("fifo", "%s %q granted to session %d at entry %d, but session %d is first in its queue %v", what, ev.Name, ev.Session, idx, q.queue[0].session, q.waiting())
	case len(q.queue) > 0 && !sem && q.queue[0].shared != shared:
		s.fail("fifo", "%s %q granted %s to session %d at entry %d, which waited in the other mode", what, ev.Name, mode, ev.Session, idx)
	}
	if len(q.queue) > 0 && q.queue[0].session == ev.Session {
		q.queue = q.queue[1:]
	}
	q.last, q.lastExcl = ev.Token, !shared
	if shared {
		q.shared = append(q.shared, chkHold{session: ev.Session, token: ev.Token})
		if sem && q.limit > 0 && len(q.shared) == int(q.limit) {
			s.stats.semFull++
		}
		return
	}
	q.holder, q.token = ev.Session, ev.Token
}

// settled checks q (named name, of kind what) as an entry left it: a
// lock's queue waits only while the lock is held, and its head only
// while it cannot be granted (an exclusive holder, or shared holders and
// an exclusive head); a semaphore's only while every permit is held; an
// election's only while a leader leads.
func (c *simChecker) settled(idx uint64, what, name string, q *chkQueue) {
	if q == nil || len(q.queue) == 0 {
		return
	}
	s := c.s
	switch {
	case q.holder == 0 && len(q.shared) == 0:
		s.fail("waiter-behind-free", "after entry %d sessions %v wait for %s %q, which nobody holds", idx, q.waiting(), what, name)
	case what == "lock" && q.holder == 0 && q.queue[0].shared:
		s.fail("waiter-behind-free", "after entry %d session %d waits to share lock %q, which sessions %v hold shared, with nobody ahead", idx, q.queue[0].session, name, q.sessions())
	case what == "semaphore" && q.limit > 0 && len(q.shared) < int(q.limit):
		s.fail("waiter-behind-free", "after entry %d sessions %v wait for semaphore %q, whose %d permits sessions %v hold", idx, q.waiting(), name, q.limit, q.sessions())
	}
}

// matchState checks that the holders and queues of the simulation's
// locks and semaphores, as the events of the entries up to idx tell them
// (what watchers and the metrics see), are those of the reference machine
// after idx (what clients read), in grant and queue order, with their
// modes, tokens and limit.
func (c *simChecker) matchState(idx uint64) {
	s := c.s
	type view struct {
		holders []chkHold
		shared  bool // the holders hold shared
		queue   []chkWaiter
		limit   uint32
	}
	fromEvents := func(q *chkQueue) view {
		if q == nil {
			return view{}
		}
		v := view{holders: q.shared, shared: len(q.shared) > 0, queue: q.queue, limit: q.limit}
		if q.holder != 0 {
			v.holders = []chkHold{{q.holder, q.token}}
		}
		return v
	}
	fromState := func(hs []lock.Holder, ws []lock.Waiter) view {
		var v view
		for _, h := range hs {
			v.holders = append(v.holders, chkHold{h.Session, h.Token})
			v.shared = h.Mode == lock.Shared
		}
		for _, w := range ws {
			v.queue = append(v.queue, chkWaiter{session: w.Session, shared: w.Mode == lock.Shared})
		}
		return v
	}
	same := func(a, b view) bool {
		return slices.Equal(a.holders, b.holders) && a.shared == b.shared && slices.Equal(a.queue, b.queue) &&
			(a.limit == 0 || b.limit == 0 || a.limit == b.limit)
	}
	for _, name := range simLockNames {
		info, _ := c.ref.Lock(name)
		ev, st := fromEvents(c.locks[name]), fromState(info.Holders, info.Waiters)
		ev.limit = 0
		if !same(ev, st) {
			s.fail("state-events", "after entry %d lock %q is held by %+v (shared %v) with queue %+v; its events say %+v (shared %v) with queue %+v",
				idx, name, st.holders, st.shared, st.queue, ev.holders, ev.shared, ev.queue)
			return
		}
	}
	for _, name := range simSemNames {
		info, ok := c.ref.Semaphore(name)
		ev, st := fromEvents(c.sems[name]), fromState(info.Holders, info.Waiters)
		ev.shared, st.shared, st.limit = false, false, info.Limit
		if !same(ev, st) || ok && st.limit == 0 {
			s.fail("state-events", "after entry %d semaphore %q (limit %d) is held by %+v with queue %+v; its events say %+v (limit %d) with queue %+v",
				idx, name, st.limit, st.holders, st.queue, ev.holders, ev.limit, ev.queue)
			return
		}
	}
}

// ack records a write the cluster acknowledged at index: that entry must
// be (or become) committed with exactly this command.
func (c *simChecker) ack(index uint64, cmd *lock.Command) {
	if index == 0 {
		return
	}
	a := simAck{index: index, cmd: *cmd}
	if index <= uint64(len(c.clog)) {
		c.verifyAck(a)
		return
	}
	c.pending[index] = append(c.pending[index], a)
}

func (c *simChecker) verifyAck(a simAck) {
	s := c.s
	e := c.clog[a.index-1]
	var got *lock.Command
	switch {
	case e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0:
		_, _, got, _ = decodeEnvelope(e.GetData())
	case e.GetType() == raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if proto.Unmarshal(e.GetData(), &cc) == nil && len(cc.GetContext()) > 0 {
			_, _, got, _ = decodeEnvelope(cc.GetContext())
		}
	}
	ok := got != nil && got.Op == a.cmd.Op
	if ok && isMemberOp(a.cmd.Op) {
		ok = got.Member == a.cmd.Member && got.Wait == a.cmd.Wait
	} else if ok && a.cmd.Op == lock.OpKeepAlive {
		for _, id := range a.cmd.Sessions {
			ok = ok && slices.Contains(got.Sessions, id)
		}
	} else if ok {
		ok = got.Now == a.cmd.Now && got.Session == a.cmd.Session && got.Name == a.cmd.Name &&
			got.Token == a.cmd.Token && got.Value == a.cmd.Value && got.Wait == a.cmd.Wait && got.TTL == a.cmd.TTL &&
			got.Mode == a.cmd.Mode && got.Limit == a.cmd.Limit
	}
	if !ok {
		s.fail("acked-write-lost", "%s acknowledged at index %d is not the committed entry there", opName(a.cmd.Op), a.index)
	}
}

// finalAcks fails for every acknowledged write still not committed.
func (c *simChecker) finalAcks() {
	var idx []uint64
	for i := range c.pending {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		c.s.fail("acked-write-lost", "%s acknowledged at index %d was never committed (the log ends at %d)", opName(c.pending[i][0].cmd.Op), i, len(c.clog))
		return
	}
}

func opName(op lock.Op) string {
	names := [...]string{lock.OpTick: "OpTick", lock.OpOpenSession: "OpOpenSession", lock.OpKeepAlive: "OpKeepAlive",
		lock.OpCloseSession: "OpCloseSession", lock.OpExpire: "OpExpire", lock.OpAcquire: "OpAcquire",
		lock.OpRelease: "OpRelease", lock.OpCancel: "OpCancel", lock.OpPublish: "OpPublish",
		lock.OpCampaign: "OpCampaign", lock.OpProclaim: "OpProclaim", lock.OpResign: "OpResign",
		lock.OpMemberAdd: "OpMemberAdd", lock.OpMemberPromote: "OpMemberPromote", lock.OpMemberRemove: "OpMemberRemove",
		lock.OpClusterVersion: "OpClusterVersion", lock.OpAcquireAll: "OpAcquireAll", lock.OpSemAcquire: "OpSemAcquire",
		lock.OpSemRelease: "OpSemRelease", lock.OpSemCancel: "OpSemCancel"}
	if int(op) < len(names) && names[op] != "" {
		return names[op]
	}
	return fmt.Sprintf("Op(%d)", op)
}
