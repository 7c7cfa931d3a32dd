package lock

import (
	"fmt"
	"slices"
)

// electionRec is one election, stored by value in Machine.elections under
// its name. An election exists while it has a leader (leader != 0); its
// queue is non-empty only while it has a leader: when the leader leaves,
// the head candidate leads at once, and an election with neither is
// deleted. queue is shared with snapshot captures: it is replaced, never
// changed in place (see without).
type electionRec struct {
	leader uint64 // session ID
	value  string
	term   uint64 // index of the entry that elected the leader
	since  int64
	queue  []candidate
}

// candidate is one place in an election's queue.
type candidate struct {
	session uint64
	value   string
	since   int64
}

// leaderOf describes e's leader, nil for a nil e.
func (m *Machine) leaderOf(e *electionRec) *Leader {
	if e == nil || e.leader == 0 {
		return nil
	}
	return &Leader{Session: e.leader, Owner: m.sessions[e.leader].owner, Value: e.value, Term: e.term, Since: e.since}
}

// election returns a pointer to a copy of election name, nil if it does
// not exist.
func (m *Machine) election(name string) *electionRec {
	e, ok := m.elections.Get(name)
	if !ok {
		return nil
	}
	return &e
}

// elect makes s the leader of e (named name) with value and this entry's
// index as term. The caller stores e.
func (a *applier) elect(name string, e *electionRec, s *session, value string) {
	e.leader, e.value, e.term, e.since = s.id, value, a.index, a.m.clock
	s.leads[name] = struct{}{}
	a.emitValue(EventElected, s.id, name, e.term, value)
}

// stepDown ends the leadership of election name's leader with the event
// left (resigned or leader_expired) and elects the head candidate, or
// deletes the election with a no_leader event when nobody waits.
func (a *applier) stepDown(name string, left EventType) {
	m := a.m
	e, ok := m.elections.Get(name)
	if !ok || e.leader == 0 {
		panic(fmt.Sprintf("lock: step down in election %q without leader", name))
	}
	l := m.sessions[e.leader]
	a.emit(left, l.id, name, e.term)
	delete(l.leads, name)
	e.leader, e.value, e.term, e.since = 0, "", 0, 0
	if len(e.queue) == 0 {
		m.elections.Delete(name)
		a.emit(EventNoLeader, 0, name, 0)
		return
	}
	c := e.queue[0]
	e.queue = popped(e.queue)
	s := m.sessions[c.session]
	delete(s.runs, name)
	a.elect(name, &e, s, c.value)
	m.elections.Set(name, e)
}

// withdraw removes candidate s from the queue of election name.
func (a *applier) withdraw(name string, s *session) {
	m := a.m
	e, _ := m.elections.Get(name)
	i := slices.IndexFunc(e.queue, func(c candidate) bool { return c.session == s.id })
	if i < 0 {
		panic(fmt.Sprintf("lock: session %d not a candidate in %q", s.id, name))
	}
	e.queue = without(e.queue, i)
	m.elections.Set(name, e)
	delete(s.runs, name)
	a.emit(EventCandidateLeft, s.id, name, 0)
}

func (a *applier) campaign(c *Command) {
	m := a.m
	a.res.Session = c.Session
	s, ok := m.sessions[c.Session]
	if !ok {
		a.res.Code = CodeSessionNotFound
		return
	}
	e, exists := m.elections.Get(c.Name)
	// Growth (a new election, or a new place in its queue) within the
	// quotas; a retry or a try does not grow.
	if !exists || (c.Wait && e.leader != s.id && !has(s.runs, c.Name)) {
		if a.quota(len(s.leads)+len(s.runs), m.Limits().ElectionsPerSession,
			fmt.Sprintf("session %d leads or runs in too many elections (elections_per_session)", s.id)) ||
			(!exists && a.noSpace(electionBytes)) ||
			(exists && a.quota(len(e.queue), m.Limits().WaitersPerLock, fmt.Sprintf("election %q has too many candidates (waiters_per_lock)", c.Name))) {
			a.res.Session = c.Session
			return
		}
	}
	switch {
	case !exists:
		a.elect(c.Name, &e, s, c.Value)
		m.elections.Set(c.Name, e)
		a.res.Code, a.res.Token = CodeOK, e.term
	case e.leader == s.id:
		// A retry, or a campaign with a new value by the leader: like etcd's
		// Campaign, the new value is proclaimed (no event when unchanged).
		a.proclaim(s.id, c.Name, e.term, c.Value)
		e, _ = m.elections.Get(c.Name)
	case has(s.runs, c.Name):
		// Already queued: it keeps its place; a campaign that waits (joins
		// again) takes the new value, a try changes nothing.
		if c.Wait {
			i := slices.IndexFunc(e.queue, func(cd candidate) bool { return cd.session == s.id })
			q := slices.Clone(e.queue)
			q[i].value = c.Value
			e.queue = q
			m.elections.Set(c.Name, e)
		}
		a.res.Code = CodeQueued
	case !c.Wait:
		a.res.Code = CodeNotLeader
	default:
		e.queue = appended(e.queue, candidate{session: s.id, value: c.Value, since: m.clock})
		m.elections.Set(c.Name, e)
		s.runs[c.Name] = struct{}{}
		a.emitValue(EventCandidateJoined, s.id, c.Name, 0, c.Value)
		a.res.Code = CodeQueued
	}
	a.res.Leader = m.leaderOf(&e)
}

// leads returns election name if session id leads it with term, else nil.
func (m *Machine) leads(id uint64, name string, term uint64) *electionRec {
	e := m.election(name)
	if e == nil || e.leader != id || e.term != term {
		return nil
	}
	return e
}

func (a *applier) proclaim(id uint64, name string, term uint64, value string) {
	m := a.m
	a.res.Session = id
	e := m.leads(id, name, term)
	if e == nil {
		a.res.Code, a.res.Leader = CodeNotLeader, m.leaderOf(m.election(name))
		return
	}
	if e.value != value {
		e.value = value
		m.elections.Set(name, *e)
		a.emitValue(EventProclaimed, id, name, e.term, value)
	}
	a.res.Code, a.res.Token, a.res.Leader = CodeOK, e.term, m.leaderOf(e)
}

func (a *applier) resign(id uint64, name string, term uint64) {
	m := a.m
	a.res.Session = id
	if term != 0 {
		if m.leads(id, name, term) == nil {
			a.res.Code, a.res.Leader = CodeNotLeader, m.leaderOf(m.election(name))
			return
		}
		a.stepDown(name, EventResigned)
		a.res.Code = CodeOK
		return
	}
	s, ok := m.sessions[id]
	if !ok {
		a.res.Code = CodeSessionNotFound
		return
	}
	a.res.Code = CodeOK
	switch {
	case has(s.runs, name):
		a.withdraw(name, s)
	case has(s.leads, name):
		e := m.election(name)
		a.res.Token, a.res.Leader = e.term, m.leaderOf(e)
	}
}
