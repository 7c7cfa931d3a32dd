package linearize

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// hold is one holder in a state: the exclusive holder or one of the shared
// holders of a lock, a permit holder of a semaphore, or the leader of an
// election.
type hold struct {
	sess   uint64
	sidx   int    // sess's index in the check's session table
	token  uint64 // the token (term); 0 = unknown (granted unseen): lo <= token <= hi
	lo, hi uint64 // bounds of an unknown token; 0, 0 when known
	via    int    // idx+1 of the Cancelled wait whose grant this is (it releases it by its return), 0 for none
	shared bool   // a shared hold of a lock
}

// holdSize is the size of an encoded hold (see appendHold).
const holdSize = 4*8 + 2*4 + 1

// appendHold appends h's encoding to b: sess, token, lo, hi, sidx, via,
// shared, little-endian. States keep their holders as a string of these so
// that they stay comparable.
func appendHold(b []byte, h hold) []byte {
	for _, v := range [...]uint64{h.sess, h.token, h.lo, h.hi} {
		for k := 0; k < 8; k++ {
			b = append(b, byte(v>>(8*k)))
		}
	}
	for _, v := range [...]uint32{uint32(h.sidx), uint32(h.via)} {
		for k := 0; k < 4; k++ {
			b = append(b, byte(v>>(8*k)))
		}
	}
	if h.shared {
		return append(b, 1)
	}
	return append(b, 0)
}

func u64At(s string, off int) uint64 {
	var v uint64
	for k := 7; k >= 0; k-- {
		v = v<<8 | uint64(s[off+k])
	}
	return v
}

func u32At(s string, off int) uint32 {
	return uint32(s[off]) | uint32(s[off+1])<<8 | uint32(s[off+2])<<16 | uint32(s[off+3])<<24
}

