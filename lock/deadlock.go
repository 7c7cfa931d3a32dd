package lock

import (
	"fmt"
	"strings"
)

// deadlockVersion is the cluster version from which Apply refuses a wait
// that would deadlock: every member must apply the rule alike, so it
// waits until every member's build knows it.
const deadlockVersion = 5

// deadlock reports whether session s waiting for lock name, held by
// session holder, would close a cycle in the wait-for graph, and then sets
// the result to CodeDeadlock with the cycle in Reason (nothing changes).
//
// A waiter waits for the lock's holder and for every waiter ahead of it in
// the queue: with FIFO grants, each of those holds the lock before it. So
// the graph has an edge from a waiter to each of them, and a grant never
// adds one (the waiters behind the new holder had an edge to it already):
// refusing the waits that close a cycle keeps the graph acyclic, and every
// wait that queues can be granted by releases alone. Every hold is
// exclusive: a cycle cannot end unless one of its sessions gives up a
// wait or a hold, so the wait is refused at once instead of timing out.
//
// The search visits each session at most once: O(sessions and queue places
// reachable from the lock), and only for a wait that would queue.
func (a *applier) deadlock(s *session, name string, holder uint64) bool {
	m := a.m
	type step struct {
		from  uint64 // a session that waits for lock
		lock  string
		to    uint64 // the lock's holder, or a waiter ahead of from
		ahead bool   // to is ahead of from in the queue (not the holder)
	}
	visited := map[uint64]bool{}
	var path []step
	// successors calls fn for each session that from, waiting for lock w,
	// waits for: the holder, then the waiters ahead of it.
	successors := func(from uint64, w string, fn func(st step) bool) bool {
		l, ok := m.locks.Get(w)
		if !ok {
			return false
		}
		if l.holder != 0 && fn(step{from, w, l.holder, false}) {
			return true
		}
		for _, q := range l.queue {
			if q.session == from {
				break
			}
			if fn(step{from, w, q.session, true}) {
				return true
			}
		}
		return false
	}
	var visit func(st step) bool
	visit = func(st step) bool {
		path = append(path, st)
		if st.to == s.id {
			return true
		}
		if !visited[st.to] {
			visited[st.to] = true
			if x := m.sessions[st.to]; x != nil {
				for _, w := range sortedKeys(x.waiting) {
					if successors(x.id, w, visit) {
						return true
					}
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if !successors(s.id, name, visit) {
		return false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "session %d waiting for lock %q would deadlock: ", s.id, name)
	for i, st := range path {
		if i > 0 {
			b.WriteString(", ")
		}
		who := fmt.Sprintf("session %d", st.to)
		if st.to == s.id {
			who = "this session"
		}
		if st.ahead {
			fmt.Fprintf(&b, "session %d waits for lock %q behind %s", st.from, st.lock, who)
		} else {
			fmt.Fprintf(&b, "session %d waits for lock %q held by %s", st.from, st.lock, who)
		}
	}
	b.WriteString(": release a lock or give up a wait to break the cycle")
	a.res = Result{Code: CodeDeadlock, Session: s.id, Reason: b.String()}
	_ = holder
	return true
}
