package linearize

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// This file generates random valid histories: simulated clients call a
// simple sequential reference implementation of locks (exclusive and
// shared, with exclusive waiters blocking new shared holders), elections,
// semaphores and sessions, each operation taking effect at one tick
// between its call and its answer (a waiting Acquire, SemAcquire or
// Campaign at the first tick it can be granted), with random jitter,
// random session expiry, lost answers, cancelled waits, and shared grants
// that share a log entry. It can also inject one violation of a chosen
// kind at a quiet point of the history.

type refHold struct {
	token  uint64
	shared bool
}

// refLock is a lock: one exclusive holder or any number of shared ones.
type refLock struct{ holders map[uint64]refHold }

type refElection struct {
	leader uint64
	value  string
	term   uint64
}

// refSem is a semaphore: its permit holders and their tokens.
type refSem struct {
	limit   int
	holders map[uint64]uint64
}

// ref is the sequential reference: a log index that every write uses up,
// sessions, locks, elections and semaphores.
type ref struct {
	index     uint64
	alive     map[uint64]bool
	locks     map[string]*refLock
	elections map[string]*refElection
	sems      map[string]*refSem
}

func (r *ref) next() uint64 { r.index++; return r.index }

func (r *ref) end(s uint64) {
	r.alive[s] = false
	for _, l := range r.locks {
		delete(l.holders, s)
	}
	for _, e := range r.elections {
		if e.leader == s {
			*e = refElection{}
		}
	}
	for _, m := range r.sems {
		delete(m.holders, s)
	}
}

// exclusive returns l's exclusive holder, 0 if none.
func (l *refLock) exclusive() (uint64, uint64) {
	for s, h := range l.holders {
		if !h.shared {
			return s, h.token
		}
	}
	return 0, 0
}

// lockHolds returns l's holders as a read shows them.
func lockHolds(l *refLock) []Hold {
	hs := make([]Hold, 0, len(l.holders))
	for _, s := range slices.Sorted(maps.Keys(l.holders)) {
		hs = append(hs, Hold{Session: s, Token: l.holders[s].token, Shared: l.holders[s].shared})
	}
	return hs
}

// semHolds returns m's holders as a read shows them (nil if none).
func semHolds(m *refSem) []Hold {
	var hs []Hold
	for _, s := range slices.Sorted(maps.Keys(m.holders)) {
		hs = append(hs, Hold{Session: s, Token: m.holders[s]})
	}
	return hs
}

// genOp is a client's operation in flight.
type genOp struct {
	id        int
	in        Input
	linAt     int64 // first tick it may take effect
	deadline  int64 // last tick (a wait), == linAt otherwise
	lost      int   // 0: answered; 1: never returned; 2: answered Unknown
	noEffect  bool  // lost and never took effect
	cancel    bool  // a wait that gives up (Cancelled), releasing a grant it got
	done      bool
	out       Output
	ret       int64
	releaseAt int64 // cancel after a grant: the tick of the release, 0 = none
	seq, seq2 int   // when it took effect (and released, for a cancel), in applied order; 0 = never
}

type genClient struct {
	id      int
	reader  bool
	session uint64
	tokens  map[string]uint64 // locks it believes it holds
	terms   map[string]uint64 // elections it believes it leads
	permits map[string]uint64 // semaphores it believes it holds a permit of
	op      *genOp
	next    int64
}

// violation is a kind of bug that genHistory can inject.
type violation int

const (
	noViolation violation = iota
	// Two sessions hold a lock exclusively at once.
	twoExclusive
	// A session holds a lock exclusively while another holds it shared.
	exclusiveBesideShared
	// An exclusive grant's token equals an earlier shared grant's.
	exclusiveTokenNotAbove
	// limit+1 sessions hold a permit of a semaphore at once.
	limitPlusOne
	// A semaphore try answers Locked while the semaphore cannot be full.
	lockedFreeSemaphore
)

var violationNames = [...]string{
	twoExclusive:           "two exclusive holders",
	exclusiveBesideShared:  "exclusive holder beside a shared one",
	exclusiveTokenNotAbove: "exclusive token not above an earlier shared one",
	limitPlusOne:           "limit+1 permits",
	lockedFreeSemaphore:    "Locked on a free semaphore",
}

// genConfig shapes a random history.
type genConfig struct {
	seed              uint64
	ops               int      // operations to call
	sessions, readers int      // clients with a session each; clients that only read
	locks, elections  []string // names
	sems              []string // semaphore names; semaphore i has limit semLimit(i+limitShift)
	limitShift        int
	latency           int // an operation takes effect up to latency-1 ticks after its call, and answers up to latency-1 ticks later
	wait              int // a waiting Acquire, SemAcquire or Campaign waits up to wait-1 ticks
	lostPct           int // % of answers lost (half never returned, half Unknown; half of them without effect)
	cancelPct         int // % of waits that give up (Cancelled), releasing a grant they got
	expiry            int // a session expires once in expiry ticks on average
	anonPct           int // % of Locked and NotLeader answers that do not name the holder
	sharedPct         int // % of lock acquires that ask for a shared hold
	sameEntryPct      int // % of shared grants and permits that share the log entry of the grant just before (same name, same tick)
	legacyPct         int // % of GetLock answers without Holders
	lockedHoldersPct  int // % of Locked answers (of locks and semaphores) with Holders
	violation         violation
}

// defaultConfig: ~2,000 operations over 4 names by 8 sessions and 2 readers.
func defaultConfig(seed uint64, locks, elections []string) genConfig {
	return genConfig{
		seed: seed, ops: 2000, sessions: 8, readers: 2, locks: locks, elections: elections,
		latency: 4, wait: 15, lostPct: 4, cancelPct: 26, expiry: 250, anonPct: 5,
		sameEntryPct: 50, legacyPct: 20, lockedHoldersPct: 50,
	}
}

// semLimit is the limit of semaphore i of a configuration.
func semLimit(i int) int { return 1 + (i+1)%3 }

type grantKey struct {
	ns    namespace
	name  string
	index uint64
	tick  int64
}

