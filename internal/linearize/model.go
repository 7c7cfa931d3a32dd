package linearize

import (
	"cmp"
	"fmt"
	"math/bits"
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
	sidx  int       // index of Session in the check's session table, -1 for none
	phase phase     // whole, or one of the steps of an Unknown or Cancelled operation
	idx   int       // phase != whole: index in part.pending
	id    int       // the History id
	call  int64     // the call time as porcupine sees it
	part  *partInfo // the partition
}

// partInfo is what the model needs to know of a partition.
type partInfo struct {
	name    string        // `lock "a"`, `election "b"`
	pending []*mop        // the Unknown writes and Cancelled waits (unknownCall, cancelCall), by idx
	lastRet map[int]int64 // session index to the latest return time of its operations in the partition
}

// state is the state of one lock or one election in one branch of the
// nondeterministic model. It is comparable (==) and immutable: every method
// returns a changed copy.
//
// A lock and an election share it: holder is the lock's holder or the
// election's leader, token the grant's token or the leadership's term, value
// the leader's value ("" for a lock).
type state struct {
	holder uint64 // session; 0 = free / nobody leads
	hidx   int    // holder's index in the session table (meaningless when holder == 0)
	token  uint64 // holder's token; 0 = unknown (granted unseen), then > last
	value  string
	last   uint64 // every token granted later is > last
	via    int    // idx+1 of the Cancelled wait that holds (and must release by its return), 0 for none
	dead   string // bitset over session indices: the sessions deemed dead
	pend   string // bitset over partInfo.pending: the effects that may still happen (see fire)
}

func bitIn(set string, i int) bool {
	b := i >> 3
	return i >= 0 && b < len(set) && set[b]&(1<<(i&7)) != 0
}

func bitAdd(set string, i int) string {
	b := i >> 3
	buf := make([]byte, max(len(set), b+1))
	copy(buf, set)
	buf[b] |= 1 << (i & 7)
	return string(buf)
}

// bitDel clears bit i and trims trailing zero bytes, so that equal sets are
// equal strings.
func bitDel(set string, i int) string {
	if !bitIn(set, i) {
		return set
	}
	buf := []byte(set)
	buf[i>>3] &^= 1 << (i & 7)
	n := len(buf)
	for n > 0 && buf[n-1] == 0 {
		n--
	}
	return string(buf[:n])
}

func bitCount(set string) int {
	n := 0
	for i := 0; i < len(set); i++ {
		n += bits.OnesCount8(set[i])
	}
	return n
}

func (s state) alive(i int) bool { return !bitIn(s.dead, i) }

// held reports whether session sess holds the lock (leads the election).
func (s state) held(sess uint64) bool { return s.holder != 0 && s.holder == sess }

// free makes the lock free (nobody leads).
func (s state) free() state {
	if s.holder == 0 {
		return s
	}
	if s.token == 0 {
		// The unseen token t was > last; later ones are > t >= last+1.
		s.last++
	}
	s.holder, s.hidx, s.token, s.value, s.via = 0, 0, 0, "", 0
	return s
}

// kill deems session i dead: it holds nothing any more.
func (s state) kill(i int) state {
	if i < 0 {
		return s
	}
	if s.holder != 0 && s.hidx == i {
		s = s.free()
	}
	s.dead = bitAdd(s.dead, i)
	return s
}

// learn returns the state in which the holder's token is tok: tok must equal
// a known token, or be a possible value of an unknown one.
func (s state) learn(tok uint64) (state, bool) {
	if s.token != 0 {
		return s, s.token == tok
	}
	if tok <= s.last {
		return s, false
	}
	s.token, s.last = tok, tok
	return s, true
}

// grant makes p's session the holder with token tok (0 = unknown).
func (s state) grant(p *mop, tok uint64) state {
	s.holder, s.hidx, s.token, s.value, s.via = p.Session, p.sidx, tok, "", 0
	if p.Kind == Campaign {
		s.value = p.Value
	}
	if tok != 0 {
		s.last = tok
	}
	return s
}

// matches returns the state in which the holder is the one an answer names
// (Output.Session/Value/Token, Token 0 = not named); a Session of 0 names
// nobody and matches any state.
func (s state) matches(o Output) (state, bool) {
	if o.Session == 0 {
		return s, true
	}
	if !s.held(o.Session) || s.value != o.Value {
		return s, false
	}
	if o.Token == 0 {
		return s, true
	}
	return s.learn(o.Token)
}

