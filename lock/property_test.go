package lock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// entry is one generated log entry.
type entry struct {
	index, term uint64
	cmd         *Command // nil: an entry without a command
}

// gen generates a random log against a live machine, so that it can pick
// real holders and tokens as well as stale and unknown ones.
type gen struct {
	r      *rand.Rand
	m      *Machine
	index  uint64
	term   uint64
	now    int64
	ids    []uint64 // every session ID ever opened (some closed or expired)
	names  []string
	enames []string // election names
}

func (g *gen) session() uint64 {
	if len(g.ids) == 0 || g.r.IntN(10) == 0 {
		return g.r.Uint64N(g.index + 2)
	}
	return g.ids[g.r.IntN(len(g.ids))]
}

func (g *gen) name() string { return g.names[g.r.IntN(len(g.names))] }

// live is usually an open session (elections need sessions that live
// long enough to campaign), sometimes any.
func (g *gen) live() uint64 {
	var open []uint64
	for _, id := range g.ids {
		if s, ok := g.m.sessions[id]; ok && s.bound == "" {
			open = append(open, id)
		}
	}
	if len(open) == 0 || g.r.IntN(8) == 0 {
		return g.session()
	}
	return open[g.r.IntN(len(open))]
}

func (g *gen) ename() string { return g.enames[g.r.IntN(len(g.enames))] }

// sname is a semaphore name; its length is its limit (1 to 3).
func (g *gen) sname() string { return []string{"s", "ss", "sss"}[g.r.IntN(3)] }

// value is a short value, sometimes empty, rarely too long.
func (g *gen) value() string {
	switch g.r.IntN(40) {
	case 0:
		return ""
	case 1:
		return string(make([]byte, MaxValueSize+1))
	case 2:
		return string(make([]byte, MaxValueSize))
	}
	return fmt.Sprint("v", g.index)
}

