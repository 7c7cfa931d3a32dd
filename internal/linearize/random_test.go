package linearize

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// This file generates random valid histories: simulated clients call a
// simple sequential reference implementation of locks, elections and
// sessions, each operation taking effect at one tick between its call and
// its answer (a waiting Acquire or Campaign at the first tick it can be
// granted), with random jitter, random session expiry, lost answers and
// cancelled waits.

type refLock struct{ holder, token uint64 }

type refElection struct {
	leader uint64
	value  string
	term   uint64
}

// ref is the sequential reference: a log index that every write uses up,
// sessions, locks and elections.
type ref struct {
	index     uint64
	alive     map[uint64]bool
	locks     map[string]*refLock
	elections map[string]*refElection
}

func (r *ref) next() uint64 { r.index++; return r.index }

func (r *ref) end(s uint64) {
	r.alive[s] = false
	for _, l := range r.locks {
		if l.holder == s {
			*l = refLock{}
		}
	}
	for _, e := range r.elections {
		if e.leader == s {
			*e = refElection{}
		}
	}
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
	op      *genOp
	next    int64
}

// genConfig shapes a random history.
type genConfig struct {
	seed              uint64
	ops               int      // operations to call
	sessions, readers int      // clients with a session each; clients that only read
	locks, elections  []string // names
	latency           int      // an operation takes effect up to latency-1 ticks after its call, and answers up to latency-1 ticks later
	wait              int      // a waiting Acquire or Campaign waits up to wait-1 ticks
	lostPct           int      // % of answers lost (half never returned, half Unknown; half of them without effect)
	cancelPct         int      // % of waits that give up (Cancelled), releasing a grant they got
	expiry            int      // a session expires once in expiry ticks on average
	anonPct           int      // % of Locked and NotLeader answers that do not name the holder
}

// defaultConfig: ~2,000 operations over 4 names by 8 sessions and 2 readers.
func defaultConfig(seed uint64, locks, elections []string) genConfig {
	return genConfig{
		seed: seed, ops: 2000, sessions: 8, readers: 2, locks: locks, elections: elections,
		latency: 4, wait: 15, lostPct: 4, cancelPct: 26, expiry: 250, anonPct: 5,
	}
}

type generator struct {
	cfg       genConfig
	rng       *rand.Rand
	r         *ref
	h         *History
	clients   []*genClient
	lockNames []string
	elNames   []string
	applied   int            // operations applied so far
	order     map[int][2]int // History id to genOp.seq, seq2
}

// genHistory returns a valid random history shaped by cfg.
func genHistory(cfg genConfig) *History {
	h, _ := genHistoryOrder(cfg)
	return h
}