// state is the state of one lock, election or semaphore in one branch of
// the nondeterministic model. It is comparable (==) and immutable: every
// method returns a changed copy.
//
// Tokens: every grant's token is the index of the log entry that granted
// it, so an exclusive grant's token (a leadership's term) is greater than
// every token granted before in its partition, and a shared grant's (a
// permit's) is at least as great (one entry may grant several). last is
// the greatest token granted so far as far as the state knows: a later
// exclusive grant's token must be > last, a later shared grant's >= last
// (> last if rel: a release answered OK came after it, in an entry of its
// own) and >= every unknown token held (which gets that token as upper
// bound). An unknown token counts, once released, as its least possible
// value.
//
// The token of a grant made unseen (fire) is unknown until an answer shows
// it. An exclusive hold or leadership granted unseen at some point came
// after every grant before it (they had ended), so its token is > last
// then. A shared hold or permit may have been granted unseen earlier than
// the point at which the model makes it happen, before other shared
// grants: its token is only bounded below by the tokens shown by answers
// returned before its call (mop.lo), and above by the grants the model
// made after it.
//
// Besides sessions, two kinds of anonymous holders keep the sets of states
// small: ghosts (see ghost) and phantoms (see fill). Either may stop
// holding at any time, without a death.
type state struct {
	holds string // the holders: holdSize bytes each (appendHold), sorted by session (phantoms, then ghosts, last)
	value string // the election leader's value ("" for locks and semaphores)
	last  uint64
	rel   bool
	dead  string // bitset over session indices: the sessions deemed dead
	pend  string // bitset over partInfo.pending: the effects that may still happen (see fire)
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

// n is the number of holders.
func (s state) n() int { return len(s.holds) / holdSize }

// at returns holder i (in session order).
func (s state) at(i int) hold {
	o := i * holdSize
	return hold{
		sess:   u64At(s.holds, o),
		token:  u64At(s.holds, o+8),
		lo:     u64At(s.holds, o+16),
		hi:     u64At(s.holds, o+24),
		sidx:   int(int32(u32At(s.holds, o+32))),
		via:    int(int32(u32At(s.holds, o+36))),
		shared: s.holds[o+40] != 0,
	}
}

func (s state) sessAt(i int) uint64 { return u64At(s.holds, i*holdSize) }

// find returns the index of session sess's hold, -1 if it holds nothing.
func (s state) find(sess uint64) int {
	if sess == 0 {
		return -1
	}
	for i := range s.n() {
		if s.sessAt(i) == sess {
			return i
		}
	}
	return -1
}

// held reports whether session sess holds (leads).
func (s state) held(sess uint64) bool { return s.find(sess) >= 0 }

// exclusive reports whether a session holds the lock exclusively (leads
// the election).
func (s state) exclusive() bool {
	for i := range s.n() {
		if !s.at(i).shared {
			return true
		}
	}
	return false
}

// put replaces holder i by h (of the same session).
func (s state) put(i int, h hold) state {
	o := i * holdSize
	s.holds = s.holds[:o] + string(appendHold(make([]byte, 0, holdSize), h)) + s.holds[o+holdSize:]
	return s
}

// insert adds h, a session that holds nothing.
func (s state) insert(h hold) state {
	i := 0
	for i < s.n() && s.sessAt(i) < h.sess {
		i++
	}
	o := i * holdSize
	s.holds = s.holds[:o] + string(appendHold(make([]byte, 0, holdSize), h)) + s.holds[o:]
	return s
}

// removeAt ends hold i.
func (s state) removeAt(i int) state {
	if h := s.at(i); h.token == 0 && h.lo > s.last {
		s.last, s.rel = h.lo, false
	}
	o := i * holdSize
	s.holds = s.holds[:o] + s.holds[o+holdSize:]
	if s.holds == "" {
		s.value = ""
	}
	return s
}

// ghostSess and phantomSess are the sessions of a ghost and of a phantom
// (sidx -1 and -2), after every real session.
const (
	ghostSess   = math.MaxUint64
	phantomSess = math.MaxUint64 - 1
)

// alike reports whether hold i is a ghost or a phantom like hold i+1:
// dropping either gives the same state.
func (s state) alike(i int) bool {
	return i+1 < s.n() && s.at(i).sidx < 0 && s.at(i) == s.at(i+1)
}

// phantoms is the number of phantoms (see fill).
func (s state) phantoms() int {
	n := 0
	for i := range s.n() {
		if s.at(i).sidx == -2 {
			n++
		}
	}
	return n
}

// fill returns the state in which the semaphore of p (whose session holds
// nothing) is full thanks to grants made unseen, if there are enough
// pending grants to other sessions that are alive and hold nothing: one
// per session, and one more for each phantom already there. Each filler is
// a phantom: a holder that may go at any time (as a ghost), while the
// pending grant it stands for stays pending (firing it may replace the
// phantom, see fire). This is coarser than firing the pending grants (a
// phantom has no session that must die for it to go, no token, and its
// grant may still happen), but keeps states that differ only by which
// unseen grants filled the semaphore equal.
func (s state) fill(p *mop) (state, bool) {
	need := p.part.limit - s.n()
	if need <= 0 {
		return s, false
	}
	var sessions []int
	for i := 0; i < 8*len(s.pend); i++ {
		if !bitIn(s.pend, i) {
			continue
		}
		e := p.part.pending[i]
		if isGrant(e.Kind) && e.Session != p.Session && s.alive(e.sidx) && !s.held(e.Session) && !slices.Contains(sessions, e.sidx) {
			sessions = append(sessions, e.sidx)
		}
	}
	if len(sessions) < need+s.phantoms() {
		return s, false
	}
	for range need {
		s = s.insert(hold{sess: phantomSess, sidx: -2})
	}
	return s, true
}

// ghost makes holder i a ghost: a holder that no operation will name or
// show any more, whose session has nothing pending. Which session it is
// and its token no longer matter: it may stop holding at any time (its
// session dies unseen), it counts as a holder until then, and later
// grants are at least as great as its token (it folds into last, as on
// release). Ghosts make the states that differ only by such holders
// equal.
func (s state) ghost(i int) state {
	shared := s.at(i).shared
	return s.removeAt(i).insert(hold{sess: ghostSess, sidx: -1, shared: shared})
}

// drop ends hold i: its session dies (a ghost just goes).
func (s state) drop(i int) state {
	if h := s.at(i); h.sidx >= 0 {
		return s.kill(h.sidx)
	}
	return s.removeAt(i)
}

// without drops the holds for which keep is false.
func (s state) without(keep func(h hold) bool) state {
	for i := s.n() - 1; i >= 0; i-- {
		if !keep(s.at(i)) {
			s = s.drop(i)
		}
	}
	return s
}

// kill deems session i dead: it holds nothing any more.
func (s state) kill(i int) state {
	if i < 0 {
		return s
	}
	for j := s.n() - 1; j >= 0; j-- {
		if s.at(j).sidx == i {
			s = s.removeAt(j)
		}
	}
	s.dead = bitAdd(s.dead, i)
	return s
}

// learn returns the state in which session sess holds with token tok: tok
// must equal its known token, or be a possible value of an unknown one.
func (s state) learn(sess, tok uint64) (state, bool) {
	i := s.find(sess)
	if i < 0 {
		return s, false
	}
	h := s.at(i)
	if h.token != 0 {
		return s, h.token == tok
	}
	if tok == 0 || tok < h.lo || tok > h.hi {
		return s, false
	}
	h.token, h.lo, h.hi = tok, 0, 0
	s = s.put(i, h)
	if tok > s.last {
		// Granted after the release, maybe.
		s.last, s.rel = tok, false
	}
	return s, true
}

// strict reports whether p's grants have a token greater than every token
// granted before (exclusive holds, leaderships) rather than at least as
// great (shared holds, permits).
func strict(p *mop) bool {
	switch p.part.ns {
	case nsLock:
		return !p.Shared
	case nsSemaphore:
		return false
	}
	return true
}

// room reports whether p, whose session holds nothing, may be granted now.
func (s state) room(p *mop) bool {
	switch p.part.ns {
	case nsLock:
		if p.Shared {
			return !s.exclusive()
		}
	case nsSemaphore:
		return s.n() < p.part.limit
	}
	return s.n() == 0
}

// blocked reports whether p, whose session holds nothing, may be answered
// Locked now: a lock with a holder (a shared request may wait behind an
// exclusive waiter, which the model does not see), a full semaphore.
func (s state) blocked(p *mop) bool {
	if p.part.ns == nsSemaphore {
		return s.n() >= p.part.limit
	}
	return s.n() > 0
}

// tokenOK reports whether tok may be the token of a new grant of p.
func (s state) tokenOK(p *mop, tok uint64) bool {
	if strict(p) {
		return tok > s.last
	}
	return tok > s.last || (tok != 0 && tok == s.last && !s.rel)
}

// grant makes p's session (which holds nothing, and for which there is
// room) a holder with token tok (0 = unknown), granted to Cancelled wait
// via-1 (0 = none).
func (s state) grant(p *mop, tok uint64, via int) state {
	h := hold{sess: p.Session, sidx: p.sidx, token: tok, via: via, shared: p.Shared && p.part.ns == nsLock}
	if tok == 0 {
		h.hi = math.MaxUint64
		if strict(p) {
			h.lo = s.last + 1
		} else {
			h.lo = max(p.lo, 1)
		}
	} else {
		// Every unknown token held was granted before this one.
		for i := range s.n() {
			if u := s.at(i); u.token == 0 && u.hi > tok {
				u.hi = tok
				s = s.put(i, u)
			}
		}
		s.last = max(s.last, tok)
	}
	s.rel = false
	if p.Kind == Campaign {
		s.value = p.Value
	}
	return s.insert(h)
}

// named returns the state in which the holder an answer names
// (Output.Session, with Output.Token unless 0) holds; Session 0 names
// nobody and matches any state.
func (s state) named(o Output) (state, bool) {
	if o.Session == 0 {
		return s, true
	}
	if !s.held(o.Session) {
		return s, false
	}
	if o.Token == 0 {
		return s, true
	}
	return s.learn(o.Session, o.Token)
}

// matches returns the state in which the leader is the one an answer names
// (Output.Session/Value/Token, Token 0 = not named); a Session of 0 names
// nobody and matches any state.
func (s state) matches(o Output) (state, bool) {
	if o.Session != 0 && s.value != o.Value {
		return s, false
	}
	return s.named(o)
}

// readAll returns the state in which the holders are exactly hs (sorted by
// session), with their modes if modes.
func (s state) readAll(hs []Hold, modes bool) (state, bool) {
	if len(hs) != s.n() {
		return s, false
	}
	for i, want := range hs {
		h := s.at(i)
		if h.sess != want.Session || (modes && h.shared != want.Shared) {
			return s, false
		}
		var ok bool
		if s, ok = s.learn(want.Session, want.Token); !ok {
			return s, false
		}
	}
	return s, true
}

func (s state) hash() uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		h ^= v
		h *= 1099511628211
	}
	mixString := func(v string) {
		i := 0
		for ; i+8 <= len(v); i += 8 {
			mix(u64At(v, i))
		}
		for ; i < len(v); i++ {
			mix(uint64(v[i]))
		}
		mix(uint64(len(v)))
	}
	mix(s.last)
	if s.rel {
		mix(1)
	}
	mixString(s.holds)
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
// possible from state a: the same holders (tokens, bounds and Cancelled
// holds) and value, no greater token bounds, no session dead that is alive
// in b (it can still die when needed), and every write pending in b
// pending in a too (a pending write may also never happen).
func (a state) covers(b state) bool {
	return a.holds == b.holds && a.value == b.value &&
		(a.last < b.last || (a.last == b.last && (!a.rel || b.rel))) &&
		subset(a.dead, b.dead) && subset(b.pend, a.pend)
}

func compareStates(a, b state) int {
	if c := strings.Compare(a.holds, b.holds); c != 0 {
		return c
	}
	if c := cmp.Compare(a.last, b.last); c != 0 {
		return c
	}
	if a.rel != b.rel {
		if a.rel {
			return 1
		}
		return -1
	}
	if c := strings.Compare(a.value, b.value); c != 0 {
		return c
	}
	if c := strings.Compare(a.dead, b.dead); c != 0 {
		return c
	}
	return strings.Compare(a.pend, b.pend)
}