type generator struct {
	cfg       genConfig
	rng       *rand.Rand
	r         *ref
	h         *History
	clients   []*genClient
	applied   int                        // operations applied so far
	order     map[int][2]int             // History id to genOp.seq, seq2
	lastGrant grantKey                   // the last shared grant or permit
	lostAcq   map[string]map[uint64]bool // by semaphore, the sessions with a lost acquire
	// shownDead: by partition (`semaphore "s"`; "" for session operations,
	// which every partition of the session sees), the sessions an answer
	// showed dead.
	shownDead map[string]map[uint64]bool
	injected  string // the partition of the injected violation
}

// genHistory returns a valid random history shaped by cfg (with one
// violation if cfg.violation is set).
func genHistory(cfg genConfig) *History {
	h, _, _ := genHistoryOrder(cfg)
	return h
}

// genHistoryOrder is genHistory that also returns the order in which the
// reference applied the operations: History id to its position (1, 2, ...;
// 0 = never applied) and, for a wait that was granted and then cancelled,
// the position of its release; and the partition of the injected
// violation, if any.
func genHistoryOrder(cfg genConfig) (*History, map[int][2]int, string) {
	n, sessions, readers := cfg.ops, cfg.sessions, cfg.readers
	g := &generator{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
		r: &ref{alive: map[uint64]bool{}, locks: map[string]*refLock{}, elections: map[string]*refElection{},
			sems: map[string]*refSem{}},
		h:         NewHistory(),
		order:     map[int][2]int{},
		lostAcq:   map[string]map[uint64]bool{},
		shownDead: map[string]map[uint64]bool{},
	}
	for _, name := range cfg.locks {
		g.r.locks[name] = &refLock{holders: map[uint64]refHold{}}
	}
	for _, name := range cfg.elections {
		g.r.elections[name] = &refElection{}
	}
	for i, name := range cfg.sems {
		g.r.sems[name] = &refSem{limit: semLimit(i + cfg.limitShift), holders: map[uint64]uint64{}}
	}
	for i := 0; i < sessions+readers; i++ {
		g.clients = append(g.clients, &genClient{id: i, reader: i >= sessions})
	}
	issued := 0
	injectAt := n / 2 // inject once this many operations are issued and all answered
	for t := int64(0); ; t++ {
		if g.rng.IntN(g.cfg.expiry) == 0 {
			c := g.clients[g.rng.IntN(sessions)]
			if c.session != 0 && g.r.alive[c.session] {
				g.r.end(c.session)
			}
		}
		quiet := cfg.violation != noViolation && g.injected == "" && issued >= min(injectAt, n)
		if quiet && g.idle() {
			var ok bool
			if t, ok = g.inject(t, issued >= n); !ok {
				injectAt = issued + 20 // try again later
			}
			continue
		}
		busy := false
		for _, i := range g.rng.Perm(len(g.clients)) {
			c := g.clients[i]
			if c.op == nil && t >= c.next && issued < n && !quiet {
				g.start(c, t)
				issued++
			}
		}
		for _, i := range g.rng.Perm(len(g.clients)) {
			if c := g.clients[i]; c.op != nil {
				g.advance(c, t)
			}
		}
		for _, c := range g.clients {
			if c.op != nil && c.op.done && c.op.ret == t {
				g.finish(c, t)
			}
			busy = busy || c.op != nil
		}
		if !busy && issued >= n && (cfg.violation == noViolation || g.injected != "") {
			return g.h, g.order, g.injected
		}
	}
}

func (g *generator) idle() bool {
	for _, c := range g.clients {
		if c.op != nil {
			return false
		}
	}
	return true
}

func (g *generator) pick(names []string) string { return names[g.rng.IntN(len(names))] }

// pickHolder returns a random one of sessions (sorted) and its token, or
// 0, 0 (an anonymous answer) anonPct% of the time.
func (g *generator) pickHolder(tokens map[uint64]uint64) (uint64, uint64) {
	if len(tokens) == 0 || g.rng.IntN(100) < g.cfg.anonPct {
		return 0, 0
	}
	ss := slices.Sorted(maps.Keys(tokens))
	s := ss[g.rng.IntN(len(ss))]
	return s, tokens[s]
}

// start calls a new random operation of client c at tick t.
func (g *generator) start(c *genClient, t int64) {
	if c.session == 0 && !c.reader {
		c.session = g.r.next()
		g.r.alive[c.session] = true
		c.tokens, c.terms, c.permits = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}
	}
	var nss []namespace
	if len(g.cfg.locks) > 0 {
		nss = append(nss, nsLock)
	}
	if len(g.cfg.elections) > 0 {
		nss = append(nss, nsElection)
	}
	if len(g.cfg.sems) > 0 {
		nss = append(nss, nsSemaphore)
	}
	ns := nss[g.rng.IntN(len(nss))]
	s := c.session
	// token returns the token c believes it holds name with (from
	// beliefs), or sometimes a random one.
	token := func(beliefs map[string]uint64, names []string) (string, uint64) {
		name, tok := g.pick(names), uint64(0)
		if held := slices.Sorted(maps.Keys(beliefs)); len(held) > 0 {
			name = held[g.rng.IntN(len(held))]
			tok = beliefs[name]
		}
		if tok == 0 || g.rng.IntN(10) == 0 {
			tok = uint64(g.rng.IntN(int(g.r.index) + 1))
		}
		return name, tok
	}
	var in Input
	wait := int64(0)
	x := g.rng.IntN(100)
	switch {
	case c.reader:
		switch ns {
		case nsLock:
			in = getLock(g.pick(g.cfg.locks))
		case nsElection:
			in = getLeader(g.pick(g.cfg.elections))
		default:
			in = getSem(g.pick(g.cfg.sems))
		}
	case x < 12:
		in = keep(s)
	case x < 14:
		in = closeS(s)
	case ns == nsLock:
		y := g.rng.IntN(46)
		shared := false
		for name := range c.tokens {
			shared = shared || g.r.locks[name].holders[s].shared
		}
		if shared && g.rng.IntN(2) == 0 {
			y = 30 // shared holders let go soon, or exclusive waiters would starve
		}
		switch {
		case y < 24:
			name := g.pick(g.cfg.locks)
			shared := g.rng.IntN(100) < g.cfg.sharedPct
			if h, found := g.r.locks[name].holders[s]; found {
				shared = h.shared // never a mode mismatch
			}
			in = Input{Kind: TryAcquire, Name: name, Session: s, Shared: shared}
			if y >= 14 {
				in.Kind = Acquire
				wait = int64(g.rng.IntN(g.cfg.wait))
			}
		case y < 38:
			name, tok := token(c.tokens, g.cfg.locks)
			in = rel(name, s, tok)
		default:
			in = getLock(g.pick(g.cfg.locks))
		}
	case ns == nsElection:
		switch y := g.rng.IntN(40); {
		case y < 12:
			in = camp(g.pick(g.cfg.elections), s, fmt.Sprintf("v%d", g.rng.IntN(5)))
			if g.rng.IntN(2) == 0 {
				wait = int64(g.rng.IntN(g.cfg.wait))
			}
		case y < 30:
			name, tm := token(c.terms, g.cfg.elections)
			if y < 22 {
				in = procl(name, s, tm, fmt.Sprintf("p%d", g.rng.IntN(5)))
			} else {
				in = resign(name, s, tm)
			}
		default:
			in = getLeader(g.pick(g.cfg.elections))
		}
	default:
		switch y := g.rng.IntN(46); {
		case y < 24:
			i := g.rng.IntN(len(g.cfg.sems))
			in = semTry(g.cfg.sems[i], s, semLimit(i+g.cfg.limitShift))
			if y >= 14 {
				in.Kind = SemAcquire
				wait = int64(g.rng.IntN(g.cfg.wait))
			}
		case y < 38:
			name, tok := token(c.permits, g.cfg.sems)
			in = semRel(name, s, tok)
		default:
			in = getSem(g.pick(g.cfg.sems))
		}
	}
	o := &genOp{in: in, linAt: t + int64(g.rng.IntN(g.cfg.latency))}
	o.deadline = o.linAt + wait
	switch {
	case g.rng.IntN(100) < g.cfg.lostPct:
		o.lost = 1 + g.rng.IntN(2)
		o.noEffect = g.rng.IntN(2) == 0
		if in.Kind == SemAcquire || in.Kind == SemTryAcquire {
			if g.lostAcq[in.Name] == nil {
				g.lostAcq[in.Name] = map[uint64]bool{}
			}
			g.lostAcq[in.Name][s] = true
		}
	case wait > 0 && g.rng.IntN(100) < g.cfg.cancelPct:
		o.cancel = true
	}
	o.id = g.h.Call(c.id, t, in)
	c.op = o
}

