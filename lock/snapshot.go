package lock

import (
	"cmp"
	"container/heap"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
)

// snapshotVersion is the format version of snapshots this build writes
// when the state has no access control: Restore reads it and version 1
// (the same layout without the sessions' client request IDs).
// snapshotVersionAuth (3) adds each session's principal and, after the
// members, the access-control state; it is written only when the state
// has users, roles, tokens, auth on, or a session with a principal, so a
// cluster without auth writes what older builds read.
//
// snapshotVersionMembership (4) adds, after the access-control state, the
// membership state (membership.go); it is written only when the state has
// one (a member added or removed, a cluster version raised).
//
// snapshotVersionDelay (5) adds each session's lock-delay and each lock's
// end of lock-delay (a lock in its lock-delay has holder 0); it is written
// only when a session has a lock-delay.
//
// snapshotVersionShared (6) adds each lock's shared holders (after its
// end of lock-delay: count, then session, token and grant time each) and
// each waiter's mode (a byte after its time), and, after the membership
// state, the semaphores sorted by name (limit, holders in grant order,
// waiters in queue order); it is written only when a lock is held or
// awaited shared, or a semaphore exists.
const (
	snapshotVersion           byte = 2
	snapshotVersionAuth       byte = 3
	snapshotVersionMembership byte = 4
	snapshotVersionDelay      byte = 5
	snapshotVersionShared     byte = 6
)

// Snapshot serialises the whole state: a version byte, then the applied
// index, clock and last command term, the sessions sorted by ID (with the
// client request ID that opened each), the locks sorted by name (holder,
// token, grant time and queue in order), the elections sorted by name
// (leader, term, election time, value and candidates in queue order with
// their values) and the members sorted by ID. Machines with equal state
// give byte-identical snapshots. The result is a fresh slice owned by the
// caller.
//
// Snapshot is CaptureSnapshot().Encode(). A caller that must not stall
// (raftnode's loop) captures on its own goroutine and encodes on another.
func (m *Machine) Snapshot() []byte {
	return m.CaptureSnapshot().Encode()
}

// SnapshotCapture is the state of a Machine at one applied index, held
// apart from the Machine: its Encode gives the bytes Snapshot gave at the
// time of the capture, whatever the Machine applies afterwards. The locks,
// elections and semaphores are copy-on-write clones of the Machine's trees
// (the Machine copies a shared node before it changes it; queues are never
// changed in place); the sessions are the copy-on-write chunks of
// Machine.slots (a session's deadline is there by value, its other encoded
// fields never change); the members (a handful) are copied. A capture is
// immutable but for the sorted sessions its first Encode keeps: Encode may
// run on any goroutine, concurrently with the Machine's methods.
type SnapshotCapture struct {
	applied uint64
	clock   int64
	term    uint64

	slots     []*slotChunk // the sessions, in slot order
	nSessions int
	sessions  []sessionRec // the sessions sorted by ID: made by Encode
	locks     *tree[lockRec]
	elections *tree[electionRec]
	sems      *tree[semRec]
	members   []Member // in map order; Encode sorts by ID
	auth      *AuthView
	limits    Limits
	limitsSet bool
	alarms    []Alarm // the machine's immutable slice
	version   byte

	memberSeq      uint64
	removed        []uint64 // the machine's immutable slice
	clusterVersion uint8
	delayed        bool // a session has a lock-delay, or a lock is in one: version 5
}

// sessionRec is a session as snapshot captures see it (Machine.slots): the
// session, of which a capture reads only the fields that never change once
// it is open (see session), and its deadline by value; s is nil in an
// empty slot. The Machine records a new one whenever the deadline changes.
type sessionRec struct {
	id       uint64
	s        *session
	deadline int64
}