// genHistoryOrder is genHistory that also returns the order in which the
// reference applied the operations: History id to its position (1, 2, ...;
// 0 = never applied) and, for a wait that was granted and then cancelled,
// the position of its release.
func genHistoryOrder(cfg genConfig) (*History, map[int][2]int) {
	lockNames, elNames := cfg.locks, cfg.elections
	n, sessions, readers := cfg.ops, cfg.sessions, cfg.readers
	g := &generator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
		r:         &ref{alive: map[uint64]bool{}, locks: map[string]*refLock{}, elections: map[string]*refElection{}},
		h:         NewHistory(),
		lockNames: lockNames,
		elNames:   elNames,
		order:     map[int][2]int{},
	}
	for _, name := range lockNames {
		g.r.locks[name] = &refLock{}
	}
	for _, name := range elNames {
		g.r.elections[name] = &refElection{}
	}
	for i := 0; i < sessions+readers; i++ {
		g.clients = append(g.clients, &genClient{id: i, reader: i >= sessions})
	}
	issued := 0
	for t := int64(0); ; t++ {
		if g.rng.IntN(g.cfg.expiry) == 0 {
			c := g.clients[g.rng.IntN(sessions)]
			if c.session != 0 && g.r.alive[c.session] {
				g.r.end(c.session)
			}
		}
		busy := false
		for _, i := range g.rng.Perm(len(g.clients)) {
			c := g.clients[i]
			if c.op == nil && t >= c.next && issued < n {
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
		if !busy && issued >= n {
			return g.h, g.order
		}
	}
}

func (g *generator) pick(names []string) string { return names[g.rng.IntN(len(names))] }

// start calls a new random operation of client c at tick t.
func (g *generator) start(c *genClient, t int64) {
	if c.session == 0 && !c.reader {
		c.session = g.r.next()
		g.r.alive[c.session] = true
		c.tokens, c.terms = map[string]uint64{}, map[string]uint64{}
	}
	var in Input
	wait := int64(0)
	x := g.rng.IntN(100)
	switch {
	case c.reader && len(g.elNames) == 0:
		x = 40 // GetLock
	case c.reader && len(g.lockNames) == 0:
		x = 90 // GetLeader
	case c.reader:
		x = 40 + 50*(x%2)
	case len(g.elNames) == 0:
		x %= 60 // lock and session operations
	case len(g.lockNames) == 0:
		x = 46 + x%54 // session and election operations
	}
	s := c.session
	switch {
	case x < 14:
		in = try(g.pick(g.lockNames), s)
	case x < 24:
		in = acq(g.pick(g.lockNames), s)
		wait = int64(g.rng.IntN(g.cfg.wait))
	case x < 38:
		name, tok := g.pick(g.lockNames), uint64(0)
		if held := slices.Sorted(maps.Keys(c.tokens)); len(held) > 0 {
			name = held[g.rng.IntN(len(held))]
			tok = c.tokens[name]
		}
		if tok == 0 || g.rng.IntN(10) == 0 {
			tok = uint64(g.rng.IntN(int(g.r.index) + 1))
		}
		in = rel(name, s, tok)
	case x < 46:
		in = getLock(g.pick(g.lockNames))
	case x < 58:
		in = keep(s)
	case x < 60:
		in = closeS(s)
	case x < 72:
		in = camp(g.pick(g.elNames), s, fmt.Sprintf("v%d", g.rng.IntN(5)))
		if g.rng.IntN(2) == 0 {
			wait = int64(g.rng.IntN(g.cfg.wait))
		}
	case x < 90:
		name, tm := g.pick(g.elNames), uint64(0)
		if led := slices.Sorted(maps.Keys(c.terms)); len(led) > 0 {
			name = led[g.rng.IntN(len(led))]
			tm = c.terms[name]
		}
		if tm == 0 || g.rng.IntN(10) == 0 {
			tm = uint64(g.rng.IntN(int(g.r.index) + 1))
		}
		if x < 82 {
			in = procl(name, s, tm, fmt.Sprintf("p%d", g.rng.IntN(5)))
		} else {
			in = resign(name, s, tm)
		}
	default:
		in = getLeader(g.pick(g.elNames))
	}
	o := &genOp{in: in, linAt: t + int64(g.rng.IntN(g.cfg.latency))}
	o.deadline = o.linAt + wait
	switch {
	case g.rng.IntN(100) < g.cfg.lostPct:
		o.lost = 1 + g.rng.IntN(2)
		o.noEffect = g.rng.IntN(2) == 0
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
	if o.releaseAt != 0 {
		if t == o.releaseAt {
			// The cancelled wait's caller releases what it was granted.
			if o.in.Kind == Acquire {
				if l := g.r.locks[o.in.Name]; l.holder == o.in.Session && l.token == o.out.Token {
					g.r.next()
					*l = refLock{}
				}
			} else if e := g.r.elections[o.in.Name]; e.leader == o.in.Session && e.term == o.out.Token {
				g.r.next()
				*e = refElection{}
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
	if o.in.Kind == Acquire {
		held = g.r.locks[o.in.Name].holder == o.in.Session
	} else if o.in.Kind == Campaign {
		held = g.r.elections[o.in.Name].leader == o.in.Session
	}
	out, done := g.apply(o.in, t == o.deadline)
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

// apply is the reference implementation of one operation; final: a wait
// that has run out.
func (g *generator) apply(in Input, final bool) (Output, bool) {
	r := g.r
	s := in.Session
	switch in.Kind {
	case Acquire, TryAcquire:
		l := r.locks[in.Name]
		switch {
		case !r.alive[s]:
			return expired, true
		case l.holder == s:
			return granted(l.token), true
		case l.holder == 0:
			*l = refLock{holder: s, token: r.next()}
			return granted(l.token), true
		case in.Kind == TryAcquire || final:
			if g.rng.IntN(100) < g.cfg.anonPct {
				return locked(0, 0), true
			}
			return locked(l.holder, l.token), true
		}
		return Output{}, false
	case Release:
		l := r.locks[in.Name]
		r.next()
		if l.holder == s && l.token == in.Token {
			*l = refLock{}
			return ok, true
		}
		return notHolder, true
	case GetLock:
		l := r.locks[in.Name]
		return holder(l.holder, l.token), true
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
	switch o.out.Kind {
	case SessionExpired:
		c.session = 0
	case Granted:
		c.tokens[in.Name] = o.out.Token
	case NotHolder:
		delete(c.tokens, in.Name)
	case NotLeader:
		delete(c.terms, in.Name)
	case OK:
		switch in.Kind {
		case Release:
			delete(c.tokens, in.Name)
		case Campaign:
			c.terms[in.Name] = o.out.Token
		case Resign:
			delete(c.terms, in.Name)
		case CloseSession:
			c.session = 0
		}
	}
}

var (
	fourLocks     = []string{"a", "b", "c", "d"}
	fourElections = []string{"e1", "e2", "e3", "e4"}
)

// shapes are the name sets of the random tests: 4 locks, 4 elections, 2 of
// each, and a single hot lock that all sessions fight over.
var shapes = []struct {
	name             string
	locks, elections []string
}{
	{"locks", fourLocks, nil},
	{"elections", nil, fourElections},
	{"mixed", fourLocks[:2], fourElections[:2]},
	{"hot", []string{"hot"}, nil},
}

// stress is a harder shape: more sessions, slower answers, longer waits, 10%
// lost answers.
func stress(seed uint64) genConfig {
	c := defaultConfig(seed, fourLocks[:2], fourElections[:2])
	c.sessions, c.latency, c.wait, c.lostPct, c.expiry = 12, 10, 40, 10, 150
	return c
}

// checkLimit bounds one Check of ~2,000 operations in the random tests:
// they take milliseconds, and a few hundred at worst, but the limit is
// generous for -race on a busy 2-core machine.
const checkLimit = 5 * time.Second

// TestRandomValidHistories: ~2,000 random valid operations over 4 names by 8
// sessions (and 2 readers) check as linearizable, fast; so does the stress
// shape.
func TestRandomValidHistories(t *testing.T) {
	var cfgs []genConfig
	var names []string
	for _, sh := range shapes {
		for seed := uint64(1); seed <= 5; seed++ {
			cfgs = append(cfgs, defaultConfig(seed, sh.locks, sh.elections))
			names = append(names, fmt.Sprintf("%s/seed%d", sh.name, seed))
		}
	}
	for seed := uint64(1); seed <= 3; seed++ {
		cfgs = append(cfgs, stress(seed))
		names = append(names, fmt.Sprintf("stress/seed%d", seed))
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
	for seed := uint64(1); seed <= 25; seed++ {
		for _, cfg := range []genConfig{defaultConfig(seed, fourLocks[:2], fourElections[:2]), stress(seed)} {
			h, order := genHistoryOrder(cfg)
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
			if !b.returned || b.out.Kind != Granted {
				return false
			}
			for i := j - 1; i >= 0; i-- {
				a := ops[i]
				if a.returned && a.out.Kind == Granted && a.in.Name == b.in.Name && a.in.Session != b.in.Session && a.ret < b.call {
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
}

// mutateLate calls try on the operations from 80% of the history on, until
// it changes one.
func mutateLate(ops []record, try func(j int) bool) bool {
	for j := len(ops) * 4 / 5; j < len(ops); j++ {
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
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 8; seed++ {
				cfg := defaultConfig(seed, fourLocks[:2], fourElections[:2])
				if seed > 5 {
					cfg = stress(seed)
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

// replay steps model through partition p's operations in the reference's
// order.
func replay(model porcupine.Model, p partition, order map[int][2]int) error {
	pos := func(op porcupine.Operation) int {
		m := op.Input.(*mop)
		o := order[m.id]
		if o[0] == 0 {
			return math.MaxInt // never applied: anywhere will do
		}
		switch m.phase {
		case unknownCall, cancelCall:
			return 2*o[0] - 1 // registered just before it took effect
		case cancelReturn:
			return 2*max(o[0], o[1]) + 1 // after the release, if any
		}
		return 2 * o[0]
	}
	ops := slices.Clone(p.ops)
	slices.SortStableFunc(ops, func(a, b porcupine.Operation) int { return cmp.Compare(pos(a), pos(b)) })
	st := model.Init()
	for i, op := range ops {
		ok, next := model.Step(st, op.Input, op.Output)
		if !ok {
			var prev []string
			for _, o := range ops[max(0, i-8):i] {
				prev = append(prev, describeOp(o))
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
		switch x := rng.IntN(4); {
		case x == 0 && o.Token != 0:
			o.Token = uint64(max(1, int(o.Token)+rng.IntN(7)-3))
		case x == 1 && (r.in.Kind == GetLock || r.in.Kind == GetLeader || o.Kind == Locked || o.Kind == NotLeader):
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
		default:
			continue
		}
		return
	}
}

// TestSearchAgreesWithPorcupine: on small random histories, valid or with
// one answer perturbed (so that about half are not linearizable), the
// search of Check and porcupine's own checker, given the same model, agree
// on every partition porcupine decides. This guards the search's
// observation reduction.
// agreeSeeds and agreePerturb size TestSearchAgreesWithPorcupine: seeds,
// and up to agreePerturb-1 perturbations each.
var (
	agreeSeeds   uint64 = 200
	agreePerturb        = 3
	agreeOps            = 300
)

func TestSearchAgreesWithPorcupine(t *testing.T) {
	bad, decided := 0, 0
	for seed := uint64(1); seed <= agreeSeeds; seed++ {
		sh := shapes[seed%uint64(len(shapes))]
		cfg := defaultConfig(seed, sh.locks, sh.elections)
		cfg.ops = agreeOps
		if seed%5 == 0 {
			cfg = stress(seed)
			cfg.ops = agreeOps
		}
		h := genHistory(cfg)
		rng := rand.New(rand.NewPCG(seed, 7))
		for range rng.IntN(agreePerturb) {
			perturb(rng, h.ops)
		}
		parts, sessions, err := partitionHistory(h.ops)
		if err != nil {
			t.Fatal(err)
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
				t.Errorf("seed %d %s: search %v, porcupine %v", seed, p.name, got, want)
			}
			if want == porcupine.Illegal {
				bad++
			}
		}
	}
	t.Logf("%d partitions decided, %d not linearizable", decided, bad)
	if bad == 0 || bad == decided {
		t.Errorf("%d of %d partitions not linearizable: the test proves nothing", bad, decided)
	}
}