// advance lets c's operation take effect at tick t if it can.
func (g *generator) advance(c *genClient, t int64) {
	o := c.op
	if o.done || t < o.linAt {
		return
	}
	r := g.r
	s := o.in.Session
	if o.releaseAt != 0 {
		if t == o.releaseAt {
			// The cancelled wait's caller releases what it was granted.
			switch o.in.Kind {
			case Acquire:
				if l := r.locks[o.in.Name]; l.holders[s].token == o.out.Token {
					r.next()
					delete(l.holders, s)
				}
			case SemAcquire:
				if m := r.sems[o.in.Name]; m.holders[s] == o.out.Token {
					r.next()
					delete(m.holders, s)
				}
			default:
				if e := r.elections[o.in.Name]; e.leader == s && e.term == o.out.Token {
					r.next()
					*e = refElection{}
				}
			}
			o.out = cancelled
			o.done, o.ret = true, t+int64(g.rng.IntN(3))
			g.applied++
			o.seq2 = g.applied
		}
		return
	}
	if o.noEffect {
		o.out, o.done, o.ret = unknown, true, t
		return
	}
	held := false // already held or led: a grant now is a retry's answer
	switch o.in.Kind {
	case Acquire:
		_, held = r.locks[o.in.Name].holders[s]
	case SemAcquire:
		_, held = r.sems[o.in.Name].holders[s]
	case Campaign:
		held = r.elections[o.in.Name].leader == s
	}
	out, done := g.apply(o.in, t == o.deadline, t)
	if !done {
		return
	}
	g.applied++
	o.seq = g.applied
	if o.cancel {
		switch {
		case out.Kind == Locked || out.Kind == NotLeader:
			out = cancelled // gave up, never granted
		case (out.Kind == Granted || out.Kind == OK) && !held:
			// Granted just now: release it a little later, then answer
			// Cancelled.
			o.out, o.releaseAt = out, t+1+int64(g.rng.IntN(g.cfg.latency))
			return
		}
	}
	o.out, o.done, o.ret = out, true, t+int64(g.rng.IntN(g.cfg.latency))
}

// exclusiveWaiting reports whether an exclusive Acquire of lock name by
// another session than s waits at tick t.
func (g *generator) exclusiveWaiting(name string, s uint64, t int64) bool {
	for _, c := range g.clients {
		o := c.op
		if o != nil && !o.done && o.releaseAt == 0 && !o.noEffect && o.in.Kind == Acquire && !o.in.Shared &&
			o.in.Name == name && o.in.Session != s && t >= o.linAt && g.r.alive[o.in.Session] {
			return true
		}
	}
	return false
}

// grantToken returns the token of a grant of name at tick t: a new log
// index, or for a shared grant or permit sometimes the index of the shared
// grant or permit just before (the same entry granting both).
func (g *generator) grantToken(ns namespace, name string, shared bool, t int64) uint64 {
	k := grantKey{ns, name, g.r.index, t}
	if shared && g.lastGrant == k && g.rng.IntN(100) < g.cfg.sameEntryPct {
		return g.r.index
	}
	tok := g.r.next()
	if shared {
		g.lastGrant = grantKey{ns, name, tok, t}
	}
	return tok
}