// CaptureSnapshot takes the state for a later Encode in O(1), whatever the
// number of sessions, locks, elections and semaphores: a clone of their
// trees and of the sessions' chunks (the Machine pays for the copy-on-write
// later, spread over the changes it makes: at most one copy of each node or
// chunk it changes, per capture). The members, a handful, are copied. It
// neither sorts nor encodes. Like every Machine method it must be called
// on the goroutine that owns m.
func (m *Machine) CaptureSnapshot() *SnapshotCapture {
	c := &SnapshotCapture{
		applied:   m.applied,
		clock:     m.clock,
		term:      m.term,
		slots:     m.slots.capture(),
		nSessions: len(m.sessions),
		locks:     m.locks.Clone(),
		elections: m.elections.Clone(),
		sems:      m.sems.Clone(),
		members:   make([]Member, 0, len(m.members)),
		auth:      m.Auth(),
		limits:    m.limits,
		limitsSet: m.limitsSet,
		alarms:    m.alarms,
		version:   snapshotVersion,

		memberSeq:      m.memberSeq,
		removed:        m.removed,
		clusterVersion: m.clusterVersion,
	}
	// byPrincipal counts the sessions of each principal: a session has
	// one when it is not empty.
	if !c.auth.empty() || c.limitsSet || len(c.alarms) > 0 || len(m.byPrincipal) > 0 {
		c.version = snapshotVersionAuth
	}
	c.delayed = m.delayedSessions > 0
	for _, mb := range m.members {
		c.members = append(c.members, mb)
	}
	if c.memberSeq != 0 || len(c.removed) > 0 || c.clusterVersion != 0 {
		c.version = snapshotVersionMembership
	}
	if c.delayed || len(m.delays) > 0 {
		c.version = snapshotVersionDelay
	}
	if m.sems.Len() > 0 || m.sharedLocks > 0 {
		c.version = snapshotVersionShared
	}
	return c
}

// AppliedIndex is the applied index of the captured state.
func (c *SnapshotCapture) AppliedIndex() uint64 { return c.applied }

// Encode serialises the captured state in Snapshot's format: the bytes are
// identical to those Snapshot returned when the capture was taken. The
// result is a fresh slice owned by the caller. Encode sorts the sessions
// and members into the capture's own slices (so a second Encode is
// cheaper); it is safe for concurrent use with the Machine, but not with
// another Encode of the same capture.
func (c *SnapshotCapture) Encode() []byte {
	if c.sessions == nil && c.nSessions > 0 {
		c.sessions = make([]sessionRec, 0, c.nSessions)
		for _, ch := range c.slots {
			for _, r := range ch.recs {
				if r.s != nil {
					c.sessions = append(c.sessions, r)
				}
			}
		}
		slices.SortFunc(c.sessions, func(a, b sessionRec) int { return cmp.Compare(a.id, b.id) })
	}
	slices.SortFunc(c.members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })

	var auth encoder
	if c.version >= snapshotVersionAuth {
		c.encodeAuth(&auth)
	}
	if c.version >= snapshotVersionMembership {
		c.encodeMembership(&auth)
	}
	e := encoder{b: make([]byte, 0, c.size()+len(auth.b))}
	e.byte(c.version)
	e.uvarint(c.applied)
	e.varint(c.clock)
	e.uvarint(c.term)

	e.uvarint(uint64(len(c.sessions)))
	for _, r := range c.sessions {
		s := r.s
		e.uvarint(s.id)
		e.str(s.owner)
		e.varint(s.ttl)
		e.varint(r.deadline)
		e.str(s.bound)
		e.str(s.requestID)
		if c.version >= snapshotVersionAuth {
			e.str(s.principal)
		}
		if c.version >= snapshotVersionDelay {
			e.varint(s.lockDelay)
		}
	}

	e.uvarint(uint64(c.locks.Len()))
	for name, l := range c.locks.Ascend("") {
		e.str(name)
		e.uvarint(l.holder)
		e.uvarint(l.token)
		e.varint(l.since)
		if c.version >= snapshotVersionDelay {
			e.varint(l.delayedUntil)
		}
		if c.version >= snapshotVersionShared {
			e.holds(l.shared)
		}
		e.queue(l.queue, c.version >= snapshotVersionShared)
	}

	e.uvarint(uint64(c.elections.Len()))
	for name, el := range c.elections.Ascend("") {
		e.str(name)
		e.uvarint(el.leader)
		e.uvarint(el.term)
		e.varint(el.since)
		e.str(el.value)
		e.uvarint(uint64(len(el.queue)))
		for _, cd := range el.queue {
			e.uvarint(cd.session)
			e.varint(cd.since)
			e.str(cd.value)
		}
	}

	e.uvarint(uint64(len(c.members)))
	for _, mb := range c.members {
		e.uvarint(mb.ID)
		e.str(mb.PeerURL)
		e.str(mb.ClientURL)
	}
	e.b = append(e.b, auth.b...)
	if c.version >= snapshotVersionShared {
		e.uvarint(uint64(c.sems.Len()))
		for name, r := range c.sems.Ascend("") {
			e.str(name)
			e.uvarint(uint64(r.limit))
			e.holds(r.holders)
			e.queue(r.queue, false)
		}
	}
	return e.b
}

