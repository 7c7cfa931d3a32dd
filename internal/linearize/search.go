package linearize

import (
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// verdict is the outcome of search.
type verdict int

const (
	linearizable verdict = iota
	illegal
	timedOut
)

// search decides whether ops (one partition) are linearizable under model,
// within timeout (0: no limit). It is the depth-first search with a cache
// of (linearized operations, state) pairs that porcupine uses (Wing & Gong,
// Lowe), plus one reduction that porcupine cannot know of: an observation
// (a read, a failed or refused operation, a KeepAlive, an acquire that
// can only be a retry: see retryOnly) that is possible in the current
// state and leaves it unchanged is linearized at once, and nothing else is
// tried in its place. That is sound because such an operation only ever
// restricts the state (or refines what the model does not know): if a
// linearization exists that places it later, moving it to the front gives
// another. Unknown and Cancelled calls (which only make effects possible
// from then on) are committed the same way. On histories of a contended
// lock it makes proving a violation orders of magnitude faster.
//
// It returns the verdict and the longest prefix it could linearize (History
// ids are in the mops; the operations are ops' elements).
func search(model porcupine.Model, ops []porcupine.Operation, timeout time.Duration) (verdict, []*porcupine.Operation) {
	n := len(ops)
	if n == 0 {
		return linearizable, nil
	}
	// Entries sorted by time, calls before returns at equal times, in a
	// doubly linked list behind a sentinel.
	type entry struct {
		op         int
		ret        bool
		prev, next *entry
		match      *entry // a call's return entry
	}
	es := make([]*entry, 0, 2*n)
	calls := make([]*entry, n)
	for i := range ops {
		c := &entry{op: i}
		r := &entry{op: i, ret: true}
		c.match = r
		calls[i] = c
		es = append(es, c, r)
	}
	at := func(e *entry) int64 {
		if e.ret {
			return ops[e.op].Return
		}
		return ops[e.op].Call
	}
	sort.SliceStable(es, func(i, j int) bool {
		ti, tj := at(es[i]), at(es[j])
		if ti != tj {
			return ti < tj
		}
		return !es[i].ret && es[j].ret
	})
	head := &entry{op: -1}
	prev := head
	for _, e := range es {
		prev.next, e.prev = e, prev
		prev = e
	}
	lift := func(c *entry) {
		c.prev.next = c.next
		if c.next != nil {
			c.next.prev = c.prev
		}
		r := c.match
		r.prev.next = r.next
		if r.next != nil {
			r.next.prev = r.prev
		}
	}
	unlift := func(c *entry) {
		r := c.match
		r.prev.next = r
		if r.next != nil {
			r.next.prev = r
		}
		c.prev.next = c
		if c.next != nil {
			c.next.prev = c
		}
	}

	type frame struct {
		op     int
		state  any // the state before op
		commit bool
	}
	type cached struct {
		lin   bitset
		state any
	}
	cache := map[uint64][]cached{}
	seen := func(lin bitset, st any) bool {
		h := lin.hash() ^ model.Hash(st)
		for _, c := range cache[h] {
			if c.lin.equal(lin) && model.Equal(c.state, st) {
				return true
			}
		}
		cache[h] = append(cache[h], cached{lin.clone(), st})
		return false
	}

	// step memoizes model.Step: the search meets the same operation in
	// the same state again and again (after backtracking, and while
	// other operations that leave the state unchanged are linearized).
	type memoKey struct {
		op int
		h  uint64
	}
	type memoVal struct {
		state, next any
		ok          bool
	}
	memo := map[memoKey][]memoVal{}
	step := func(state any, op int) (bool, any) {
		k := memoKey{op, model.Hash(state)}
		for _, v := range memo[k] {
			if model.Equal(v.state, state) {
				return v.ok, v.next
			}
		}
		ok, next := model.Step(state, ops[op].Input, ops[op].Output)
		memo[k] = append(memo[k], memoVal{state, next, ok})
		return ok, next
	}

	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	lin := newBitset(n)
	state := model.Init()
	var stack []frame
	var longest []int
	record := func() {
		if len(stack) > len(longest) {
			longest = longest[:0]
			for _, f := range stack {
				longest = append(longest, f.op)
			}
		}
	}
	result := func(v verdict) (verdict, []*porcupine.Operation) {
		record()
		out := make([]*porcupine.Operation, len(longest))
		for i, op := range longest {
			out[i] = &ops[op]
		}
		return v, out
	}
	// commitable: an operation that search may linearize at once when it
	// leaves the state unchanged; or a call that only makes effects
	// possible.
	commitable := func(op int) bool {
		m := ops[op].Input.(*mop)
		switch m.phase {
		case unknownCall, cancelCall:
			return true
		case whole:
		default:
			return false
		}
		switch ops[op].Output.(Output).Kind {
		case Locked, NotHolder, NotLeader, SessionExpired, Granted:
			return true // Granted: if retryOnly
		}
		switch m.Kind {
		case GetLock, GetLeader, GetSemaphore, KeepAlive:
			return true
		}
		return false
	}
	// push linearizes op (its call entry c) from state into next.
	push := func(c *entry, next any, commit bool) {
		stack = append(stack, frame{op: c.op, state: state, commit: commit})
		state = next
		lift(c)
	}

	steps := 0
	node := head.next
	fresh := true // node is the first candidate of a node of the search tree
	for head.next != nil {
		if steps++; steps%1024 == 1 && !deadline.IsZero() && time.Now().After(deadline) {
			return result(timedOut)
		}
		if fresh {
			fresh = false
			// Commit to an observation if one is possible here.
			committed, deadEnd := false, false
			for e := head.next; e != nil && !e.ret; e = e.next {
				if !commitable(e.op) {
					continue
				}
				ok, next := step(state, e.op)
				m, o := ops[e.op].Input.(*mop), ops[e.op].Output.(Output)
				if !ok || (m.phase == whole && !model.Equal(next, state)) ||
					(o.Kind == Granted && !retryOnly(state.(stateSet), m, o)) {
					continue
				}
				lin.set(e.op)
				if seen(lin, next) {
					lin.clear(e.op)
					// Already explored, and failed: so does this node.
					deadEnd = true
					break
				}
				push(e, next, true)
				node, fresh, committed = head.next, true, true
				break
			}
			if deadEnd {
				goto backtrack
			}
			if committed {
				continue
			}
		}
		if node != nil && !node.ret {
			ok, next := step(state, node.op)
			if ok {
				lin.set(node.op)
				if !seen(lin, next) {
					push(node, next, false)
					node, fresh = head.next, true
					continue
				}
				lin.clear(node.op)
			}
			node = node.next
			continue
		}
	backtrack:
		// A return entry (or the end of the candidates): backtrack.
		record()
		for {
			if len(stack) == 0 {
				return result(illegal)
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			state = f.state
			lin.clear(f.op)
			unlift(calls[f.op])
			if !f.commit {
				node = calls[f.op].next
				break
			}
			// A committed observation was the only choice at its node.
		}
	}
	return result(linearizable)
}

// bitset is a set of small non-negative ints.
type bitset []uint64

func newBitset(n int) bitset         { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)           { b[i/64] |= 1 << (i % 64) }
func (b bitset) clear(i int)         { b[i/64] &^= 1 << (i % 64) }
func (b bitset) clone() bitset       { return slices.Clone(b) }
func (b bitset) equal(c bitset) bool { return slices.Equal(b, c) }

func (b bitset) hash() uint64 {
	h := uint64(14695981039346656037)
	for _, w := range b {
		h ^= w
		h *= 1099511628211
	}
	return h
}