// apply is the reference implementation of one operation at tick t;
// final: a wait that has run out.
func (g *generator) apply(in Input, final bool, t int64) (Output, bool) {
	r := g.r
	s := in.Session
	switch in.Kind {
	case Acquire, TryAcquire:
		l := r.locks[in.Name]
		h, holds := l.holders[s]
		excl, _ := l.exclusive()
		switch {
		case !r.alive[s]:
			return expired, true
		case holds:
			if h.shared != in.Shared {
				panic("generator: mode mismatch")
			}
			return granted(h.token), true
		case len(l.holders) == 0 || (in.Shared && excl == 0 && !g.exclusiveWaiting(in.Name, s, t)):
			tok := g.grantToken(nsLock, in.Name, in.Shared, t)
			l.holders[s] = refHold{token: tok, shared: in.Shared}
			return granted(tok), true
		case in.Kind == TryAcquire || final:
			tokens := map[uint64]uint64{}
			for hs, h := range l.holders {
				tokens[hs] = h.token
			}
			out := locked(g.pickHolder(tokens))
			if g.rng.IntN(100) < g.cfg.lockedHoldersPct {
				out.Holders = lockHolds(l)
			}
			return out, true
		}
		return Output{}, false
	case Release:
		l := r.locks[in.Name]
		r.next()
		if h, found := l.holders[s]; found && h.token == in.Token {
			delete(l.holders, s)
			return ok, true
		}
		return notHolder, true
	case GetLock:
		l := r.locks[in.Name]
		excl, tok := l.exclusive()
		out := holder(excl, tok)
		if g.rng.IntN(100) >= g.cfg.legacyPct {
			out.Holders = lockHolds(l)
		}
		return out, true
	case SemAcquire, SemTryAcquire:
		m := r.sems[in.Name]
		tok, holds := m.holders[s]
		switch {
		case !r.alive[s]:
			return expired, true
		case holds:
			return granted(tok), true
		case len(m.holders) < m.limit:
			tok := g.grantToken(nsSemaphore, in.Name, true, t)
			m.holders[s] = tok
			return granted(tok), true
		case in.Kind == SemTryAcquire || final:
			out := locked(g.pickHolder(m.holders))
			if g.rng.IntN(100) < g.cfg.lockedHoldersPct {
				out.Holders = semHolds(m)
			}
			return out, true
		}
		return Output{}, false
	case SemRelease:
		m := r.sems[in.Name]
		r.next()
		if tok, found := m.holders[s]; found && tok == in.Token {
			delete(m.holders, s)
			return ok, true
		}
		return notHolder, true
	case GetSemaphore:
		m := r.sems[in.Name]
		out := semaphore(semHolds(m)...)
		if len(m.holders) > 0 {
			out.Limit = m.limit // the server forgets a semaphore nobody holds
		}
		return out, true
	case KeepAlive:
		r.next()
		if r.alive[s] {
			return ok, true
		}
		return expired, true
	case CloseSession:
		r.next()
		if r.alive[s] {
			r.end(s)
			return ok, true
		}
		return expired, true
	case Campaign:
		e := r.elections[in.Name]
		switch {
		case !r.alive[s]:
			return expired, true
		case e.leader == s:
			e.value = in.Value // proclaims its value, as etcd's Campaign
			return term(e.term), true
		case e.leader == 0:
			*e = refElection{leader: s, value: in.Value, term: r.next()}
			return term(e.term), true
		case final:
			if g.rng.IntN(100) < g.cfg.anonPct {
				return notLeader(0, "", 0), true
			}
			return notLeader(e.leader, e.value, e.term), true
		}
		return Output{}, false
	case Proclaim, Resign:
		e := r.elections[in.Name]
		r.next()
		if e.leader != s || e.term != in.Token {
			return notLeader(e.leader, e.value, e.term), true
		}
		if in.Kind == Proclaim {
			e.value = in.Value
		} else {
			*e = refElection{}
		}
		return ok, true
	case GetLeader:
		e := r.elections[in.Name]
		return leader(e.leader, e.value, e.term), true
	}
	panic(in.Kind)
}

// finish records the answer of c's operation at tick t and updates what the
// client believes.
func (g *generator) finish(c *genClient, t int64) {
	o := c.op
	c.op = nil
	c.next = t + 1 + int64(g.rng.IntN(3))
	g.order[o.id] = [2]int{o.seq, o.seq2}
	switch {
	case o.lost == 1:
		return
	case o.lost == 2:
		g.h.Return(o.id, t, unknown)
		return
	}
	g.h.Return(o.id, t, o.out)
	in := o.in
	beliefs := c.tokens
	if nsOf(in.Kind) == nsSemaphore {
		beliefs = c.permits
	}
	dead := func() {
		part := ""
		if !isSessionKind(in.Kind) {
			part = fmt.Sprintf("%s %q", nsNames[nsOf(in.Kind)], in.Name)
		}
		if g.shownDead[part] == nil {
			g.shownDead[part] = map[uint64]bool{}
		}
		g.shownDead[part][c.session] = true
	}
	switch o.out.Kind {
	case SessionExpired:
		dead()
		c.session = 0
	case Granted:
		beliefs[in.Name] = o.out.Token
	case NotHolder:
		delete(beliefs, in.Name)
	case NotLeader:
		delete(c.terms, in.Name)
	case OK:
		switch in.Kind {
		case Release, SemRelease:
			delete(beliefs, in.Name)
		case Campaign:
			c.terms[in.Name] = o.out.Token
		case Resign:
			delete(c.terms, in.Name)
		case CloseSession:
			dead()
			c.session = 0
		}
	}
}