func (e *encoder) holds(hs []hold) {
	e.uvarint(uint64(len(hs)))
	for _, h := range hs {
		e.uvarint(h.session)
		e.uvarint(h.token)
		e.varint(h.since)
	}
}

// queue writes q; with modes, each waiter's mode too.
func (e *encoder) queue(q []waiter, modes bool) {
	e.uvarint(uint64(len(q)))
	for _, w := range q {
		e.uvarint(w.session)
		e.varint(w.since)
		if modes {
			e.byte(byte(w.mode))
		}
	}
}

// encodeAuth writes the access-control state, the quotas and the alarms:
// whether the limits are set and the five limits, the alarms sorted by
// member and kind, whether auth is on, the users sorted
// by name (roles sorted), the roles sorted by name (permissions sorted by
// prefix), the tokens sorted by ID.
func (c *SnapshotCapture) encodeAuth(e *encoder) {
	e.bool(c.limitsSet)
	e.limits(c.limits)
	e.uvarint(uint64(len(c.alarms)))
	for _, al := range c.alarms {
		e.uvarint(al.Member)
		e.byte(byte(al.Kind))
	}
	v := c.auth
	e.bool(v.Enabled())
	users := v.Users()
	e.uvarint(uint64(len(users)))
	for _, u := range users {
		e.str(u.Name)
		e.uvarint(uint64(len(u.Roles)))
		for _, r := range u.Roles {
			e.str(r)
		}
	}
	roles := v.Roles()
	e.uvarint(uint64(len(roles)))
	for _, r := range roles {
		e.str(r.Name)
		e.uvarint(uint64(len(r.Permissions)))
		for _, p := range r.Permissions {
			e.str(p.Prefix)
			e.byte(byte(p.Actions))
		}
	}
	tokens := v.Tokens("")
	e.uvarint(uint64(len(tokens)))
	for _, t := range tokens {
		e.uvarint(t.ID)
		e.str(t.User)
		e.str(t.Hash)
	}
}

// restoreAuth reads what encodeAuth wrote, checking that the records are
// sorted, valid and refer to each other (a user's roles exist, a token's
// user exists, hashes are unique).
func restoreAuth(d *decoder, m *Machine) {
	m.limitsSet = d.bool("limits set")
	m.limits = d.limits()
	for i, n := 0, d.count("alarms"); i < n && d.err == nil; i++ {
		al := Alarm{Member: d.uvarint("alarm member"), Kind: AlarmKind(d.byte("alarm kind"))}
		if d.err == nil && (al.Member == 0 || al.Kind != AlarmNoSpace || (i > 0 && compareAlarms(m.alarms[i-1], al) >= 0)) {
			d.fail(fmt.Sprintf("alarm %+v invalid or out of order", al))
		}
		m.alarms = append(m.alarms, al)
	}
	v := &AuthView{users: map[string]AuthUser{}, roles: map[string]AuthRole{}, tokens: map[uint64]AuthToken{}, byHash: map[string]uint64{}}
	v.enabled = d.bool("auth enabled")
	var prev string
	var users []AuthUser
	for i, n := 0, d.count("users"); i < n && d.err == nil; i++ {
		u := AuthUser{Name: d.str("user")}
		for j, nr := 0, d.count("user roles"); j < nr && d.err == nil; j++ {
			u.Roles = append(u.Roles, d.str("user role"))
		}
		if d.err == nil && (i > 0 && u.Name <= prev || !validAuth(&Command{Op: OpAuthPutUser, Name: u.Name, Roles: u.Roles})) {
			d.fail(fmt.Sprintf("user %q out of order or invalid", u.Name))
		}
		prev = u.Name
		users = append(users, u)
	}
	prev = ""
	for i, n := 0, d.count("roles"); i < n && d.err == nil; i++ {
		r := AuthRole{Name: d.str("role")}
		for j, np := 0, d.count("permissions"); j < np && d.err == nil; j++ {
			r.Permissions = append(r.Permissions, Permission{Prefix: d.str("prefix"), Actions: Actions(d.byte("actions"))})
		}
		if d.err == nil && (i > 0 && r.Name <= prev || !validAuth(&Command{Op: OpAuthPutRole, Name: r.Name, Permissions: r.Permissions})) {
			d.fail(fmt.Sprintf("role %q out of order or invalid", r.Name))
		}
		prev = r.Name
		v.roles[r.Name] = r
	}
	for _, u := range users {
		for _, r := range u.Roles {
			if _, ok := v.roles[r]; !ok && d.err == nil {
				d.fail(fmt.Sprintf("user %q has missing role %q", u.Name, r))
			}
		}
		v.users[u.Name] = u
	}
	var prevID uint64
	for i, n := 0, d.count("tokens"); i < n && d.err == nil; i++ {
		t := AuthToken{ID: d.uvarint("token id"), User: d.str("token user"), Hash: d.str("token hash")}
		if d.err != nil {
			break
		}
		_, userOK := v.users[t.User]
		_, dup := v.byHash[t.Hash]
		if t.ID <= prevID || t.ID > m.applied || !userOK || dup || len(t.Hash) != TokenHashLen {
			d.fail(fmt.Sprintf("token %d invalid", t.ID))
			break
		}
		prevID = t.ID
		v.tokens[t.ID] = t
		v.byHash[t.Hash] = t.ID
	}
	m.auth = v
}

