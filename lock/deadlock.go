package lock

import (
	"fmt"
	"slices"
	"strings"
)

// deadlockVersion is the cluster version from which Apply refuses a wait
// that would deadlock: every member must apply the rule alike, so it
// waits until every member's build knows it.
const deadlockVersion = 5

// resource names a lock, or a semaphore when sem.
type resource struct {
	sem  bool
	name string
}

func (r resource) String() string {
	if r.sem {
		return fmt.Sprintf("semaphore %q", r.name)
	}
	return fmt.Sprintf("lock %q", r.name)
}

// The wait-for rule. A session that waits is blocked: it releases nothing
// until its waits are granted (a client blocked in Lock does nothing
// else). A waiter needs the holders of its lock or semaphore to release
// enough, and every waiter ahead of it to be granted first (FIFO). A
// session that waits for nothing may release everything it holds.
//
// deadlock decides whether session s, asking to wait in mode for res,
// could ever be granted: it reduces the part of the wait-for graph that
// the wait depends on (the sessions and queues reachable from it through
// holders and waiters ahead), as a deadlock detector for resources with
// several units does: sessions that wait for nothing release their holds,
// the queues grant what they can in FIFO order, sessions whose every wait
// is granted release in turn, until nothing changes. The wait is refused
// when it is not granted at the end and a cycle of blocked sessions runs
// through s: then no release by a session that can still act satisfies
// it. With exclusive holds only that is exactly "the wait closes a cycle";
// with shared holds and semaphore permits a cycle is not enough (another
// holder of a permit may release it): the wait must be in a knot. A wait
// that some release would grant is never refused. Refusing every such
// wait keeps the invariant that every queued wait can be granted, so the
// cycle found always passes through s.
//
// On refusal it sets the result to CodeDeadlock with the cycle in Reason
// (nothing changes). It costs O(sessions and queue places reachable from
// res), and runs only for a wait that would queue; O(1) for a session
// that holds nothing and waits for nothing else (it cannot close a
// cycle).
func (a *applier) deadlock(s *session, res resource, mode Mode) bool {
	// A session that holds nothing and waits for nothing else has no
	// edge into it (nobody waits for its holds, and its new place is the
	// queue's last), so no cycle runs through it: the search below would
	// answer false too. This is the common case under contention, a
	// client's next wait right after its release, and the search costs
	// O(the queue) on every member.
	if len(s.held) == 0 && len(s.permits) == 0 && len(s.waiting) == 0 && len(s.semWaiting) == 0 {
		return false
	}
	g := a.m.waitGraph(s, res, mode)
	if g.granted(s.id, res) {
		return false
	}
	path := g.cycle(s.id, res)
	if path == nil {
		return false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "session %d waiting for %v would deadlock: ", s.id, res)
	for i, st := range path {
		if i > 0 {
			b.WriteString(", ")
		}
		who := fmt.Sprintf("session %d", st.to)
		if st.to == s.id {
			who = "this session"
		}
		if st.ahead {
			fmt.Fprintf(&b, "session %d waits for %v behind %s", st.from, st.res, who)
		} else {
			fmt.Fprintf(&b, "session %d waits for %v held by %s", st.from, st.res, who)
		}
	}
	b.WriteString(": release a lock or give up a wait to break the cycle")
	a.res = Result{Code: CodeDeadlock, Session: s.id, Reason: b.String()}
	return true
}

// waitNode is one session of a wait graph.
type waitNode struct {
	id    uint64
	waits []resource // sorted: locks by name, then semaphores by name
	open  int        // waits not granted by the reduction
	free  bool       // every wait granted: it releases its holds
	holds []waitHold // what it holds (at the start or by the reduction)
}

// waitHold is a hold of a lock or semaphore by a waitNode.
type waitHold struct {
	r         *waitRes
	exclusive bool // an exclusive hold of a lock
}

// waitRes is one lock or semaphore of a wait graph.
type waitRes struct {
	key       resource
	exclusive uint64   // a lock's exclusive holder at the start
	holders   []uint64 // its shared holders, or a semaphore's, at the start
	limit     int      // a semaphore's limit; 0 for a lock
	delayed   bool
	queue     []waiter // with the new wait at its end when it is the asked one
	upto      int      // queue places the graph depends on
	next      int      // places the reduction granted
	busyX     int      // exclusive holds not released by the reduction
	busyS     int      // shared holds (permits) not released
}

type waitGraph struct {
	m     *Machine
	nodes map[uint64]*waitNode
	res   map[resource]*waitRes
}