// inject records g.cfg.violation at tick t, with fresh sessions on a name
// whose state in the reference allows it (or, if last, on a fresh name),
// and returns the tick after it; false if no name allowed it. The
// violation is certain whatever the model makes of the history before.
func (g *generator) inject(t int64, last bool) (int64, bool) {
	r := g.r
	client := len(g.clients)
	var fresh []uint64
	newSession := func() uint64 {
		s := r.next()
		r.alive[s] = true
		fresh = append(fresh, s)
		return s
	}
	record := func(in Input, out Output) {
		id := g.h.Call(client, t, in)
		g.h.Return(id, t+1, out)
		t += 2
	}
	// pick returns a random name of names for which ok holds, or a fresh
	// name if last.
	pick := func(names []string, ok func(string) bool, add func(string)) (string, bool) {
		var cands []string
		for _, name := range names {
			if ok(name) {
				cands = append(cands, name)
			}
		}
		if len(cands) > 0 {
			return g.pick(cands), true
		}
		if !last {
			return "", false
		}
		add("violation")
		return "violation", true
	}
	// freeLock returns a lock, made free: its holders' sessions expire
	// (the model may keep them alive until it needs them dead).
	freeLock := func() (string, bool) {
		name, found := pick(g.cfg.locks, func(string) bool { return true },
			func(name string) { r.locks[name] = &refLock{holders: map[uint64]refHold{}} })
		for _, s := range slices.Sorted(maps.Keys(r.locks[name].holders)) {
			r.end(s)
		}
		return name, found
	}
	// emptySem returns a semaphore, made empty as freeLock does (and if
	// unfillable, one that the acquires of lost answers of sessions not
	// shown dead cannot fill).
	emptySem := func(unfillable bool) (string, bool) {
		name, found := pick(g.cfg.sems, func(name string) bool {
			if !unfillable {
				return true
			}
			n := 0
			for s := range g.lostAcq[name] {
				if !g.shownDead[""][s] && !g.shownDead[fmt.Sprintf("semaphore %q", name)][s] {
					n++
				}
			}
			return n < r.sems[name].limit
		}, func(name string) { r.sems[name] = &refSem{limit: 2, holders: map[uint64]uint64{}} })
		if found {
			for _, s := range slices.Sorted(maps.Keys(r.sems[name].holders)) {
				r.end(s)
			}
		}
		return name, found
	}
	var part string
	switch g.cfg.violation {
	case twoExclusive, exclusiveBesideShared:
		name, found := freeLock()
		if !found {
			return t, false
		}
		part = fmt.Sprintf("lock %q", name)
		s1, s2 := newSession(), newSession()
		shared := g.cfg.violation == exclusiveBesideShared
		tok := r.next()
		r.locks[name].holders[s1] = refHold{token: tok, shared: shared}
		record(Input{Kind: TryAcquire, Name: name, Session: s1, Shared: shared}, granted(tok))
		record(try(name, s2), granted(r.next())) // the violation
	case exclusiveTokenNotAbove:
		name, found := freeLock()
		if !found {
			return t, false
		}
		part = fmt.Sprintf("lock %q", name)
		s1, s2 := newSession(), newSession()
		tok := r.next()
		record(Input{Kind: TryAcquire, Name: name, Session: s1, Shared: true}, granted(tok))
		r.next()
		record(rel(name, s1, tok), ok)
		record(try(name, s2), granted(tok)) // the violation: not above tok
	case limitPlusOne:
		name, found := emptySem(false)
		if !found {
			return t, false
		}
		part = fmt.Sprintf("semaphore %q", name)
		m := r.sems[name]
		for range m.limit {
			s := newSession()
			m.holders[s] = r.next()
			record(semTry(name, s, m.limit), granted(m.holders[s]))
		}
		record(semTry(name, newSession(), m.limit), granted(r.next())) // the violation
	case lockedFreeSemaphore:
		name, found := emptySem(true)
		if !found {
			return t, false
		}
		part = fmt.Sprintf("semaphore %q", name)
		m := r.sems[name]
		// The read shows it free: every session the history leaves
		// holding a permit unseen (its expiry or the release of a lost
		// answer unseen) had let go.
		record(getSem(name), semaphore())
		record(semTry(name, newSession(), m.limit), locked(0, 0)) // the violation
	}
	// The fresh sessions were alive all along; then they expire.
	for _, s := range fresh {
		r.next()
		record(keep(s), ok)
	}
	for _, s := range fresh {
		r.end(s)
	}
	g.injected = part
	return t, true
}

var (
	fourLocks     = []string{"a", "b", "c", "d"}
	fourElections = []string{"e1", "e2", "e3", "e4"}
	fourSems      = []string{"s1", "s2", "s3", "s4"} // limits 2, 3, 1, 2
)

// shape is a set of names and how often acquires are shared.
type shape struct {
	name                   string
	locks, elections, sems []string
	sharedPct              int
}

// config returns the default configuration of shape sh.
func (sh shape) config(seed uint64) genConfig {
	c := defaultConfig(seed, sh.locks, sh.elections)
	c.sems, c.sharedPct = sh.sems, sh.sharedPct
	return c
}

// shapes are the name sets of the random tests: 4 locks, 4 elections, 2 of
// each, a single hot lock that all sessions fight over, 4 read-write locks,
// 4 semaphores, and some of everything.
var shapes = []shape{
	{name: "locks", locks: fourLocks},
	{name: "elections", elections: fourElections},
	{name: "mixed", locks: fourLocks[:2], elections: fourElections[:2]},
	{name: "hot", locks: []string{"hot"}},
	{name: "rwlocks", locks: fourLocks, sharedPct: 50},
	{name: "semaphores", sems: fourSems},
	{name: "all", locks: fourLocks[:2], elections: fourElections[:1], sems: fourSems[:2], sharedPct: 40},
}

// stress is a harder shape: more sessions, slower answers, longer waits, 10%
// lost answers.
func stress(seed uint64) genConfig {
	c := defaultConfig(seed, fourLocks[:2], fourElections[:2])
	c.sessions, c.latency, c.wait, c.lostPct, c.expiry = 12, 10, 40, 10, 150
	return c
}

// stressAll is stress over read-write locks, an election and semaphores.
func stressAll(seed uint64) genConfig {
	c := stress(seed)
	c.elections, c.sems, c.sharedPct = fourElections[:1], fourSems[:2], 50
	return c
}

// checkLimit bounds one Check of ~2,000 operations in the random tests:
// they take milliseconds, and a few hundred at worst, but the limit is
// generous for -race on a busy 2-core machine.
const checkLimit = 5 * time.Second

// TestRandomValidHistories: ~2,000 random valid operations over 4 names by 8
// sessions (and 2 readers) check as linearizable, fast; so do the stress
// shapes.
func TestRandomValidHistories(t *testing.T) {
	t.Parallel()
	var cfgs []genConfig
	var names []string
	for _, sh := range shapes {
		for seed := uint64(1); seed <= 5; seed++ {
			cfgs = append(cfgs, sh.config(seed))
			names = append(names, fmt.Sprintf("%s/seed%d", sh.name, seed))
		}
	}
	for seed := uint64(1); seed <= 3; seed++ {
		cfgs = append(cfgs, stress(seed), stressAll(seed))
		names = append(names, fmt.Sprintf("stress/seed%d", seed), fmt.Sprintf("stressAll/seed%d", seed))
	}
	for i, cfg := range cfgs {
		t.Run(names[i], func(t *testing.T) {
			h := genHistory(cfg)
			start := time.Now()
			res := h.Check(30 * time.Second)
			took := time.Since(start)
			t.Logf("%d ops, %d partitions: %v", res.Ops, res.Partitions, took)
			if !res.Ok {
				t.Fatalf("a valid history failed: %+v", res)
			}
			if took > checkLimit {
				t.Errorf("check took %v, over %v", took, checkLimit)
			}
		})
	}
}

