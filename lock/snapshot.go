package lock

import (
	"container/heap"
	"fmt"
	"slices"
)

// snapshotVersion is the format version of snapshots.
const snapshotVersion byte = 1

// Snapshot serialises the whole state: a version byte, then the applied
// index, clock and last command term, the sessions sorted by ID, the locks
// sorted by name (holder, token, grant time and queue in order), the
// elections sorted by name (leader, term, election time, value and
// candidates in queue order with their values) and the members sorted by ID. Machines with equal state give byte-identical
// snapshots. The result is a fresh slice owned by the caller.
func (m *Machine) Snapshot() []byte {
	e := encoder{b: make([]byte, 0, 64+len(m.sessions)*24+len(m.locks)*32)}
	e.byte(snapshotVersion)
	e.uvarint(m.applied)
	e.varint(m.clock)
	e.uvarint(m.term)

	ids := make([]uint64, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		s := m.sessions[id]
		e.uvarint(s.id)
		e.str(s.owner)
		e.varint(s.ttl)
		e.varint(s.deadline)
		e.str(s.bound)
	}

	names := make([]string, 0, len(m.locks))
	for name := range m.locks {
		names = append(names, name)
	}
	slices.Sort(names)
	e.uvarint(uint64(len(names)))
	for _, name := range names {
		l := m.locks[name]
		e.str(l.name)
		e.uvarint(l.holder.id)
		e.uvarint(l.token)
		e.varint(l.since)
		e.uvarint(uint64(len(l.queue)))
		for _, w := range l.queue {
			e.uvarint(w.s.id)
			e.varint(w.since)
		}
	}

	names = names[:0]
	for name := range m.elections {
		names = append(names, name)
	}
	slices.Sort(names)
	e.uvarint(uint64(len(names)))
	for _, name := range names {
		el := m.elections[name]
		e.str(el.name)
		e.uvarint(el.leader.id)
		e.uvarint(el.term)
		e.varint(el.since)
		e.str(el.value)
		e.uvarint(uint64(len(el.queue)))
		for _, c := range el.queue {
			e.uvarint(c.s.id)
			e.varint(c.since)
			e.str(c.value)
		}
	}

	members := m.Members()
	e.uvarint(uint64(len(members)))
	for _, mb := range members {
		e.uvarint(mb.ID)
		e.str(mb.PeerURL)
		e.str(mb.ClientURL)
	}
	return e.b
}

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
	if b[0] != snapshotVersion {
		return nil, fmt.Errorf("%w %d", ErrUnknownVersion, b[0])
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
		s := newSession(id, owner, ttl, deadline, d.str("bound"))
		switch {
		case d.err != nil:
		case s.id <= prevID || s.id > m.applied:
			d.fail(fmt.Sprintf("session id %d out of order", s.id))
		case s.ttl <= 0 || s.ttl > MaxTTL:
			d.fail(fmt.Sprintf("session %d ttl %d", s.id, s.ttl))
		}
		prevID = s.id
		m.sessions[s.id] = s
		m.deadlines = append(m.deadlines, s)
	}

	var prevName string
	for i, n := 0, d.count("locks"); i < n && d.err == nil; i++ {
		l := &lockState{name: d.str("lock name")}
		holder := d.uvarint("holder")
		l.token = d.uvarint("token")
		l.since = d.varint("since")
		if d.err != nil {
			break
		}
		if l.name == "" || (i > 0 && l.name <= prevName) {
			d.fail(fmt.Sprintf("lock %q out of order", l.name))
			break
		}
		prevName = l.name
		if l.holder = m.sessions[holder]; l.holder == nil {
			d.fail(fmt.Sprintf("lock %q held by missing session %d", l.name, holder))
			break
		}
		if l.token == 0 || l.token > m.applied {
			d.fail(fmt.Sprintf("lock %q token %d", l.name, l.token))
			break
		}
		l.holder.held[l.name] = struct{}{}
		for j, nw := 0, d.count("waiters"); j < nw && d.err == nil; j++ {
			id := d.uvarint("waiter")
			since := d.varint("waiter since")
			s := m.sessions[id]
			switch {
			case d.err != nil:
			case s == nil:
				d.fail(fmt.Sprintf("lock %q waiter %d missing", l.name, id))
			case s == l.holder || has(s.waiting, l.name):
				d.fail(fmt.Sprintf("lock %q waiter %d twice", l.name, id))
			default:
				s.waiting[l.name] = struct{}{}
				l.queue = append(l.queue, waiter{s: s, since: since})
			}
		}
		m.locks[l.name] = l
	}

	prevName = ""
	for i, n := 0, d.count("elections"); i < n && d.err == nil; i++ {
		e := &election{name: d.str("election name")}
		leader := d.uvarint("leader")
		e.term = d.uvarint("term")
		e.since = d.varint("since")
		e.value = d.str("value")
		if d.err != nil {
			break
		}
		if e.name == "" || (i > 0 && e.name <= prevName) {
			d.fail(fmt.Sprintf("election %q out of order", e.name))
			break
		}
		prevName = e.name
		if e.leader = m.sessions[leader]; e.leader == nil {
			d.fail(fmt.Sprintf("election %q led by missing session %d", e.name, leader))
			break
		}
		if e.term == 0 || e.term > m.applied || len(e.value) > MaxValueSize {
			d.fail(fmt.Sprintf("election %q term %d value length %d", e.name, e.term, len(e.value)))
			break
		}
		e.leader.leads[e.name] = struct{}{}
		for j, nc := 0, d.count("candidates"); j < nc && d.err == nil; j++ {
			id := d.uvarint("candidate")
			since := d.varint("candidate since")
			value := d.str("candidate value")
			s := m.sessions[id]
			switch {
			case d.err != nil:
			case s == nil:
				d.fail(fmt.Sprintf("election %q candidate %d missing", e.name, id))
			case s == e.leader || has(s.runs, e.name):
				d.fail(fmt.Sprintf("election %q candidate %d twice", e.name, id))
			case len(value) > MaxValueSize:
				d.fail(fmt.Sprintf("election %q candidate %d value length %d", e.name, id, len(value)))
			default:
				s.runs[e.name] = struct{}{}
				e.queue = append(e.queue, candidate{s: s, value: value, since: since})
			}
		}
		m.elections[e.name] = e
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
			len(s.leads)+len(s.runs) != 0 {
			return nil, fmt.Errorf("%w: ephemeral session %d not on its lock %q", ErrCorrupt, s.id, s.bound)
		}
	}
	for i, s := range m.deadlines {
		s.pos = i
	}
	heap.Init(&m.deadlines)
	return m, nil
}