// step is the nondeterministic step function: it appends to res every
// state that st may be in after operation p answered o (none: impossible).
//
// Three kinds of events happen unseen, between operations: a session dies
// (kill), an Unknown write takes effect or a Cancelled wait is granted
// (fire), and a Cancelled wait releases its grant. The model makes them
// happen lazily: only when the operation is impossible otherwise does it
// try it after such events (deaths of the holder or of the operation's own
// session; the events that can help this operation, in every order, each
// state once). Making an event happen earlier than needed never helps: an
// operation that is possible both with and without the event commutes with
// it, or leaves a state from which everything possible after the event is
// still possible (the event can still happen later). The one exception, a
// Campaign that may be the retry of an earlier Unknown one (with its value
// instead of the new one), is tried both ways.
func step(res []state, st state, p *mop, o Output) []state {
	switch p.phase {
	case unknownCall, cancelCall:
		st.pend = bitAdd(st.pend, p.idx)
		res = append(res, st)
	case cancelReturn:
		if st.via == p.idx+1 {
			st = st.free()
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
		if st.holder != 0 {
			res = apply(res, st.kill(st.hidx), p, o)
		}
		if p.sidx >= 0 && st.alive(p.sidx) && !st.held(p.Session) {
			res = apply(res, st.kill(p.sidx), p, o)
		}
	}
	if st.pend == "" && st.via == 0 {
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
	if st.via != 0 {
		try(st.free()) // the Cancelled wait that holds releases
	}
	for i := 0; i < 8*len(st.pend); i++ {
		if !bitIn(st.pend, i) {
			continue
		}
		e := p.part.pending[i]
		if !relevant(st, p, o, e) || shadowed(st, e) {
			continue
		}
		if next, ok := st.fire(e); ok {
			try(next)
		}
	}
	return res
}

// newLeadership reports whether Campaign p answered o would start a new
// leadership in st. It would also be answered to a retry if one of the
// session's Unknown Campaigns (with another value) took effect before, so
// the model tries that too.
func newLeadership(st state, p *mop, o Output) bool {
	return p.phase == whole && p.Kind == Campaign && o.Kind == OK && !st.held(p.Session)
}

// relevant reports whether firing pending write e in st can help operation
// p answered o: a release or resignation of the holder (for an answer that
// needs it gone), a grant to the session that the answer needs as holder
// (or, for Locked without a holder, to any other session), a proclaim of
// the value the answer shows. Other writes need not happen before p: they
// can still happen later.
func relevant(st state, p *mop, o Output, e *mop) bool {
	switch e.Kind {
	case Release, Resign:
		return st.held(e.Session)
	case Proclaim:
		return st.held(e.Session) && o.Session != 0 && e.Value == o.Value &&
			(p.Kind == GetLeader || o.Kind == NotLeader)
	}
	switch {
	case p.Kind == GetLock || p.Kind == GetLeader || o.Kind == Locked || o.Kind == NotLeader:
		if o.Session != 0 {
			return e.Session == o.Session
		}
		return o.Kind == Locked && e.Session != p.Session
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
		case Campaign:
		default:
			return k
		}
		k.Token = 0
		return k
	}
	ke := key(e)
	for i := 0; i < e.idx; i++ {
		if m := e.part.pending[i]; bitIn(st.pend, i) && m.phase == unknownCall && key(m) == ke {
			return true
		}
	}
	return false
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
	self := st.held(p.Session)
	switch p.Kind {
	case Acquire, TryAcquire, Campaign:
		switch o.Kind {
		case Granted, OK:
			if !st.alive(p.sidx) {
				return res
			}
			if self {
				// A campaign by the leader proclaims its value (as etcd's
				// Campaign does); an acquire by the holder changes nothing.
				if s, ok := st.learn(o.Token); ok {
					if p.Kind == Campaign {
						s.value = p.Value
					}
					res = append(res, s)
				}
				return res
			}
			if st.holder != 0 || o.Token <= st.last {
				return res
			}
			return append(res, st.grant(p, o.Token))
		case Locked:
			if st.holder == 0 || self {
				return res
			}
			if o.Session == 0 {
				return append(res, st)
			}
			if !st.held(o.Session) {
				return res
			}
			if o.Token == 0 {
				return append(res, st)
			}
			if s, ok := st.learn(o.Token); ok {
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
	case Release, Resign, Proclaim:
		switch o.Kind {
		case OK:
			if !self {
				return res
			}
			s, ok := st.learn(p.Token)
			if !ok {
				return res
			}
			if p.Kind == Proclaim {
				s.value = p.Value
				return append(res, s)
			}
			return append(res, s.free())
		case NotHolder, NotLeader:
			// A holder with an unknown token might hold another one: the
			// model does not remember "not this token".
			if self && st.token == p.Token {
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
	case GetLock, GetLeader:
		if o.Session == 0 {
			if st.holder == 0 && o.Token == 0 && o.Value == "" {
				res = append(res, st)
			}
			return res
		}
		if !st.held(o.Session) || st.value != o.Value {
			return res
		}
		if s, ok := st.learn(o.Token); ok {
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

// fire makes pending effect p happen now (and no more later): the grant of
// an Unknown Acquire, TryAcquire or Campaign or of a Cancelled wait (with an
// unknown token; the holder dies first if need be), the release of an
// Unknown Release or Resign, the value of an Unknown Proclaim. It reports
// false if the effect is impossible.
func (s state) fire(p *mop) (state, bool) {
	s.pend = bitDel(s.pend, p.idx)
	switch p.Kind {
	case Acquire, TryAcquire, Campaign:
		if s.held(p.Session) {
			if p.Kind == Campaign && p.phase == unknownCall && s.value != p.Value {
				s.value = p.Value // the leader's campaign proclaims its value
				return s, true
			}
			return s, false
		}
		if s.holder != 0 {
			s = s.kill(s.hidx)
		}
		if !s.alive(p.sidx) {
			return s, false
		}
		s = s.grant(p, 0)
		if p.phase == cancelCall {
			s.via = p.idx + 1
		}
		return s, true
	case Release, Resign, Proclaim:
		if !s.held(p.Session) {
			return s, false
		}
		s, ok := s.learn(p.Token)
		if !ok {
			return s, false
		}
		if p.Kind == Proclaim {
			s.value = p.Value
			return s, true
		}
		return s.free(), true
	}
	return s, false
}

// prune forgets what cannot matter after operation p, so that equivalent
// states compare equal: pending grants to a dead session; pending releases
// and proclaims of a token that is neither the holder's nor still to be
// granted; and the deaths of sessions whose operations all returned before
// p's call (they are all linearized before p, and a dead session holds
// nothing and has nothing pending).
func (s state) prune(p *mop) state {
	pi := p.part
	for i := 0; i < 8*len(s.pend); i++ {
		if !bitIn(s.pend, i) {
			continue
		}
		e := pi.pending[i]
		var dead bool
		switch e.Kind {
		case Acquire, TryAcquire, Campaign:
			dead = !s.alive(e.sidx)
		default:
			// An unknown token is > last, so it is not e.Token.
			dead = e.Token <= s.last && !(s.held(e.Session) && s.token == e.Token)
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
	return s
}

func (s state) hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		h ^= v
		h *= 1099511628211
	}
	mixString := func(v string) {
		for i := 0; i < len(v); i++ {
			mix(uint64(v[i]))
		}
		mix(uint64(len(v)))
	}
	mix(s.holder)
	mix(s.token)
	mix(s.last)
	mix(uint64(s.via))
	mixString(s.value)
	mixString(s.dead)
	mixString(s.pend)
	return h
}

// subset reports whether bitset a is a subset of bitset b.
func subset(a, b string) bool {
	for i := 0; i < len(a); i++ {
		var bb byte
		if i < len(b) {
			bb = b[i]
		}
		if a[i]&^bb != 0 {
			return false
		}
	}
	return true
}

// covers reports whether every continuation possible from state b is
// possible from state a: the same holder, token, value and Cancelled hold,
// no greater token bound, no session dead that is alive in b (it can still
// die when needed), and every write pending in b pending in a too (a
// pending write may also never happen).
func (a state) covers(b state) bool {
	return a.holder == b.holder && a.hidx == b.hidx && a.token == b.token && a.value == b.value &&
		a.via == b.via && a.last <= b.last && subset(a.dead, b.dead) && subset(b.pend, a.pend)
}

func compareStates(a, b state) int {
	if c := cmp.Compare(a.holder, b.holder); c != 0 {
		return c
	}
	if c := cmp.Compare(a.token, b.token); c != 0 {
		return c
	}
	if c := cmp.Compare(a.last, b.last); c != 0 {
		return c
	}
	if c := cmp.Compare(a.via, b.via); c != 0 {
		return c
	}
	if c := cmp.Compare(a.hidx, b.hidx); c != 0 {
		return c
	}
	if c := strings.Compare(a.value, b.value); c != 0 {
		return c
	}
	if c := strings.Compare(a.dead, b.dead); c != 0 {
		return c
	}
	return strings.Compare(a.pend, b.pend)
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

// newModel returns the model of one lock or election; sessions is the
// check's session table (index to ID), used only to describe states.
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
		DescribeOperation: describeOperation,
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

func describeOperation(in any, out any) string {
	p := in.(*mop)
	o := out.(Output)
	var b strings.Builder
	b.WriteString(p.Kind.String())
	var args []string
	if p.Session != 0 {
		args = append(args, fmt.Sprintf("s%d", p.Session))
	}
	switch p.Kind {
	case Release, Proclaim, Resign:
		args = append(args, fmt.Sprintf("%d", p.Token))
	}
	switch p.Kind {
	case Campaign, Proclaim:
		args = append(args, fmt.Sprintf("%q", p.Value))
	}
	fmt.Fprintf(&b, "(%s)", strings.Join(args, ", "))
	switch p.phase {
	case unknownCall:
		b.WriteString(" → Unknown [may take effect from its call on]")
		return b.String()
	case cancelCall:
		b.WriteString(" → Cancelled [may be granted from its call on]")
		return b.String()
	case cancelReturn:
		b.WriteString(" → Cancelled [holds nothing from its return on]")
		return b.String()
	}
	b.WriteString(" → ")
	b.WriteString(describeOutput(p.Kind, o))
	return b.String()
}

func describeOutput(k Kind, o Output) string {
	switch o.Kind {
	case Granted:
		return fmt.Sprintf("Granted %d", o.Token)
	case Locked, NotLeader:
		if o.Session == 0 {
			return o.Kind.String()
		}
		return fmt.Sprintf("%s (%s)", o.Kind, describeHolder(o.Session, o.Token, o.Value, k == Campaign || k == Proclaim || k == Resign))
	case OK:
		switch k {
		case Campaign:
			return fmt.Sprintf("OK term %d", o.Token)
		case GetLock:
			if o.Session == 0 {
				return "free"
			}
			return describeHolder(o.Session, o.Token, o.Value, false)
		case GetLeader:
			if o.Session == 0 {
				return "no leader"
			}
			return describeHolder(o.Session, o.Token, o.Value, true)
		}
	}
	return o.Kind.String()
}

func describeHolder(sess, tok uint64, value string, election bool) string {
	t := "?"
	if tok != 0 {
		t = fmt.Sprint(tok)
	}
	if election {
		return fmt.Sprintf("s%d leads %q term %s", sess, value, t)
	}
	return fmt.Sprintf("s%d holds %s", sess, t)
}

func describeState(s state, sessions []uint64) string {
	var b strings.Builder
	if s.holder == 0 {
		fmt.Fprintf(&b, "free (tokens > %d)", s.last)
	} else {
		if s.value != "" {
			fmt.Fprintf(&b, "s%d: %q ", s.holder, s.value)
		} else {
			fmt.Fprintf(&b, "s%d ", s.holder)
		}
		if s.token != 0 {
			fmt.Fprintf(&b, "token %d", s.token)
		} else {
			fmt.Fprintf(&b, "token ? > %d", s.last)
		}
		if s.via != 0 {
			b.WriteString(" (cancelled wait)")
		}
	}
	if n := bitCount(s.pend); n > 0 {
		fmt.Fprintf(&b, "; %d unseen writes pending", n)
	}
	var dead []string
	for i := 0; i < 8*len(s.dead); i++ {
		if bitIn(s.dead, i) && i < len(sessions) {
			dead = append(dead, fmt.Sprintf("s%d", sessions[i]))
		}
	}
	if len(dead) > 0 {
		fmt.Fprintf(&b, "; dead %s", strings.Join(dead, " "))
	}
	return b.String()
}