// TestModelAcceptsReferenceOrder steps the model through random histories
// in the order in which the reference implementation applied them (no
// search): the model must accept the true linearization of a valid history,
// whatever sessions expired and whatever lost answers took effect unseen.
func TestModelAcceptsReferenceOrder(t *testing.T) {
	t.Parallel()
	all := shapes[len(shapes)-1]
	for seed := uint64(1); seed <= 25; seed++ {
		for _, cfg := range []genConfig{defaultConfig(seed, fourLocks[:2], fourElections[:2]), stress(seed), all.config(seed), stressAll(seed)} {
			h, order, _ := genHistoryOrder(cfg)
			parts, sessions, err := partitionHistory(h.ops)
			if err != nil {
				t.Fatal(err)
			}
			model := newModel(sessions)
			for _, p := range parts {
				if err := replay(model, p, order); err != nil {
					t.Fatalf("seed %d: %s: %v", seed, p.name, err)
				}
			}
		}
	}
}

// lostAcquires returns, by name, the sessions with an acquire of a shared
// hold or a permit whose answer is lost: an acquire the model may make
// happen unseen with a token it bounds only loosely (see state).
func lostAcquires(ops []record) map[string]map[uint64]bool {
	lost := map[string]map[uint64]bool{}
	for _, r := range ops {
		if (r.in.Shared || r.in.Kind == SemAcquire || r.in.Kind == SemTryAcquire) && (!r.returned || r.out.Kind == Unknown) {
			if lost[r.in.Name] == nil {
				lost[r.in.Name] = map[uint64]bool{}
			}
			lost[r.in.Name][r.in.Session] = true
		}
	}
	return lost
}

// mutations change one answer late in a valid history so that it is
// certainly not linearizable; each reports whether it found something to
// change.
var mutations = []struct {
	name   string
	mutate func(ops []record) bool
}{
	{"a grant reuses the token of an earlier grant to another session", func(ops []record) bool {
		return mutateLate(ops, func(j int) bool {
			b := &ops[j]
			if !b.returned || b.out.Kind != Granted || b.in.Shared || nsOf(b.in.Kind) != nsLock {
				return false
			}
			for i := j - 1; i >= 0; i-- {
				a := ops[i]
				if a.returned && a.out.Kind == Granted && nsOf(a.in.Kind) == nsLock && a.in.Name == b.in.Name && a.in.Session != b.in.Session && a.ret < b.call {
					b.out.Token = a.out.Token
					return true
				}
			}
			return false
		})
	}},
	{"a read shows the holder of a completed release", func(ops []record) bool {
		return mutateLate(ops, func(j int) bool {
			b := &ops[j]
			if !b.returned || b.in.Kind != GetLock || b.out.Kind != OK {
				return false
			}
			for i := j - 1; i >= 0; i-- {
				a := ops[i]
				if a.returned && a.in.Kind == Release && a.out.Kind == OK && a.in.Name == b.in.Name && a.ret < b.call {
					b.out = holder(a.in.Session, a.in.Token)
					return true
				}
			}
			return false
		})
	}},
	{"a read shows the leader of a completed resignation", func(ops []record) bool {
		return mutateLate(ops, func(j int) bool {
			b := &ops[j]
			if !b.returned || b.in.Kind != GetLeader || b.out.Kind != OK {
				return false
			}
			for i := j - 1; i >= 0; i-- {
				a := ops[i]
				if a.returned && a.in.Kind == Resign && a.out.Kind == OK && a.in.Name == b.in.Name && a.ret < b.call {
					b.out = leader(a.in.Session, b.out.Value, a.in.Token)
					return true
				}
			}
			return false
		})
	}},
	{"a read shows a permit given back", func(ops []record) bool {
		lost := lostAcquires(ops)
		return mutateLate(ops, func(j int) bool {
			b := &ops[j]
			if !b.returned || b.in.Kind != GetSemaphore || b.out.Kind != OK {
				return false
			}
			for i := j - 1; i >= 0; i-- {
				a := ops[i]
				if a.returned && a.in.Kind == SemRelease && a.out.Kind == OK && a.in.Name == b.in.Name && a.ret < b.call &&
					!lost[a.in.Name][a.in.Session] {
					hs := slices.DeleteFunc(slices.Clone(b.out.Holders), func(h Hold) bool { return h.Session == a.in.Session })
					b.out.Holders = append(hs, Hold{Session: a.in.Session, Token: a.in.Token})
					return true
				}
			}
			return false
		})
	}},
	{"a shared grant's token below an earlier grant's", func(ops []record) bool {
		lost := lostAcquires(ops)
		return mutateLate(ops, func(j int) bool {
			b := &ops[j]
			if !b.returned || b.out.Kind != Granted || !b.in.Shared || lost[b.in.Name][b.in.Session] {
				return false
			}
			for i := j - 1; i >= 0; i-- {
				a := ops[i]
				if a.returned && a.out.Kind == Granted && a.in.Kind <= TryAcquire && a.in.Name == b.in.Name && a.ret < b.call &&
					a.out.Token > 1 && a.out.Token-1 != b.out.Token {
					b.out.Token = a.out.Token - 1
					return true
				}
			}
			return false
		})
	}},
}

// mutateLate calls try on the operations from 80% of the history on (then
// on those from 50% to 80%), until it changes one.
func mutateLate(ops []record, try func(j int) bool) bool {
	for j := len(ops) * 4 / 5; j < len(ops); j++ {
		if try(j) {
			return true
		}
	}
	for j := len(ops) / 2; j < len(ops)*4/5; j++ {
		if try(j) {
			return true
		}
	}
	return false
}

// TestRandomMutationsRejected: valid random histories with one answer made
// impossible late in the history are rejected, within the time limit (not
// timed out: a checker that proves histories fast but needs minutes to find
// a violation is of no use to a simulation).
func TestRandomMutationsRejected(t *testing.T) {
	t.Parallel()
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 8; seed++ {
				cfg := shapes[len(shapes)-1].config(seed)
				if seed > 5 {
					cfg = stressAll(seed)
				}
				h := genHistory(cfg)
				if !m.mutate(h.ops) {
					t.Fatalf("seed %d: nothing to mutate", seed)
				}
				start := time.Now()
				res := h.Check(30 * time.Second)
				took := time.Since(start)
				t.Logf("seed %d: %v: %s", seed, took, res.Failed)
				if res.Ok || res.TimedOut {
					t.Fatalf("seed %d: mutated history: %+v", seed, res)
				}
				if took > checkLimit {
					t.Errorf("seed %d: check took %v, over %v", seed, took, checkLimit)
				}
			}
		})
	}
}

