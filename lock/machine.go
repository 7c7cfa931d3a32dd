package lock

import (
	"fmt"
	"math"
)

// MaxTTL is the largest session TTL the machine accepts, in nanoseconds (24
// hours). OpOpenSession and ephemeral OpAcquire with a larger TTL answer
// CodeInvalid. Tighter bounds are the HTTP layer's business.
const MaxTTL int64 = 24 * 60 * 60 * 1_000_000_000

// MaxValueSize is the largest election value (Command.Value) the machine
// accepts, in bytes. OpCampaign and OpProclaim with a longer value answer
// CodeInvalid.
const MaxValueSize = 4096

// MaxRequestIDLen is the longest client request ID of OpOpenSession
// (Command.RequestID), in bytes; a longer one answers CodeInvalid.
const MaxRequestIDLen = 128

// Machine is the deterministic lock state machine (see the package doc for
// the full contract). The zero value is an empty machine ready to use, as is
// New(). It is not safe for concurrent use: raftnode's single loop goroutine
// owns it, and read methods return deep copies.
//
// Its parts, one file each: sessions (sessions.go), locks (locks.go),
// elections (elections.go), the read-only queries (queries.go) and
// snapshots (snapshot.go). Locks and elections are kept in copy-on-write
// B-trees by name (btree.go), so that listings by prefix cost what they
// return and a snapshot is captured in O(1) whatever their number.
type Machine struct {
	applied   uint64
	clock     int64
	term      uint64 // term of the last clocked command (Now != 0) applied
	sessions  map[uint64]*session
	byID      tree[*session]    // the sessions again, in ID order (sessionKey), for paged listings
	deadlines deadlineHeap      // every session, min-heap on (deadline, id)
	openReqs  map[string]uint64 // client request ID → the session it opened, while that session lives
	locks     tree[lockRec]
	elections tree[electionRec]
	sems      tree[semRec]
	// sharedLocks counts the shared holds and shared queue places over
	// all locks: a snapshot needs version 6 while it is not 0.
	sharedLocks int
	members     map[uint64]Member
	auth        *AuthView // nil: no auth state yet (auth.go)
	// The quotas (quota.go) and the open sessions of each principal.
	limits      Limits
	limitsSet   bool
	byPrincipal map[string]int
	alarms      []Alarm // raised alarms, sorted (alarm.go); replaced on change
	waiters     int     // sessions queued for locks, over all locks (WaiterCount)
	// Membership (membership.go): the highest member ID ever used, the
	// removed IDs (sorted; replaced on change) and the cluster's command
	// version (0: never raised).
	memberSeq      uint64
	removed        []uint64
	clusterVersion uint8
	// delays are the locks in their lock-delay: name → when it ends
	// (lockdelay.go); derived from the locks, rebuilt by Restore.
	delays map[string]int64
	// slots is the sessions once more, each with its deadline by value,
	// copy-on-write: what a snapshot capture takes, in O(1) whatever
	// their number (snapshot.go). byID cannot be shared so: a capture
	// would see the later changes of the deadlines it points to.
	slots sessionSlots
	// delayedSessions counts the sessions with a lock-delay: a snapshot
	// needs version 5 while it is not 0.
	delayedSessions int
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
	if m.openReqs == nil {
		m.openReqs = make(map[string]uint64)
	}
	if m.byPrincipal == nil {
		m.byPrincipal = make(map[string]int)
	}
	if m.members == nil {
		m.members = make(map[uint64]Member)
	}
	if m.delays == nil {
		m.delays = make(map[string]int64)
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
// OpAcquire with Session 0, without 0 < TTL <= MaxTTL; a RequestID longer
// than MaxRequestIDLen; an empty Name for OpAcquire, OpRelease, OpCancel,
// OpCampaign, OpProclaim or OpResign; Session 0 for OpCloseSession,
// OpRelease, OpCancel, OpCampaign, OpProclaim or OpResign; a Value longer
// than MaxValueSize for OpCampaign or OpProclaim; Member.ID 0 for
// OpPublish. An ephemeral session that acquires another lock than its own,
// or that campaigns, is refused the same way (CodeInvalid with
// Result.Session set, nothing changed). The rules of each Op are
// documented on the Op constants and in the package's testdata scripts;
// Result.Events lists every change, stamped with Revision = index and Seq =
// 0, 1, ...
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
	if res, bad := m.denied(cmd); bad {
		return res
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
		a.openSession(cmd)
	case OpKeepAlive:
		a.keepAlive(cmd.Sessions)
	case OpCloseSession:
		a.closeSession(cmd.Session, cmd.Principal)
	case OpExpire:
		a.expire()
	case OpAcquire:
		a.acquire(cmd)
	case OpRelease:
		if cmd.Force {
			a.forceRelease(cmd.Name, cmd.Principal)
		} else {
			a.release(cmd.Session, cmd.Name, cmd.Token)
		}
	case OpCancel:
		a.cancel(cmd.Session, cmd.Name)
	case OpPublish:
		if m.Removed(cmd.Member.ID) {
			a.res = Result{Code: CodeInvalid, Reason: fmt.Sprintf("member %d was removed from the cluster", cmd.Member.ID)}
			break
		}
		m.members[cmd.Member.ID] = cmd.Member
		a.res.Code = CodeOK
	case OpMemberAdd, OpMemberPromote, OpMemberRemove:
		a.applyMember(cmd)
	case OpClusterVersion:
		a.setClusterVersion(cmd)
	case OpAcquireAll:
		a.acquireAll(cmd)
	case OpSemAcquire:
		a.semAcquire(cmd)
	case OpSemRelease:
		a.semRelease(cmd.Session, cmd.Name, cmd.Token)
	case OpSemCancel:
		a.semCancel(cmd.Session, cmd.Name)
	case OpCampaign:
		a.campaign(cmd)
	case OpProclaim:
		a.proclaim(cmd.Session, cmd.Name, cmd.Token, cmd.Value)
	case OpResign:
		a.resign(cmd.Session, cmd.Name, cmd.Token)
	case OpAuthPutUser, OpAuthDeleteUser, OpAuthPutRole, OpAuthDeleteRole,
		OpAuthCreateToken, OpAuthRevokeToken, OpAuthEnable, OpAuthBootstrap:
		a.applyAuth(cmd)
	case OpSetLimits, OpInitLimits:
		a.setLimits(cmd)
	case OpAlarm:
		a.setAlarm(cmd)
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
		return ttlOK && len(c.RequestID) <= MaxRequestIDLen && c.LockDelay >= 0 && c.LockDelay <= MaxLockDelay
	case OpCloseSession:
		return c.Session != 0
	case OpAcquire:
		return c.Name != "" && (c.Session != 0 || ttlOK) && c.Mode <= Shared
	case OpSemAcquire:
		return c.Name != "" && c.Session != 0 && c.Limit >= 1 && c.Limit <= MaxSemaphoreLimit
	case OpSemRelease, OpSemCancel:
		return c.Name != "" && c.Session != 0
	case OpRelease:
		return c.Name != "" && (c.Session != 0 || c.Force)
	case OpCancel, OpResign:
		return c.Name != "" && c.Session != 0
	case OpCampaign, OpProclaim:
		return c.Name != "" && c.Session != 0 && len(c.Value) <= MaxValueSize
	case OpPublish:
		return c.Member.ID != 0
	case OpMemberAdd:
		return c.Member.ID != 0 && c.Member.PeerURL != ""
	case OpMemberPromote, OpMemberRemove:
		return c.Member.ID != 0
	case OpClusterVersion:
		return c.ClusterVersion > BaseCommandVersion && c.ClusterVersion <= MaxCommandVersion
	case OpAcquireAll:
		if c.Session == 0 || len(c.Names) == 0 || len(c.Names) > MaxAcquireAll {
			return false
		}
		for i, n := range c.Names {
			if n == "" || (i > 0 && n <= c.Names[i-1]) {
				return false
			}
		}
		if c.Modes != nil && len(c.Modes) != len(c.Names) {
			return false
		}
		for _, md := range c.Modes {
			if md > Shared {
				return false
			}
		}
		return true
	}
	return authOp(c.Op) && validAuth(c)
}

// refused reports the commands that are well formed but that an existing
// session may never make: an ephemeral session exists for its bound lock
// only, so it may not acquire another lock, a semaphore, nor campaign. It runs before the
// clock and term rules so that, like a malformed command, the refusal
// changes nothing but the applied index.
func (m *Machine) refused(c *Command) (uint64, bool) {
	if c.Op != OpAcquire && c.Op != OpCampaign && c.Op != OpAcquireAll && c.Op != OpSemAcquire {
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

// applier carries the state of one Apply call.
type applier struct {
	m     *Machine
	index uint64
	res   Result
	by    string // the admin who forces this command's changes (Event.By)
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
		By:       a.by,
	}
	if s, ok := a.m.sessions[session]; ok {
		ev.Owner = s.owner
	}
	a.res.Events = append(a.res.Events, ev)
}

// without returns a copy of q without its element i. Queues stored in the
// machine's trees are shared with snapshot captures, so they are never
// changed in place: every change makes a new slice.
func without[T any](q []T, i int) []T {
	if len(q) == 1 {
		return nil
	}
	out := make([]T, 0, len(q)-1)
	out = append(out, q[:i]...)
	return append(out, q[i+1:]...)
}

// appended returns a copy of q with v at its end (see without).
func appended[T any](q []T, v T) []T {
	return append(q[:len(q):len(q)], v)
}

// popped returns q without its head; q[1:] shares but never writes the
// backing array.
func popped[T any](q []T) []T {
	if len(q) <= 1 {
		return nil
	}
	return q[1:]
}