func (g *gen) next() entry {
	r := g.r
	g.index += 1 + uint64(r.IntN(10)/9) // sometimes a gap
	if r.IntN(40) == 0 {
		g.term++
	}
	e := entry{index: g.index, term: g.term}
	if r.IntN(30) == 0 {
		return e
	}
	g.now += r.Int64N(2e9)
	now := g.now
	switch r.IntN(10) {
	case 0:
		now = g.now - r.Int64N(5e9) // a skewed leader's clock
	case 1:
		now = 0
	}
	ttl := 1e9 + r.Int64N(10e9)
	if r.IntN(5) == 0 {
		ttl = 20e9 + r.Int64N(40e9) // some sessions live long enough to queue
	}
	c := &Command{Now: now}
	switch k := r.IntN(162); {
	case k < 10:
		c.Op, c.TTL, c.Owner = OpOpenSession, ttl, fmt.Sprint("o", g.index)
		if r.IntN(3) == 0 {
			c.LockDelay = 1e9 + r.Int64N(10e9) // its locks wait after it expires
		}
	case k < 20:
		c.Op = OpKeepAlive
		for range r.IntN(4) {
			if r.IntN(2) == 0 {
				c.Sessions = append(c.Sessions, g.live()) // keep some sessions going
			} else {
				c.Sessions = append(c.Sessions, g.session())
			}
		}
	case k < 24:
		c.Op, c.Session = OpCloseSession, g.session()
	case k < 34:
		c.Op = OpExpire
	case k < 56:
		c.Op, c.Session, c.Name, c.Wait = OpAcquire, g.session(), g.name(), r.IntN(10) < 7
	case k < 63:
		c.Op, c.TTL, c.Owner, c.Name, c.Wait = OpAcquire, ttl, "eph", g.name(), r.IntN(2) == 0
	case k < 80:
		c.Op, c.Name = OpRelease, g.name()
		if l, ok := g.m.Lock(c.Name); ok && len(l.Holders) > 0 && r.IntN(10) < 8 {
			h := l.Holders[r.IntN(len(l.Holders))]
			c.Session, c.Token = h.Session, h.Token
			if r.IntN(8) == 0 {
				c.Token-- // stale
			}
		} else {
			c.Session, c.Token = g.session(), r.Uint64N(g.index+1)
		}
	case k < 92:
		c.Op, c.Session, c.Name = OpCancel, g.session(), g.name()
		if l, ok := g.m.Lock(c.Name); ok && len(l.Waiters) > 0 && r.IntN(2) == 0 {
			c.Session = l.Waiters[r.IntN(len(l.Waiters))].Session
		}
	case k < 95:
		c.Op = OpTick
	case k < 97:
		c.Op, c.Member = OpPublish, Member{ID: r.Uint64N(4), PeerURL: fmt.Sprint("p", g.index)}
	case k < 100: // malformed
		c.Op, c.Session, c.TTL = Op(r.IntN(15)), g.session(), r.Int64N(3)-1
	case k < 113:
		c.Op, c.Session, c.Name, c.Value, c.Wait = OpCampaign, g.live(), g.ename(), g.value(), r.IntN(10) < 7
	case k < 120:
		c.Op, c.Name, c.Value = OpProclaim, g.ename(), g.value()
		if e, ok := g.m.Election(c.Name); ok && r.IntN(10) < 8 {
			c.Session, c.Token = e.Leader.Session, e.Leader.Term
			if r.IntN(6) == 0 {
				c.Token-- // stale
			}
			if r.IntN(6) == 0 {
				c.Value = e.Leader.Value // unchanged
			}
		} else {
			c.Session, c.Token = g.live(), r.Uint64N(g.index+1)
		}
	case k >= 130 && k < 135:
		c.Op, c.Session = OpAcquireAll, g.session()
		for range 1 + r.IntN(3) {
			c.Names = append(c.Names, g.name())
		}
		slices.Sort(c.Names)
		c.Names = slices.Compact(c.Names)
		if r.IntN(2) == 0 {
			for range c.Names {
				c.Modes = append(c.Modes, Mode(r.IntN(2)))
			}
		}
	case k >= 137 && k < 147: // shared
		c.Op, c.Session, c.Name, c.Wait, c.Mode = OpAcquire, g.live(), g.name(), r.IntN(10) < 7, Shared
		if r.IntN(6) == 0 {
			c.Session, c.TTL, c.Owner = 0, ttl, "eph" // an ephemeral shared hold
		}
	case k >= 147 && k < 154:
		c.Op, c.Session, c.Name, c.Wait = OpSemAcquire, g.live(), g.sname(), r.IntN(10) < 7
		c.Limit = uint32(len(c.Name)) // one limit per name...
		if r.IntN(15) == 0 {
			c.Limit++ // ...but for a mismatch now and then
		}
	case k >= 154 && k < 159:
		c.Op, c.Name = OpSemRelease, g.sname()
		if sem, ok := g.m.Semaphore(c.Name); ok && r.IntN(10) < 8 {
			h := sem.Holders[r.IntN(len(sem.Holders))]
			c.Session, c.Token = h.Session, h.Token
			if r.IntN(8) == 0 {
				c.Token-- // stale
			}
		} else {
			c.Session, c.Token = g.session(), r.Uint64N(g.index+1)
		}
	case k >= 159:
		c.Op, c.Session, c.Name = OpSemCancel, g.session(), g.sname()
		if sem, ok := g.m.Semaphore(c.Name); ok && len(sem.Waiters) > 0 && r.IntN(2) == 0 {
			c.Session = sem.Waiters[r.IntN(len(sem.Waiters))].Session
		}
	case k >= 135:
		c.Op, c.ClusterVersion = OpClusterVersion, MaxCommandVersion // the deadlock rule from here on
	default:
		c.Op, c.Name = OpResign, g.ename()
		e, ok := g.m.Election(c.Name)
		switch j := r.IntN(10); {
		case ok && j < 5:
			c.Session, c.Token = e.Leader.Session, e.Leader.Term
			if r.IntN(8) == 0 {
				c.Token-- // stale
			}
		case ok && j < 8 && len(e.Candidates) > 0:
			c.Session = e.Candidates[r.IntN(len(e.Candidates))].Session // withdraw
		case ok && j < 9:
			c.Session = e.Leader.Session // withdraw that lost the race
		default:
			c.Session, c.Token = g.live(), r.Uint64N(g.index+1)*uint64(r.IntN(2))
		}
	}
	e.cmd = c
	return e
}