// BenchmarkCheck2000 checks one mixed random history of 2,000 operations.
func BenchmarkCheck2000(b *testing.B) {
	h := genHistory(defaultConfig(1, fourLocks[:2], fourElections[:2]))
	for b.Loop() {
		if res := h.Check(time.Minute); !res.Ok {
			b.Fatal(res)
		}
	}
}

// BenchmarkCheck2000All checks one random history of 2,000 operations on
// read-write locks, an election and semaphores.
func BenchmarkCheck2000All(b *testing.B) {
	h := genHistory(shapes[len(shapes)-1].config(1))
	for b.Loop() {
		if res := h.Check(time.Minute); !res.Ok {
			b.Fatal(res)
		}
	}
}

// replay steps model through partition p's operations in the reference's
// order.
func replay(model porcupine.Model, p partition, order map[int][2]int) error {
	// Whole operations go where the reference applied them; the zero-width
	// steps of Unknown and Cancelled operations at their time, after every
	// operation that returned before it (as in any linearization), and a
	// Cancelled wait's return after its release.
	type ret struct {
		at  int64
		seq int
	}
	var rets []ret // the whole operations by return time, with the latest seq so far
	for _, op := range p.ops {
		if m := op.Input.(*mop); m.phase == whole {
			rets = append(rets, ret{op.Return, order[m.id][0]})
		}
	}
	slices.SortFunc(rets, func(a, b ret) int { return cmp.Compare(a.at, b.at) })
	for i := 1; i < len(rets); i++ {
		rets[i].seq = max(rets[i].seq, rets[i-1].seq)
	}
	before := func(at int64) float64 {
		i, _ := slices.BinarySearchFunc(rets, at, func(r ret, at int64) int {
			if r.at < at {
				return -1
			}
			return 1
		})
		if i == 0 {
			return 0
		}
		return float64(2 * rets[i-1].seq)
	}
	type placed struct {
		op  porcupine.Operation
		pos float64
	}
	ops := make([]placed, len(p.ops))
	for i, op := range p.ops {
		m := op.Input.(*mop)
		o := order[m.id]
		pos := float64(2 * o[0])
		switch m.phase {
		case unknownCall, cancelCall:
			pos = before(op.Call) + 0.5
		case cancelReturn:
			pos = max(before(op.Call), float64(2*max(o[0], o[1]))) + 0.5
		}
		ops[i] = placed{op, pos}
	}
	slices.SortStableFunc(ops, func(a, b placed) int {
		if c := cmp.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		return cmp.Compare(a.op.Call, b.op.Call)
	})
	st := model.Init()
	for i, pl := range ops {
		op := pl.op
		ok, next := model.Step(st, op.Input, op.Output)
		if !ok {
			var prev []string
			for _, o := range ops[max(0, i-8):i] {
				prev = append(prev, describeOp(o.op))
			}
			return fmt.Errorf("step %d %s impossible in %s; after\n\t%s", i, describeOp(op), model.DescribeState(st), strings.Join(prev, "\n\t"))
		}
		st = next
	}
	return nil
}

// perturb changes the answer of one random operation of ops, keeping the
// history well formed; the result may or may not be linearizable.
func perturb(rng *rand.Rand, ops []record) {
	var sessions []uint64
	for _, r := range ops {
		if r.in.Session != 0 {
			sessions = append(sessions, r.in.Session)
		}
	}
	for {
		r := &ops[rng.IntN(len(ops))]
		if !r.returned {
			continue
		}
		o := &r.out
		read := r.in.Kind == GetLock || r.in.Kind == GetLeader || r.in.Kind == GetSemaphore
		switch x := rng.IntN(5); {
		case x == 0 && o.Token != 0:
			o.Token = uint64(max(1, int(o.Token)+rng.IntN(7)-3))
		case x == 1 && (read || o.Kind == Locked || o.Kind == NotLeader):
			if rng.IntN(3) == 0 {
				o.Session, o.Token, o.Value = 0, 0, ""
			} else {
				o.Session = sessions[rng.IntN(len(sessions))]
			}
		case x == 2:
			kinds := allowed[r.in.Kind]
			k := kinds[rng.IntN(len(kinds))]
			if k == Cancelled || k == o.Kind {
				continue
			}
			o.Kind = k
			if k == Granted && o.Token == 0 {
				o.Token = uint64(1 + rng.IntN(50))
			}
		case x == 3:
			o.Kind = Unknown
		case x == 4 && o.Holders != nil:
			perturbHolders(rng, o, sessions)
		default:
			continue
		}
		return
	}
}

// perturbHolders changes the holders (or the limit) a read shows.
func perturbHolders(rng *rand.Rand, o *Output, sessions []uint64) {
	hs := slices.Clone(o.Holders)
	i := rng.IntN(len(hs) + 1)
	switch rng.IntN(5) {
	case 0:
		if i < len(hs) {
			hs = slices.Delete(hs, i, i+1)
		}
	case 1:
		s := sessions[rng.IntN(len(sessions))]
		if !slices.ContainsFunc(hs, func(h Hold) bool { return h.Session == s }) {
			tok := uint64(1 + rng.IntN(50))
			if len(hs) > 0 {
				tok = hs[rng.IntN(len(hs))].Token // an equal token is more often possible
			}
			hs = append(hs, Hold{Session: s, Token: tok, Shared: rng.IntN(2) == 0})
		}
	case 2:
		if i < len(hs) {
			hs[i].Token = uint64(max(1, int(hs[i].Token)+rng.IntN(5)-2))
		}
	case 3:
		if i < len(hs) {
			hs[i].Shared = !hs[i].Shared
		}
	default:
		o.Limit += rng.IntN(3) - 1
	}
	o.Holders = hs
}

// agreeSeeds and agreePerturb size TestSearchAgreesWithPorcupine: seeds,
// and up to agreePerturb-1 perturbations each.
var (
	agreeSeeds   uint64 = 200
	agreePerturb        = 3
	agreeOps            = 300
)