// size is the exact length of the encoding but for the access-control
// state (encoded apart, it is small), so that Encode allocates once
// and the snapshot (kept in memory by raft's storage) holds no spare
// capacity.
func (c *SnapshotCapture) size() int {
	n := 1 + uvarintLen(c.applied) + varintLen(c.clock) + uvarintLen(c.term)
	n += uvarintLen(uint64(len(c.sessions)))
	for _, r := range c.sessions {
		s := r.s
		n += uvarintLen(s.id) + strLen(s.owner) + varintLen(s.ttl) + varintLen(r.deadline) + strLen(s.bound) + strLen(s.requestID)
		if c.version >= snapshotVersionAuth {
			n += strLen(s.principal)
		}
		if c.version >= snapshotVersionDelay {
			n += varintLen(s.lockDelay)
		}
	}
	n += uvarintLen(uint64(c.locks.Len()))
	for name, l := range c.locks.Ascend("") {
		n += strLen(name) + uvarintLen(l.holder) + uvarintLen(l.token) + varintLen(l.since)
		if c.version >= snapshotVersionDelay {
			n += varintLen(l.delayedUntil)
		}
		if c.version >= snapshotVersionShared {
			n += holdsLen(l.shared)
		}
		n += queueLen(l.queue, c.version >= snapshotVersionShared)
	}
	n += uvarintLen(uint64(c.elections.Len()))
	for name, el := range c.elections.Ascend("") {
		n += strLen(name) + uvarintLen(el.leader) + uvarintLen(el.term) + varintLen(el.since) + strLen(el.value) +
			uvarintLen(uint64(len(el.queue)))
		for _, cd := range el.queue {
			n += uvarintLen(cd.session) + varintLen(cd.since) + strLen(cd.value)
		}
	}
	n += uvarintLen(uint64(len(c.members)))
	for _, mb := range c.members {
		n += uvarintLen(mb.ID) + strLen(mb.PeerURL) + strLen(mb.ClientURL)
	}
	if c.version >= snapshotVersionShared {
		n += uvarintLen(uint64(c.sems.Len()))
		for name, r := range c.sems.Ascend("") {
			n += strLen(name) + uvarintLen(uint64(r.limit)) + holdsLen(r.holders) + queueLen(r.queue, false)
		}
	}
	return n
}

func holdsLen(hs []hold) int {
	n := uvarintLen(uint64(len(hs)))
	for _, h := range hs {
		n += uvarintLen(h.session) + uvarintLen(h.token) + varintLen(h.since)
	}
	return n
}

func queueLen(q []waiter, modes bool) int {
	n := uvarintLen(uint64(len(q)))
	for _, w := range q {
		n += uvarintLen(w.session) + varintLen(w.since)
		if modes {
			n++
		}
	}
	return n
}

// uvarintLen is the length of binary.AppendUvarint(nil, v).
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// varintLen is the length of binary.AppendVarint(nil, v).
func varintLen(v int64) int { return uvarintLen(uint64(v<<1) ^ uint64(v>>63)) }

func strLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// Restore replaces the whole state with the snapshot b (from Snapshot). It
// returns an error wrapping ErrUnknownVersion for a version this build does
// not know, and one wrapping ErrCorrupt for bytes that do not decode or that
// describe an inconsistent state (a lock held by a missing session, a session
// queued twice, a leader that is also a candidate, an ephemeral session in an
// election, unsorted entries, ...). On error the machine is unchanged.
// It never panics, and it does not retain b.
func (m *Machine) Restore(b []byte) error {
	n, err := restore(b)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	*m = *n
	return nil
}

func restore(b []byte) (*Machine, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	version := b[0]
	if version < 1 || version > snapshotVersionShared {
		return nil, fmt.Errorf("%w %d", ErrUnknownVersion, version)
	}
	d := decoder{b: b, off: 1}
	m := New()
	m.applied = d.uvarint("applied index")
	m.clock = d.varint("clock")
	m.term = d.uvarint("term")

	var prevID uint64
	for i, n := 0, d.count("sessions"); i < n && d.err == nil; i++ {
		id := d.uvarint("session id")
		owner := d.str("owner")
		ttl := d.varint("ttl")
		deadline := d.varint("deadline")
		bound := d.str("bound")
		var requestID string
		if version >= 2 {
			requestID = d.str("request id")
		}
		s := newSession(id, owner, ttl, deadline, bound, requestID)
		s.locksAt = m.applied // held as restored below, as of this index
		if version >= snapshotVersionAuth {
			s.principal = d.str("principal")
			if s.principal != "" {
				m.byPrincipal[s.principal]++
			}
		}
		if version >= snapshotVersionDelay {
			s.lockDelay = d.varint("lock delay")
			if s.lockDelay != 0 {
				m.delayedSessions++
			}
		}
		switch {
		case d.err != nil:
		case s.lockDelay < 0 || s.lockDelay > MaxLockDelay:
			d.fail(fmt.Sprintf("session %d lock delay %d", s.id, s.lockDelay))
		case s.id <= prevID || s.id > m.applied:
			d.fail(fmt.Sprintf("session id %d out of order", s.id))
		case s.ttl <= 0 || s.ttl > MaxTTL:
			d.fail(fmt.Sprintf("session %d ttl %d", s.id, s.ttl))
		case len(requestID) > MaxRequestIDLen:
			d.fail(fmt.Sprintf("session %d request id of %d bytes", s.id, len(requestID)))
		case requestID != "" && m.openReqs[requestID] != 0:
			d.fail(fmt.Sprintf("session %d request id also opened session %d", s.id, m.openReqs[requestID]))
		}
		prevID = s.id
		m.sessions[s.id] = s
		m.byID.Set(sessionKey(s.id), s)
		m.slots.add(s)
		if requestID != "" {
			m.openReqs[requestID] = s.id
		}
		m.deadlines = append(m.deadlines, s)
	}

	var prevName string
	for i, n := 0, d.count("locks"); i < n && d.err == nil; i++ {
		name := d.str("lock name")
		var l lockRec
		l.holder = d.uvarint("holder")
		l.token = d.uvarint("token")
		l.since = d.varint("since")
		if version >= snapshotVersionDelay {
			l.delayedUntil = d.varint("delayed until")
		}
		if d.err != nil {
			break
		}
		if name == "" || (i > 0 && name <= prevName) {
			d.fail(fmt.Sprintf("lock %q out of order", name))
			break
		}
		prevName = name
		holder := m.sessions[l.holder]
		switch {
		case l.delayedUntil != 0:
			// In its lock-delay: held by nobody.
			if l.holder != 0 || l.token != 0 || l.since != 0 || l.delayedUntil < 0 {
				d.fail(fmt.Sprintf("lock %q in its lock-delay with holder %d token %d", name, l.holder, l.token))
			}
			m.delays[name] = l.delayedUntil
		case l.holder == 0 && version >= snapshotVersionShared:
			// Held shared (checked below), or corrupt.
			if l.token != 0 || l.since != 0 {
				d.fail(fmt.Sprintf("lock %q without holder has token %d", name, l.token))
			}
		case holder == nil:
			d.fail(fmt.Sprintf("lock %q held by missing session %d", name, l.holder))
		case l.token == 0 || l.token > m.applied:
			d.fail(fmt.Sprintf("lock %q token %d", name, l.token))
		default:
			holder.held[name] = struct{}{}
		}
		if version >= snapshotVersionShared {
			l.shared = restoreHolds(&d, m, "lock "+strconv.Quote(name), func(s *session) bool {
				if s == holder || has(s.held, name) {
					return false
				}
				s.held[name] = struct{}{}
				m.sharedLocks++
				return true
			})
			if d.err == nil && ((l.holder != 0 || l.delayedUntil != 0) && len(l.shared) > 0 || l.holder == 0 && l.delayedUntil == 0 && len(l.shared) == 0) {
				d.fail(fmt.Sprintf("lock %q with holder %d, %d shared holders, lock-delay %d", name, l.holder, len(l.shared), l.delayedUntil))
			}
		}
		if d.err != nil {
			break
		}
		for j, nw := 0, d.count("waiters"); j < nw && d.err == nil; j++ {
			id := d.uvarint("waiter")
			since := d.varint("waiter since")
			var mode Mode
			if version >= snapshotVersionShared {
				mode = Mode(d.byte("waiter mode"))
			}
			s := m.sessions[id]
			switch {
			case d.err != nil:
			case mode > Shared:
				d.fail(fmt.Sprintf("lock %q waiter %d mode %d", name, id, mode))
			case s == nil:
				d.fail(fmt.Sprintf("lock %q waiter %d missing", name, id))
			case has(s.held, name) || has(s.waiting, name):
				d.fail(fmt.Sprintf("lock %q waiter %d twice", name, id))
			default:
				s.waiting[name] = struct{}{}
				l.queue = append(l.queue, waiter{session: id, since: since, mode: mode})
				m.waiters++
				if mode == Shared {
					m.sharedLocks++
				}
			}
		}
		if d.err == nil && len(l.queue) > 0 && l.admits(l.queue[0].mode) {
			d.fail(fmt.Sprintf("lock %q has a waiter that could hold it", name))
		}
		m.locks.Set(name, l)
	}

	prevName = ""
	for i, n := 0, d.count("elections"); i < n && d.err == nil; i++ {
		name := d.str("election name")
		var e electionRec
		e.leader = d.uvarint("leader")
		e.term = d.uvarint("term")
		e.since = d.varint("since")
		e.value = d.str("value")
		if d.err != nil {
			break
		}
		if name == "" || (i > 0 && name <= prevName) {
			d.fail(fmt.Sprintf("election %q out of order", name))
			break
		}
		prevName = name
		leader := m.sessions[e.leader]
		if leader == nil {
			d.fail(fmt.Sprintf("election %q led by missing session %d", name, e.leader))
			break
		}
		if e.term == 0 || e.term > m.applied || len(e.value) > MaxValueSize {
			d.fail(fmt.Sprintf("election %q term %d value length %d", name, e.term, len(e.value)))
			break
		}
		leader.leads[name] = struct{}{}
		for j, nc := 0, d.count("candidates"); j < nc && d.err == nil; j++ {
			id := d.uvarint("candidate")
			since := d.varint("candidate since")
			value := d.str("candidate value")
			s := m.sessions[id]
			switch {
			case d.err != nil:
			case s == nil:
				d.fail(fmt.Sprintf("election %q candidate %d missing", name, id))
			case s == leader || has(s.runs, name):
				d.fail(fmt.Sprintf("election %q candidate %d twice", name, id))
			case len(value) > MaxValueSize:
				d.fail(fmt.Sprintf("election %q candidate %d value length %d", name, id, len(value)))
			default:
				s.runs[name] = struct{}{}
				e.queue = append(e.queue, candidate{session: id, value: value, since: since})
			}
		}
		m.elections.Set(name, e)
	}

	var prevMember uint64
	for i, n := 0, d.count("members"); i < n && d.err == nil; i++ {
		mb := Member{ID: d.uvarint("member id"), PeerURL: d.str("peer url"), ClientURL: d.str("client url")}
		if d.err == nil && mb.ID <= prevMember {
			d.fail(fmt.Sprintf("member %d out of order", mb.ID))
		}
		prevMember = mb.ID
		m.members[mb.ID] = mb
	}
	if version >= snapshotVersionAuth && d.err == nil {
		restoreAuth(&d, m)
	}
	if version >= snapshotVersionMembership && d.err == nil {
		restoreMembership(&d, m)
		for _, id := range m.removed {
			if _, ok := m.members[id]; ok && d.err == nil {
				d.fail(fmt.Sprintf("removed member %d is a member", id))
			}
		}
	}
	if version >= snapshotVersionShared && d.err == nil {
		restoreSemaphores(&d, m)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}

	// An ephemeral session exists for its bound lock only: it holds or
	// waits for that lock and nothing else, and takes no part in elections.
	for _, s := range m.deadlines {
		if s.bound == "" {
			continue
		}
		if len(s.held)+len(s.waiting) != 1 || !(has(s.held, s.bound) || has(s.waiting, s.bound)) ||
			len(s.leads)+len(s.runs)+len(s.permits)+len(s.semWaiting) != 0 {
			return nil, fmt.Errorf("%w: ephemeral session %d not on its lock %q", ErrCorrupt, s.id, s.bound)
		}
	}
	for i, s := range m.deadlines {
		s.pos = i
	}
	heap.Init(&m.deadlines)
	return m, nil
}

