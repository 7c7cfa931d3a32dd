package linearize

import (
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// phase tells which part of a recorded operation a model operation is.
type phase uint8

const (
	whole        phase = iota
	unknownCall        // an Unknown write: its effect may happen from now on
	cancelCall         // a Cancelled wait: it may be granted from now on
	cancelReturn       // a Cancelled wait: whatever it was granted is released by now
)

// mop is one operation as the model sees it (porcupine's Operation.Input;
// the Output is an Output). It is never modified after partitioning.
type mop struct {
	Input
	sidx  int   // index of Session in the check's session table, -1 for none
	phase phase // whole, or one of the steps of an Unknown or Cancelled operation
	idx   int   // phase != whole: index in part.pending
	id    int   // the History id
	call  int64 // the call time as porcupine sees it
	// lo (unknownCall or cancelCall of a shared Acquire or TryAcquire, a
	// SemAcquire or a SemTryAcquire) is the greatest token shown by an
	// answer returned before its call: its token, were it granted, is >=
	// lo (see state).
	lo   uint64
	part *partInfo // the partition
}

// partInfo is what the model needs to know of a partition.
type partInfo struct {
	name    string        // `lock "a"`, `election "b"`, `semaphore "c"`
	ns      namespace     // the partition's namespace
	limit   int           // a semaphore's limit (every acquire's Input.Limit; 0 = none recorded)
	shared  bool          // a lock with shared acquires: a later grant may repeat the last token
	pending []*mop        // the Unknown writes and Cancelled waits (unknownCall, cancelCall), by idx
	lastRet map[int]int64 // session index to the latest return time of its operations in the partition
	// lastSeen is, by session index, the latest return time of the
	// partition's operations of the session or whose answer names it.
	lastSeen map[int]int64
	// minLo is, by session index, the least lo of the session's pending
	// shared grants and permits (see mop.lo).
	minLo map[int]uint64
}

// step is the nondeterministic step function: it appends to res every
// state that st may be in after operation p answered o (none: impossible).
//
// Three kinds of events happen unseen, between operations: a session dies
// (kill), an Unknown write takes effect or a Cancelled wait is granted
// (fire), and a Cancelled wait releases its grant. The model makes them
// happen lazily: only when the operation is impossible otherwise does it
// try it after such events (deaths of the holders the answer needs gone or
// of the operation's own session; the events that can help this
// operation, in every order, each state once). Making an event happen
// earlier than needed never helps: an operation that is possible both with
// and without the event commutes with it, or leaves a state from which
// everything possible after the event is still possible (the event can
// still happen later; the token of a shared grant or permit made unseen
// does not depend on when the model makes it happen, see state). The one
// exception, a Campaign that may be the retry of an earlier Unknown one
// (with its value instead of the new one), is tried both ways.
func step(res []state, st state, p *mop, o Output) []state {
	switch p.phase {
	case unknownCall, cancelCall:
		st.pend = bitAdd(st.pend, p.idx)
		res = append(res, st)
	case cancelReturn:
		for i := range st.n() {
			if st.at(i).via == p.idx+1 {
				st = st.removeAt(i)
				break
			}
		}
		st.pend = bitDel(st.pend, p.idx)
		res = append(res, st)
	default:
		res = explore(res, st, p, o, nil)
	}
	return res
}

// explore appends the states after p answered o, from st or from states
// reachable from it by firing pending writes; seen holds the states already
// explored in this step.
func explore(res []state, st state, p *mop, o Output, seen map[state]bool) []state {
	n := len(res)
	res = apply(res, st, p, o)
	if len(res) > n && !newLeadership(st, p, o) {
		return res
	}
	if len(res) == n {
		// After the death of p's session, or not: after the deaths the
		// answer needs, or the grants that fill a semaphore.
		for k, s := range [2]state{st, st.kill(p.sidx)} {
			if k == 1 {
				if p.sidx < 0 || !st.alive(p.sidx) {
					break
				}
				res = apply(res, s, p, o)
			}
			res = deaths(res, s, p, o)
			if o.Kind == Locked && p.part.ns == nsSemaphore {
				if f, ok := s.fill(p); ok {
					res = apply(res, f, p, o)
				}
			}
		}
	}
	vias := false
	for i := range st.n() {
		vias = vias || st.at(i).via != 0
	}
	if st.pend == "" && !vias {
		return res
	}
	if seen == nil {
		seen = map[state]bool{st: true}
	}
	try := func(next state) {
		if !seen[next] {
			seen[next] = true
			res = explore(res, next, p, o, seen)
		}
	}
	for i := range st.n() {
		if st.at(i).via != 0 {
			try(st.removeAt(i)) // the Cancelled wait that holds releases
		}
	}
	var fired []state
	for i := 0; i < 8*len(st.pend); i++ {
		if !bitIn(st.pend, i) {
			continue
		}
		e := p.part.pending[i]
		if !relevant(st, p, o, e) || shadowed(st, e) {
			continue
		}
		fired = st.fire(fired[:0], e, p, o)
		for _, next := range fired {
			try(next)
		}
	}
	return res
}

// deaths appends the states after p answered o from st after the deaths of
// the holders (other than p's session) that the answer needs gone: the
// holders in the way of a grant (for a full semaphore, any one of them);
// the holders that a read or a NotLeader answer does not show.
func deaths(res []state, st state, p *mop, o Output) []state {
	gone := func(keep func(h hold) bool) {
		if s := st.without(func(h hold) bool { return h.sess == p.Session || keep(h) }); s != st {
			res = apply(res, s, p, o)
		}
	}
	shown := func(h hold) bool { return shows(o, h.sess) }
	switch p.Kind {
	case Acquire, TryAcquire, SemAcquire, SemTryAcquire, Campaign:
		switch {
		case o.Kind == NotLeader && o.Session != 0, o.Kind == Locked && o.Holders != nil:
			gone(shown)
		case o.Kind != Granted && o.Kind != OK:
		case p.part.ns == nsSemaphore:
			if st.n() >= p.part.limit {
				for i := range st.n() {
					if h := st.at(i); h.sess != p.Session && !st.alike(i) {
						res = apply(res, st.drop(i), p, o)
					}
				}
			}
		case p.part.ns == nsLock && p.Shared:
			gone(func(h hold) bool { return h.shared })
		default:
			gone(func(hold) bool { return false })
		}
	case GetLock:
		if o.Holders == nil && o.Session == 0 {
			gone(func(h hold) bool { return h.shared })
		} else {
			gone(shown)
		}
	case GetLeader, GetSemaphore:
		gone(shown)
	case Proclaim, Resign:
		if o.Kind == NotLeader && o.Session != 0 {
			gone(shown)
		}
	}
	return res
}

// shows reports whether answer o shows session sess as a holder: in
// o.Holders, or as o.Session.
func shows(o Output, sess uint64) bool {
	if sess != 0 && o.Session == sess {
		return true
	}
	for _, h := range o.Holders {
		if h.Session == sess {
			return true
		}
	}
	return false
}

// newLeadership reports whether Campaign p answered o would start a new
// leadership in st. It would also be answered to a retry if one of the
// session's Unknown Campaigns (with another value) took effect before, so
// the model tries that too.
func newLeadership(st state, p *mop, o Output) bool {
	return p.phase == whole && p.Kind == Campaign && o.Kind == OK && !st.held(p.Session)
}

// relevant reports whether firing pending write e in st can help operation
// p answered o: a release or resignation of a holder (for an answer that
// needs it gone), a grant to a session that the answer needs as holder
// (or, for a lock's Locked without a holder named, to any other session;
// a semaphore that Locked needs full is filled by fill), a proclaim of
// the value the answer shows. Other writes need not happen before p: they
// can still happen later.
func relevant(st state, p *mop, o Output, e *mop) bool {
	switch e.Kind {
	case Release, SemRelease, Resign:
		return st.held(e.Session)
	case Proclaim:
		return st.held(e.Session) && o.Session != 0 && e.Value == o.Value &&
			(p.Kind == GetLeader || o.Kind == NotLeader)
	}
	switch {
	case p.Kind == GetLock || p.Kind == GetLeader || p.Kind == GetSemaphore || o.Kind == NotLeader ||
		(o.Kind == Locked && o.Holders != nil):
		return shows(o, e.Session)
	case o.Kind == Locked && p.part.ns == nsSemaphore:
		return e.Session == o.Session // fill does the rest
	case o.Kind == Locked:
		if o.Session != 0 {
			return e.Session == o.Session
		}
		return e.Session != p.Session
	case o.Kind == OK || o.Kind == Granted:
		return e.Session == p.Session
	}
	return false
}

// shadowed reports whether a pending Unknown write with a lower index has
// the same effect as Unknown write e: firing that one instead gives the same
// state. (Cancelled waits differ by their return.)
func shadowed(st state, e *mop) bool {
	if e.phase != unknownCall {
		return false
	}
	key := func(m *mop) Input {
		k := m.Input
		k.Name = ""
		switch k.Kind {
		case Acquire, TryAcquire:
			k.Kind, k.Value = Acquire, ""
		case SemAcquire, SemTryAcquire:
			k.Kind, k.Value = SemAcquire, ""
		case Campaign:
		default:
			return k
		}
		k.Token = 0
		return k
	}
	ke := key(e)
	for i := 0; i < e.idx; i++ {
		if m := e.part.pending[i]; bitIn(st.pend, i) && m.phase == unknownCall && m.lo == e.lo && key(m) == ke {
			return true
		}
	}
	return false
}

// retryOnly reports whether Granted answer o to p, which leaves every
// state of set unchanged, answers a retry wherever p may be linearized
// from now on: in every state, p's session holds with token o.Token, not
// from a Cancelled wait, with no release of it pending. The hold can then
// end only by the session's death (after which p is impossible) or a
// release answered OK, after which no grant has a token <= last (rel), so
// p is never a new grant: it only observes, and search may linearize it at
// once.
func retryOnly(set stateSet, p *mop, o Output) bool {
	if p.phase != whole || p.Kind == Campaign || o.Kind != Granted {
		return false
	}
	for _, st := range set {
		i := st.find(p.Session)
		if i < 0 {
			return false
		}
		if h := st.at(i); h.token != o.Token || h.via != 0 {
			return false
		}
		for j := 0; j < 8*len(st.pend); j++ {
			if !bitIn(st.pend, j) {
				continue
			}
			if e := p.part.pending[j]; !isGrant(e.Kind) && e.Session == p.Session {
				return false
			}
		}
	}
	return true
}

// apply appends to res the states st may be in after p answered o, without
// deaths other than those the operation itself causes.
func apply(res []state, st state, p *mop, o Output) []state {
	if o.Kind == SessionExpired {
		if st.alive(p.sidx) {
			return res
		}
		return append(res, st)
	}
	i := st.find(p.Session)
	self := i >= 0
	switch p.Kind {
	case Acquire, TryAcquire, SemAcquire, SemTryAcquire, Campaign:
		if self && p.part.ns == nsLock && st.at(i).shared != p.Shared {
			// The server refuses (mode_mismatch) a session that holds in
			// the other mode; a harness does not record that answer.
			return res
		}
		switch o.Kind {
		case Granted, OK:
			if !st.alive(p.sidx) {
				return res
			}
			if self {
				// A campaign by the leader proclaims its value (as etcd's
				// Campaign does); an acquire by a holder changes nothing.
				if s, ok := st.learn(p.Session, o.Token); ok {
					if p.Kind == Campaign {
						s.value = p.Value
					}
					res = append(res, s)
				}
				return res
			}
			if !st.room(p) || !st.tokenOK(p, o.Token) {
				return res
			}
			return append(res, st.grant(p, o.Token, 0))
		case Locked:
			if self || !st.blocked(p) {
				return res
			}
			s, ok := st.named(o)
			if ok && o.Holders != nil {
				s, ok = s.readAll(o.Holders, p.part.ns == nsLock)
			}
			if ok {
				res = append(res, s)
			}
			return res
		case NotLeader:
			if self {
				return res
			}
			if s, ok := st.matches(o); ok {
				res = append(res, s)
			}
			return res
		}
	case Release, SemRelease, Resign, Proclaim:
		switch o.Kind {
		case OK:
			s, ok := st.learn(p.Session, p.Token)
			if !ok {
				return res
			}
			if p.Kind == Proclaim {
				s.value = p.Value
				return append(res, s)
			}
			s = s.removeAt(i)
			s.rel = true
			return append(res, s)
		case NotHolder, NotLeader:
			// A holder with an unknown token might hold another one: the
			// model does not remember "not this token".
			if self && st.at(i).token == p.Token {
				return res
			}
			if o.Kind == NotHolder {
				return append(res, st)
			}
			if s, ok := st.matches(o); ok {
				res = append(res, s)
			}
			return res
		}
	case GetLock:
		if o.Value != "" || (o.Session == 0 && o.Token != 0) {
			return res
		}
		if o.Holders != nil {
			if o.Session != 0 && (len(o.Holders) != 1 || o.Holders[0].Session != o.Session || o.Holders[0].Shared ||
				(o.Token != 0 && o.Token != o.Holders[0].Token)) {
				return res // Session/Token are not the exclusive holder Holders shows
			}
			if s, ok := st.readAll(o.Holders, true); ok {
				res = append(res, s)
			}
			return res
		}
		if o.Session == 0 {
			if !st.exclusive() {
				res = append(res, st)
			}
			return res
		}
		if st.n() != 1 || st.at(0).shared || st.at(0).sess != o.Session {
			return res
		}
		if s, ok := st.learn(o.Session, o.Token); ok {
			res = append(res, s)
		}
		return res
	case GetLeader:
		if o.Session == 0 {
			if st.n() == 0 && o.Token == 0 && o.Value == "" {
				res = append(res, st)
			}
			return res
		}
		if st.value != o.Value {
			return res
		}
		if s, ok := st.learn(o.Session, o.Token); ok {
			res = append(res, s)
		}
		return res
	case GetSemaphore:
		if o.Limit != 0 && p.part.limit != 0 && o.Limit != p.part.limit {
			return res
		}
		if s, ok := st.readAll(o.Holders, false); ok {
			res = append(res, s)
		}
		return res
	case KeepAlive:
		if st.alive(p.sidx) {
			res = append(res, st)
		}
		return res
	case CloseSession:
		if st.alive(p.sidx) {
			res = append(res, st.kill(p.sidx))
		}
		return res
	}
	return res // an answer the kind cannot give (refused before checking)
}

// fire appends the states after pending effect e happened now (and no more
// later), to help operation p answered o; none if it is impossible: the
// grant of an Unknown Acquire, TryAcquire, SemAcquire, SemTryAcquire or
// Campaign or of a Cancelled wait (with an unknown token; the holders in
// the way die first: every holder for an exclusive grant or a leadership,
// the exclusive holder for a shared grant, any one holder of a full
// semaphore that the answer does not show, or all of them for an answer
// that shows every holder), the release of an Unknown Release, SemRelease
// or Resign, the value of an Unknown Proclaim.
func (s state) fire(res []state, e, p *mop, o Output) []state {
	s.pend = bitDel(s.pend, e.idx)
	switch e.Kind {
	case Acquire, TryAcquire, SemAcquire, SemTryAcquire, Campaign:
		if s.held(e.Session) {
			if e.Kind == Campaign && e.phase == unknownCall && s.value != e.Value {
				s.value = e.Value // the leader's campaign proclaims its value
				return append(res, s)
			}
			return res
		}
		if !s.alive(e.sidx) {
			return res
		}
		via := 0
		if e.phase == cancelCall {
			via = e.idx + 1
		}
		switch {
		case e.part.ns == nsSemaphore:
			if s.n() < e.part.limit {
				break
			}
			if p.Kind == GetSemaphore || o.Holders != nil {
				if s = s.without(func(h hold) bool { return shows(o, h.sess) }); s.n() < e.part.limit {
					res = append(res, s.grant(e, 0, via))
				}
				return res
			}
			for i := range s.n() {
				if h := s.at(i); !shows(o, h.sess) && !s.alike(i) {
					res = append(res, s.drop(i).grant(e, 0, via))
				}
			}
			return res
		case e.part.ns == nsLock && e.Shared:
			s = s.without(func(h hold) bool { return h.shared })
		default:
			s = s.without(func(hold) bool { return false })
		}
		return append(res, s.grant(e, 0, via))
	case Release, SemRelease, Resign, Proclaim:
		i := s.find(e.Session)
		s, ok := s.learn(e.Session, e.Token)
		if !ok {
			return res
		}
		if e.Kind == Proclaim {
			s.value = e.Value
			return append(res, s)
		}
		return append(res, s.removeAt(i))
	}
	return res
}

// prune forgets what cannot matter after operation p, so that equivalent
// states compare equal: pending grants to a dead session; pending releases
// and proclaims of a token that is neither the session's (as far as known)
// nor still to be granted to it; the deaths of sessions whose operations
// all returned before p's call (they are all linearized before p, and a
// dead session holds nothing and has nothing pending); and who holds, when
// it is a session with nothing pending that no operation after p shows
// (every operation of it or naming it returned before p's call): such a
// holder becomes a ghost (see state.ghost).
func (s state) prune(p *mop) state {
	pi := p.part
	for i := 0; i < 8*len(s.pend); i++ {
		if !bitIn(s.pend, i) {
			continue
		}
		e := pi.pending[i]
		var dead bool
		if isGrant(e.Kind) {
			dead = !s.alive(e.sidx)
		} else {
			dead = !s.mayHold(e.Session, e.Token) && !s.mayGrant(pi, e.sidx, e.Token)
		}
		if dead {
			s.pend = bitDel(s.pend, i)
		}
	}
	for i := 0; i < 8*len(s.dead); i++ {
		if r, ok := pi.lastRet[i]; ok && bitIn(s.dead, i) && r < p.call {
			s.dead = bitDel(s.dead, i)
		}
	}
	for i := s.n() - 1; i >= 0; i-- {
		if h := s.at(i); h.sidx >= 0 && pi.lastSeen[h.sidx] < p.call && !s.pending(pi, h.sidx) {
			s = s.ghost(i)
		}
	}
	return s
}

// pending reports whether session sidx has a pending effect.
func (s state) pending(pi *partInfo, sidx int) bool {
	for i := 0; i < 8*len(s.pend); i++ {
		if bitIn(s.pend, i) && pi.pending[i].sidx == sidx {
			return true
		}
	}
	return false
}

// mayHold reports whether session sess may hold with token tok.
func (s state) mayHold(sess, tok uint64) bool {
	i := s.find(sess)
	if i < 0 {
		return false
	}
	h := s.at(i)
	if h.token != 0 {
		return h.token == tok
	}
	return h.lo <= tok && tok <= h.hi
}

// mayGrant reports whether session sidx may still be granted token tok in
// partition pi: a later grant has a token >= last (> last if all grants of
// the partition are exclusive, or after a release), and an unseen shared
// grant or permit one >= its lo.
func (s state) mayGrant(pi *partInfo, sidx int, tok uint64) bool {
	if tok > s.last || (tok == s.last && !s.rel && (pi.shared || pi.ns == nsSemaphore)) {
		return true
	}
	lo, ok := pi.minLo[sidx]
	return ok && lo <= tok
}

// stateSet is the model state porcupine sees: the set of states the
// nondeterministic model may be in, sorted, without duplicates and without
// a state that another one covers. (Our own power-set construction rather
// than porcupine's NondeterministicModel.ToModel, for the covering.)
type stateSet []state

// setStep steps every state of the set and reduces the union.
func setStep(set stateSet, p *mop, o Output) stateSet {
	var next []state
	for _, st := range set {
		n := len(next)
		next = step(next, st, p, o)
		for i := n; i < len(next); i++ {
			next[i] = next[i].prune(p)
		}
	}
	return reduce(next)
}

// reduce sorts states and drops duplicates and the states another covers.
func reduce(states []state) stateSet {
	slices.SortFunc(states, compareStates)
	states = slices.Compact(states)
	if len(states) < 2 {
		return states
	}
	out := make(stateSet, 0, len(states))
	for i, b := range states {
		covered := false
		for j, a := range states {
			if i != j && a.covers(b) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, b)
		}
	}
	return out
}

// newModel returns the model of one lock, election or semaphore; sessions
// is the check's session table (index to ID), used only to describe
// states.
func newModel(sessions []uint64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return stateSet{{}} },
		Step: func(st, in, out any) (bool, any) {
			next := setStep(st.(stateSet), in.(*mop), out.(Output))
			return len(next) > 0, next
		},
		Equal: func(a, b any) bool { return slices.Equal(a.(stateSet), b.(stateSet)) },
		Hash: func(st any) uint64 {
			h := uint64(len(st.(stateSet)))
			for _, s := range st.(stateSet) {
				h = h*31 + s.hash()
			}
			return h
		},
		DescribeOperation:         describeOperation,
		DescribeOperationMetadata: describeMetadata,
		DescribeState: func(st any) string {
			set := st.(stateSet)
			d := make([]string, len(set))
			for i, s := range set {
				d[i] = describeState(s, sessions)
			}
			return "{" + strings.Join(d, " | ") + "}"
		},
	}
}