// checkResult verifies what one Apply returned against the rules that hold
// for every command. lastGrant maps each lock name to its last token and
// lastTerm each election name to its last leader's term.
func checkResult(e entry, res Result, lastGrant, lastTerm map[string]uint64) error {
	for i, ev := range res.Events {
		if ev.Revision != e.index || ev.Seq != uint32(i) {
			return fmt.Errorf("event %d stamped %d.%d", i, ev.Revision, ev.Seq)
		}
		if ev.Type == EventLockGranted || ev.Type == EventPermitGranted {
			// A grant's token is its entry's index: larger than every
			// earlier grant's of that name, equal to the others of this
			// entry (shared holders, permits granted together); an
			// exclusive grant is this entry's only grant of the name.
			key := ev.Name
			if ev.Type == EventPermitGranted {
				key = "semaphore " + ev.Name
			}
			last := lastGrant[key]
			same := last == e.index && ev.Type == EventLockGranted && ev.Mode == Shared && lastGrant["shared "+key] == e.index
			if ev.Type == EventPermitGranted {
				same = last == e.index
			}
			if ev.Token != e.index || (ev.Token <= last && !same) {
				return fmt.Errorf("grant of %q token %d at index %d after %d", ev.Name, ev.Token, e.index, last)
			}
			lastGrant[key] = ev.Token
			if ev.Mode == Shared {
				lastGrant["shared "+key] = ev.Token
			}
		}
		if ev.Type == EventElected {
			if ev.Token != e.index || ev.Token <= lastTerm[ev.Name] {
				return fmt.Errorf("election of %q term %d at index %d after %d", ev.Name, ev.Token, e.index, lastTerm[ev.Name])
			}
			lastTerm[ev.Name] = ev.Token
		}
		if ev.Type == EventNoLeader && ev.Session != 0 {
			return fmt.Errorf("no_leader event with session %d", ev.Session)
		}
	}
	if res.Leader != nil && res.Leader.Term == 0 {
		return fmt.Errorf("leader %d with term 0", res.Leader.Session)
	}
	if res.Code == CodeInvalid && len(res.Events) > 0 {
		return fmt.Errorf("invalid command with events")
	}
	return nil
}

