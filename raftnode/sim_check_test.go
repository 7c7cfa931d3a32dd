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

// chkQueue is a lock (or an election) as its events tell it.
type chkQueue struct {
	holder uint64 // session holding (leading); 0 = none
	token  uint64 // its token (term)
	last   uint64 // the last token granted
	queue  []uint64
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

// events checks one entry's events: fencing tokens (terms) are the entry's
// index and strictly increase per name; a lock (election) has one holder;
// grants follow the queue's FIFO order; a session never expires before its
// bound and never receives a grant in the entry that expires it.
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
				s.fail("grant-to-dying", "entry %d granted a lock or an election to session %d and expired it", idx, ev.Session)
				return
			}
			delete(c.sessions, ev.Session)
		case lock.EventLockGranted, lock.EventElected:
			what, m := "lock", c.locks
			if ev.Type == lock.EventElected {
				what, m = "election", c.elects
				s.stats.elected++
			} else {
				s.stats.grants++
			}
			q := c.queue(m, ev.Name)
			switch {
			case ev.Token != idx:
				s.fail("fencing-token", "%s %q granted at entry %d with token %d", what, ev.Name, idx, ev.Token)
			case ev.Token <= q.last:
				s.fail("fencing-token", "%s %q granted token %d to session %d at entry %d after token %d: reused or not increasing", what, ev.Name, ev.Token, ev.Session, idx, q.last)
			case q.holder != 0:
				s.fail("exclusion", "%s %q granted to session %d at entry %d while session %d holds it", what, ev.Name, ev.Session, idx, q.holder)
			case len(q.queue) > 0 && q.queue[0] != ev.Session:
				s.fail("fifo", "%s %q granted to session %d at entry %d, but session %d is first in its queue %v", what, ev.Name, ev.Session, idx, q.queue[0], q.queue)
			}
			if len(q.queue) > 0 {
				q.queue = q.queue[1:]
			}
			q.holder, q.token, q.last = ev.Session, ev.Token, ev.Token
			granted = append(granted, ev.Session)
		case lock.EventLockReleased, lock.EventResigned, lock.EventLeaderExpired, lock.EventProclaimed:
			m := c.locks
			if ev.Type != lock.EventLockReleased {
				m = c.elects
			}
			q := c.queue(m, ev.Name)
			if q.holder != ev.Session || q.token != ev.Token {
				s.fail("events", "entry %d: %v of %q by session %d token %d, but the holder is session %d with token %d", idx, ev.Type, ev.Name, ev.Session, ev.Token, q.holder, q.token)
			}
			if ev.Type != lock.EventProclaimed {
				q.holder, q.token = 0, 0
			}
		case lock.EventNoLeader:
			if q := c.queue(c.elects, ev.Name); q.holder != 0 || len(q.queue) != 0 {
				s.fail("events", "entry %d: election %q has no leader, but session %d leads and %v wait", idx, ev.Name, q.holder, q.queue)
			}
		case lock.EventLockQueued, lock.EventCandidateJoined:
			m := c.locks
			if ev.Type == lock.EventCandidateJoined {
				m = c.elects
			}
			q := c.queue(m, ev.Name)
			if q.holder == ev.Session || slices.Contains(q.queue, ev.Session) {
				s.fail("fifo", "entry %d: session %d queued for %q a second time (holder %d, queue %v)", idx, ev.Session, ev.Name, q.holder, q.queue)
			}
			if q.holder == 0 {
				s.fail("fifo", "entry %d: session %d queued for %q, which nobody holds", idx, ev.Session, ev.Name)
			}
			q.queue = append(q.queue, ev.Session)
		case lock.EventLockCancelled, lock.EventCandidateLeft:
			m := c.locks
			if ev.Type == lock.EventCandidateLeft {
				m = c.elects
			}
			q := c.queue(m, ev.Name)
			i := slices.Index(q.queue, ev.Session)
			if i < 0 {
				s.fail("fifo", "entry %d: session %d left the queue of %q, which it was not in (%v)", idx, ev.Session, ev.Name, q.queue)
				return
			}
			q.queue = slices.Delete(q.queue, i, i+1)
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
			got.Token == a.cmd.Token && got.Value == a.cmd.Value && got.Wait == a.cmd.Wait && got.TTL == a.cmd.TTL
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
		lock.OpClusterVersion: "OpClusterVersion"}
	if int(op) < len(names) && names[op] != "" {
		return names[op]
	}
	return fmt.Sprintf("Op(%d)", op)
}