// restoreHolds reads what encoder.holds wrote for what (a lock's shared
// holders, a semaphore's permits): sessions that exist, tokens of applied
// entries in grant order; take records a hold on the session and reports
// false when it holds already.
func restoreHolds(d *decoder, m *Machine, what string, take func(s *session) bool) []hold {
	var hs []hold
	for i, n := 0, d.count(what+" holders"); i < n && d.err == nil; i++ {
		h := hold{session: d.uvarint("holder"), token: d.uvarint("holder token"), since: d.varint("holder since")}
		s := m.sessions[h.session]
		switch {
		case d.err != nil:
		case s == nil:
			d.fail(fmt.Sprintf("%s held by missing session %d", what, h.session))
		case h.token == 0 || h.token > m.applied || (i > 0 && h.token < hs[i-1].token):
			d.fail(fmt.Sprintf("%s holder %d token %d", what, h.session, h.token))
		case !take(s):
			d.fail(fmt.Sprintf("%s holder %d twice", what, h.session))
		}
		hs = append(hs, h)
	}
	return hs
}

// restoreSemaphores reads the semaphores Encode wrote: sorted by name,
// with a limit, 1 to limit holders, and waiters only when every permit is
// held.
func restoreSemaphores(d *decoder, m *Machine) {
	var prev string
	for i, n := 0, d.count("semaphores"); i < n && d.err == nil; i++ {
		name := d.str("semaphore name")
		limit := d.uvarint("semaphore limit")
		if d.err == nil && (name == "" || (i > 0 && name <= prev) || limit == 0 || limit > MaxSemaphoreLimit) {
			d.fail(fmt.Sprintf("semaphore %q out of order or with limit %d", name, limit))
		}
		prev = name
		what := "semaphore " + strconv.Quote(name)
		r := semRec{limit: uint32(limit)}
		r.holders = restoreHolds(d, m, what, func(s *session) bool {
			if has(s.permits, name) {
				return false
			}
			if s.permits == nil {
				s.permits = make(map[string]struct{})
			}
			s.permits[name] = struct{}{}
			return true
		})
		for j, nw := 0, d.count("semaphore waiters"); j < nw && d.err == nil; j++ {
			id := d.uvarint("waiter")
			since := d.varint("waiter since")
			s := m.sessions[id]
			switch {
			case d.err != nil:
			case s == nil:
				d.fail(fmt.Sprintf("%s waiter %d missing", what, id))
			case has(s.permits, name) || has(s.semWaiting, name):
				d.fail(fmt.Sprintf("%s waiter %d twice", what, id))
			default:
				if s.semWaiting == nil {
					s.semWaiting = make(map[string]struct{})
				}
				s.semWaiting[name] = struct{}{}
				r.queue = append(r.queue, waiter{session: id, since: since})
				m.waiters++
			}
		}
		if d.err == nil && (len(r.holders) == 0 || len(r.holders) > int(r.limit) || (len(r.queue) > 0 && !r.full())) {
			d.fail(fmt.Sprintf("%s with %d holders of %d and %d waiters", what, len(r.holders), r.limit, len(r.queue)))
		}
		m.sems.Set(name, r)
	}
}