// agree checks every partition of the history recorded in ops with search
// and with porcupine's checker, given the same model; it reports a
// disagreement as an error, and returns the number of partitions
// porcupine decided and of those not linearizable.
func agree(t *testing.T, what string, ops []record) (decided, bad int) {
	t.Helper()
	parts, sessions, err := partitionHistory(ops)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	model := newModel(sessions)
	for _, p := range parts {
		want := porcupine.CheckOperationsTimeout(model, p.ops, 2*time.Second)
		if want == porcupine.Unknown {
			continue
		}
		decided++
		got, _ := search(model, p.ops, 0)
		if (got == linearizable) != (want == porcupine.Ok) {
			t.Errorf("%s %s: search %v, porcupine %v", what, p.name, got, want)
		}
		if want == porcupine.Illegal {
			bad++
		}
	}
	return decided, bad
}

// TestSearchAgreesWithPorcupine: on small random histories of every shape,
// valid or with one answer perturbed (so that about half are not
// linearizable), the search of Check and porcupine's own checker, given the
// same model, agree on every partition porcupine decides. This guards the
// search's observation reduction.
func TestSearchAgreesWithPorcupine(t *testing.T) {
	t.Parallel()
	bad, decided := 0, 0
	for seed := uint64(1); seed <= agreeSeeds; seed++ {
		cfg := shapes[seed%uint64(len(shapes))].config(seed)
		if seed%5 == 0 {
			cfg = stress(seed)
			if seed%10 == 0 {
				cfg = stressAll(seed)
			}
		}
		cfg.ops = agreeOps
		h := genHistory(cfg)
		rng := rand.New(rand.NewPCG(seed, 7))
		for range rng.IntN(agreePerturb) {
			perturb(rng, h.ops)
		}
		d, b := agree(t, fmt.Sprintf("seed %d", seed), h.ops)
		decided, bad = decided+d, bad+b
	}
	t.Logf("%d partitions decided, %d not linearizable", decided, bad)
	if bad == 0 || bad == decided {
		t.Errorf("%d of %d partitions not linearizable: the test proves nothing", bad, decided)
	}
}

// smallSeeds sizes TestSearchAgreesOnSmallHistories: histories per shape.
var smallSeeds uint64 = 2000

// TestSearchAgreesOnSmallHistories: as TestSearchAgreesWithPorcupine, on
// thousands of small histories of a read-write lock and of a semaphore
// (contended, with lost answers, cancelled waits and expiries), valid,
// perturbed, or (one in four) with a violation of a rule of read-write
// locks or semaphores injected, which both must reject.
func TestSearchAgreesOnSmallHistories(t *testing.T) {
	t.Parallel()
	for _, sh := range []struct {
		shape
		violations []violation
	}{
		{shape{name: "rwlocks", locks: []string{"a"}, sharedPct: 60}, []violation{twoExclusive, exclusiveBesideShared, exclusiveTokenNotAbove}},
		{shape{name: "semaphores", sems: []string{"s"}}, []violation{limitPlusOne, lockedFreeSemaphore}},
	} {
		t.Run(sh.name, func(t *testing.T) {
			bad, decided, injected := 0, 0, 0
			for seed := uint64(1); seed <= smallSeeds; seed++ {
				cfg := sh.config(seed)
				cfg.ops, cfg.sessions, cfg.readers, cfg.expiry = 40, 4, 1, 120
				cfg.lostPct, cfg.cancelPct, cfg.limitShift = 8, 30, int(seed%3)
				rng := rand.New(rand.NewPCG(seed, 11))
				if seed%4 == 0 {
					cfg.violation = sh.violations[int(seed/4)%len(sh.violations)]
				}
				h, _, part := genHistoryOrder(cfg)
				if part == "" {
					for range rng.IntN(4) {
						perturb(rng, h.ops)
					}
				}
				what := fmt.Sprintf("seed %d", seed)
				if part != "" {
					what += " (" + violationNames[cfg.violation] + ")"
				}
				d, b := agree(t, what, h.ops)
				decided, bad = decided+d, bad+b
				if part == "" {
					continue
				}
				injected++
				if res := h.Check(10 * time.Second); res.Ok || !strings.HasPrefix(res.Failed, part+": not linearizable") {
					t.Errorf("%s: violation in %s not found: %+v", what, part, res)
				}
			}
			t.Logf("%d partitions decided, %d not linearizable; %d violations injected", decided, bad, injected)
			if bad < decided/5 || bad > decided*4/5 {
				t.Errorf("%d of %d partitions not linearizable: the test proves little", bad, decided)
			}
		})
	}
}

// violationSeeds sizes TestInjectedViolationsRejected: histories per kind.
var violationSeeds uint64 = 150

// TestInjectedViolationsRejected: random histories into which one
// violation of the read-write lock and semaphore rules is injected at a
// quiet point (with fresh sessions, on a name whose state allows it) are
// rejected, at the injected partition, and porcupine's checker agrees.
func TestInjectedViolationsRejected(t *testing.T) {
	t.Parallel()
	for v := twoExclusive; v <= lockedFreeSemaphore; v++ {
		t.Run(violationNames[v], func(t *testing.T) {
			sh := shape{locks: fourLocks[:2], sharedPct: 50}
			if v >= limitPlusOne {
				sh = shape{sems: fourSems[:2]}
			}
			for seed := uint64(1); seed <= violationSeeds; seed++ {
				cfg := sh.config(seed)
				cfg.ops, cfg.sessions, cfg.readers, cfg.violation = 100, 5, 1, v
				cfg.lostPct = 8
				h, _, part := genHistoryOrder(cfg)
				res := h.Check(10 * time.Second)
				if res.Ok || !strings.HasPrefix(res.Failed, part+": not linearizable") {
					t.Fatalf("seed %d: violation in %s: %+v", seed, part, res)
				}
				parts, sessions, err := partitionHistory(h.ops)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range parts {
					if p.name == part {
						if got := porcupine.CheckOperationsTimeout(newModel(sessions), p.ops, 2*time.Second); got == porcupine.Ok {
							t.Fatalf("seed %d: porcupine accepts %s", seed, part)
						}
					}
				}
			}
		})
	}
}