// TestReplayDeterminism applies random logs to two machines (the second one
// through Encode/Decode) and a third restored from a snapshot taken midway:
// their snapshots must be byte-identical at every step and the invariants
// must hold throughout.
func TestReplayDeterminism(t *testing.T) {
	seeds, steps := 40, 2500
	if testing.Short() {
		seeds = 5
	}
	allEvents, allCodes := map[EventType]int{}, map[Code]int{}
	retries := 0 // acquires that AcquireRetry answered, over all seeds
	defer func() {
		if t.Failed() || testing.Short() {
			return
		}
		if retries < 100 {
			t.Fatalf("only %d acquires answered by AcquireRetry", retries)
		}
		// Over all seeds: the rarer outcomes happen too.
		if allEvents[EventPermitQueued] < 20 || allEvents[EventPermitCancelled] < 10 ||
			allCodes[CodeLimitMismatch] < 10 || allCodes[CodeModeMismatch] < 10 || allCodes[CodeDeadlock] < 3 {
			t.Fatalf("weak logs: events %v, codes %v", allEvents, allCodes)
		}
	}()
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			a, b := New(), New()
			g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), m: a, term: 1, now: 1e9,
				names: []string{"a", "b", "c", "d/1"}, enames: []string{"a", "e", "f/1"}}
			var c *Machine
			lastGrant, lastTerm := map[string]uint64{}, map[string]uint64{}
			grants, expiries, shared := 0, 0, 0
			evs := map[EventType]int{}
			codes := map[Code]int{}
			prev := a.Snapshot()
			// The locks each (session, SessionLocks index) stood for, as
			// any machine answered them: one index, one list, whatever the
			// machine (a, or c restored halfway) and its progress.
			validators := map[[2]uint64][]string{}
			checkValidators := func(step int, m *Machine, name string) {
				for id := range m.sessions {
					locks, at, _, _ := m.SessionLocks(id, ^uint64(0), nil)
					key := [2]uint64{id, at}
					if was, ok := validators[key]; ok && !slices.Equal(was, locks) {
						t.Fatalf("step %d: %s: session %d locks %v at index %d, but %v were answered for that index", step, name, id, locks, at, was)
					}
					validators[key] = locks
					// A part is the list filtered.
					odd := func(name string) bool { return len(name)%2 == 1 }
					part, _, _, _ := m.SessionLocks(id, ^uint64(0), odd)
					if want := slices.DeleteFunc(slices.Clone(locks), func(n string) bool { return !odd(n) }); !slices.Equal(part, want) && len(part)+len(want) > 0 {
						t.Fatalf("step %d: %s: session %d: part %v of %v, want %v", step, name, id, part, locks, want)
					}
					if again, at2, _, _ := m.SessionLocks(id, at, nil); again != nil || at2 != at {
						t.Fatalf("step %d: %s: SessionLocks(%d, %d) built %v (index %d), want nothing", step, name, id, at, again, at2)
					}
				}
			}
			for step := range steps {
				e := g.next()
				var pre Result
				retry := false
				if e.cmd != nil && e.cmd.Op == OpAcquire {
					pre, retry = a.AcquireRetry(e.cmd)
				}
				ra := a.Apply(e.index, e.term, e.cmd)
				if retry {
					// AcquireRetry answers exactly as the entry, which
					// changes nothing.
					retries++
					if pre.Code != ra.Code || pre.Session != ra.Session || pre.Token != ra.Token ||
						!reflect.DeepEqual(pre.Holder, ra.Holder) || !reflect.DeepEqual(pre.Holders, ra.Holders) || len(ra.Events) != 0 {
						t.Fatalf("step %d (%+v): AcquireRetry answered %+v, the entry %+v", step, e.cmd, pre, ra)
					}
				}
				var cmdB *Command
				if e.cmd != nil {
					var err error
					if cmdB, err = Decode(Encode(e.cmd)); err != nil {
						if e.cmd.Op >= OpTick && e.cmd.Op <= OpResign || semOp(e.cmd.Op) || e.cmd.Op == OpAcquireAll {
							t.Fatalf("step %d: decode: %v", step, err)
						}
						cmdB = e.cmd // an unknown op does not encode
					}
				}
				rb := b.Apply(e.index, e.term, cmdB)
				if !reflect.DeepEqual(ra, rb) {
					t.Fatalf("step %d: results differ:\n%+v\n%+v", step, ra, rb)
				}
				if err := checkResult(e, ra, lastGrant, lastTerm); err != nil {
					t.Fatalf("step %d (%+v): %v", step, e.cmd, err)
				}
				if err := checkInvariants(a); err != nil {
					t.Fatalf("step %d (%+v): %v", step, e.cmd, err)
				}
				checkValidators(step, a, "machine")
				// Every leader is the last one elected: no leadership
				// changes without an elected event.
				for _, el := range a.Elections("") {
					if el.Leader.Term != lastTerm[el.Name] {
						t.Fatalf("step %d: election %q term %d, last elected %d", step, el.Name, el.Leader.Term, lastTerm[el.Name])
					}
				}
				codes[ra.Code]++
				for _, ev := range ra.Events {
					evs[ev.Type]++
					switch ev.Type {
					case EventSessionOpened:
						g.ids = append(g.ids, ev.Session)
					case EventLockGranted:
						grants++
						if ev.Mode == Shared {
							shared++
						}
					case EventSessionExpired:
						expiries++
					}
				}
				sa := a.Snapshot()
				if !bytes.Equal(sa, b.Snapshot()) {
					t.Fatalf("step %d: snapshots differ", step)
				}
				if e.cmd == nil || ra.Code == CodeInvalid {
					// Nothing but the applied index moved.
					want := New()
					if err := want.Restore(prev); err != nil {
						t.Fatal(err)
					}
					want.applied = e.index
					if !bytes.Equal(want.Snapshot(), sa) {
						t.Fatalf("step %d (%+v): %s changed the state", step, e.cmd, ra.Code)
					}
				}
				prev = sa
				if step == steps/2 {
					c = New()
					if err := c.Restore(sa); err != nil {
						t.Fatalf("restore: %v", err)
					}
					continue
				}
				if c != nil {
					rc := c.Apply(e.index, e.term, e.cmd)
					if !reflect.DeepEqual(ra, rc) {
						t.Fatalf("step %d: restored machine's result differs:\n%+v\n%+v", step, ra, rc)
					}
					if !bytes.Equal(sa, c.Snapshot()) {
						t.Fatalf("step %d: restored machine diverged", step)
					}
					checkValidators(step, c, "restored machine")
				}
			}
			// The generator must exercise what it claims to.
			if grants < 50 || expiries < 10 {
				t.Fatalf("weak log: %d grants, %d expiries", grants, expiries)
			}
			for _, ty := range []EventType{EventElected, EventProclaimed, EventResigned, EventLeaderExpired,
				EventNoLeader, EventCandidateJoined, EventCandidateLeft, EventPermitGranted, EventPermitReleased} {
				if evs[ty] < 5 {
					t.Fatalf("weak log: %d %s events (%v)", evs[ty], ty, evs)
				}
			}
			if shared < 20 {
				t.Fatalf("weak log: %d shared grants", shared)
			}
			for ty, n := range evs {
				allEvents[ty] += n
			}
			for c, n := range codes {
				allCodes[c] += n
			}
			if testing.Verbose() && seed < 3 {
				t.Logf("events: %v codes: %v shared grants %d", evs, codes, shared)
			}
		})
	}
}