// waitGraph builds the part of the wait-for graph that s waiting for res
// in mode depends on, and reduces it.
func (m *Machine) waitGraph(s *session, res resource, mode Mode) *waitGraph {
	g := &waitGraph{m: m, nodes: map[uint64]*waitNode{}, res: map[resource]*waitRes{}}
	var work []*waitNode
	node := func(id uint64) *waitNode {
		n, ok := g.nodes[id]
		if !ok {
			n = &waitNode{id: id}
			if x := m.sessions[id]; x != nil {
				for _, name := range sortedKeys(x.waiting) {
					n.waits = append(n.waits, resource{name: name})
				}
				for _, name := range sortedKeys(x.semWaiting) {
					n.waits = append(n.waits, resource{sem: true, name: name})
				}
			}
			g.nodes[id] = n
			work = append(work, n)
		}
		return n
	}
	me := node(s.id)
	me.waits = append(me.waits, res)
	for len(work) > 0 {
		n := work[len(work)-1]
		work = work[:len(work)-1]
		for _, key := range n.waits {
			r := g.load(key, s.id, res, mode)
			for _, h := range r.holderIDs() {
				node(h)
			}
			for i, w := range r.queue {
				if w.session == n.id {
					r.upto = max(r.upto, i+1)
					break
				}
				node(w.session)
			}
		}
	}
	// Reduce: free sessions release; queues grant; repeat.
	var ready []*waitRes
	for _, n := range g.nodes {
		n.open = len(n.waits)
	}
	for _, r := range g.res {
		for _, h := range r.holderIDs() {
			g.nodes[h].holds = append(g.nodes[h].holds, waitHold{r, r.exclusive == h})
		}
		ready = append(ready, r)
	}
	release := func(n *waitNode) {
		n.free = true
		for _, h := range n.holds {
			if h.exclusive {
				h.r.busyX--
			} else {
				h.r.busyS--
			}
			ready = append(ready, h.r)
		}
	}
	for _, n := range g.nodes {
		if n.open == 0 {
			release(n)
		}
	}
	for len(ready) > 0 {
		r := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		for r.next < r.upto && r.admits(r.queue[r.next].mode) {
			w := r.queue[r.next]
			r.next++
			n := g.nodes[w.session]
			x := w.mode == Exclusive && r.limit == 0
			if x {
				r.busyX++
			} else {
				r.busyS++
			}
			n.holds = append(n.holds, waitHold{r, x})
			if n.open--; n.open == 0 {
				release(n)
			}
		}
	}
	return g
}

// load returns the graph's copy of key, reading it from the machine the
// first time; the asked wait (of session me in mode) joins the end of its
// queue.
func (g *waitGraph) load(key resource, me uint64, asked resource, mode Mode) *waitRes {
	if r, ok := g.res[key]; ok {
		return r
	}
	r := &waitRes{key: key}
	if key.sem {
		sr, _ := g.m.sems.Get(key.name)
		r.limit = int(sr.limit)
		for _, h := range sr.holders {
			r.holders = append(r.holders, h.session)
		}
		r.queue = sr.queue
		r.busyS = len(r.holders)
	} else {
		l, _ := g.m.locks.Get(key.name)
		r.exclusive, r.delayed = l.holder, l.delayedUntil != 0
		for _, h := range l.shared {
			r.holders = append(r.holders, h.session)
		}
		r.queue = l.queue
		r.busyS = len(r.holders)
		if r.exclusive != 0 {
			r.busyX = 1
		}
	}
	if key == asked {
		r.queue = appended(r.queue, waiter{session: me, mode: mode})
	}
	g.res[key] = r
	return r
}

// holderIDs lists r's holders at the start.
func (r *waitRes) holderIDs() []uint64 {
	if r.exclusive != 0 {
		return []uint64{r.exclusive}
	}
	return r.holders
}

// admits reports whether the reduction may grant r to a waiter in mode. A
// lock-delay ends by itself: it blocks nobody for good.
func (r *waitRes) admits(mode Mode) bool {
	if r.limit > 0 {
		return r.busyS < r.limit
	}
	return r.busyX == 0 && (mode == Shared || r.busyS == 0)
}

// granted reports whether the reduction granted the wait of session id
// for key.
func (g *waitGraph) granted(id uint64, key resource) bool {
	r := g.res[key]
	return slices.IndexFunc(r.queue[:r.next], func(w waiter) bool { return w.session == id }) >= 0
}

// waitStep is one edge of a cycle: from waits for res, held by to, or
// behind to in its queue (ahead).
type waitStep struct {
	from  uint64
	res   resource
	to    uint64
	ahead bool
}

// cycle returns a path of edges between sessions the reduction left
// blocked, from id's wait for asked back to id, nil when there is none.
// Edges are visited in a fixed order (waits by name; the holders, then
// the waiters ahead in queue order), so every member finds the same one.
func (g *waitGraph) cycle(id uint64, asked resource) []waitStep {
	visited := map[uint64]bool{}
	var path []waitStep
	var visit func(from uint64) bool
	try := func(st waitStep) bool {
		n := g.nodes[st.to]
		if n == nil || n.free {
			return false
		}
		path = append(path, st)
		if st.to == id {
			return true
		}
		if !visited[st.to] {
			visited[st.to] = true
			if visit(st.to) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	visit = func(from uint64) bool {
		waits := g.nodes[from].waits
		if from == id {
			waits = []resource{asked}
		}
		for _, key := range waits {
			r := g.res[key]
			for _, h := range r.holderIDs() {
				if try(waitStep{from, key, h, false}) {
					return true
				}
			}
			for _, w := range r.queue {
				if w.session == from {
					break
				}
				if try(waitStep{from, key, w.session, true}) {
					return true
				}
			}
		}
		return false
	}
	if visit(id) {
		return path
	}
	return nil
}
