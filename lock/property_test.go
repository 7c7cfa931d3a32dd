package lock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
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
	r     *rand.Rand
	m     *Machine
	index uint64
	term  uint64
	now   int64
	ids   []uint64 // every session ID ever opened (some closed or expired)
	names []string
}

func (g *gen) session() uint64 {
	if len(g.ids) == 0 || g.r.IntN(10) == 0 {
		return g.r.Uint64N(g.index + 2)
	}
	return g.ids[g.r.IntN(len(g.ids))]
}

func (g *gen) name() string { return g.names[g.r.IntN(len(g.names))] }

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
	c := &Command{Now: now}
	switch k := r.IntN(100); {
	case k < 10:
		c.Op, c.TTL, c.Owner = OpOpenSession, ttl, fmt.Sprint("o", g.index)
	case k < 20:
		c.Op = OpKeepAlive
		for range r.IntN(4) {
			c.Sessions = append(c.Sessions, g.session())
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
		if l, ok := g.m.Lock(c.Name); ok && r.IntN(10) < 8 {
			c.Session, c.Token = l.Holder.Session, l.Holder.Token
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
	default: // malformed
		c.Op, c.Session, c.TTL = Op(r.IntN(12)), g.session(), r.Int64N(3)-1
	}
	e.cmd = c
	return e
}

// checkResult verifies what one Apply returned against the rules that hold
// for every command. lastGrant maps each lock name to its last token.
func checkResult(e entry, res Result, lastGrant map[string]uint64) error {
	for i, ev := range res.Events {
		if ev.Revision != e.index || ev.Seq != uint32(i) {
			return fmt.Errorf("event %d stamped %d.%d", i, ev.Revision, ev.Seq)
		}
		if ev.Type == EventLockGranted {
			if ev.Token != e.index || ev.Token <= lastGrant[ev.Name] {
				return fmt.Errorf("grant of %q token %d at index %d after %d", ev.Name, ev.Token, e.index, lastGrant[ev.Name])
			}
			lastGrant[ev.Name] = ev.Token
		}
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
	seeds, steps := 40, 1500
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			a, b := New(), New()
			g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), m: a, term: 1, now: 1e9,
				names: []string{"a", "b", "c", "d/1"}}
			var c *Machine
			lastGrant := map[string]uint64{}
			grants, expiries := 0, 0
			for step := range steps {
				e := g.next()
				ra := a.Apply(e.index, e.term, e.cmd)
				var cmdB *Command
				if e.cmd != nil {
					var err error
					if cmdB, err = Decode(Encode(e.cmd)); err != nil {
						if e.cmd.Op >= OpTick && e.cmd.Op <= OpPublish {
							t.Fatalf("step %d: decode: %v", step, err)
						}
						cmdB = e.cmd // an unknown op does not encode
					}
				}
				rb := b.Apply(e.index, e.term, cmdB)
				if !reflect.DeepEqual(ra, rb) {
					t.Fatalf("step %d: results differ:\n%+v\n%+v", step, ra, rb)
				}
				if err := checkResult(e, ra, lastGrant); err != nil {
					t.Fatalf("step %d (%+v): %v", step, e.cmd, err)
				}
				if err := checkInvariants(a); err != nil {
					t.Fatalf("step %d (%+v): %v", step, e.cmd, err)
				}
				for _, ev := range ra.Events {
					switch ev.Type {
					case EventSessionOpened:
						g.ids = append(g.ids, ev.Session)
					case EventLockGranted:
						grants++
					case EventSessionExpired:
						expiries++
					}
				}
				sa := a.Snapshot()
				if !bytes.Equal(sa, b.Snapshot()) {
					t.Fatalf("step %d: snapshots differ", step)
				}
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
				}
			}
			// The generator must exercise what it claims to.
			if grants < 50 || expiries < 10 {
				t.Fatalf("weak log: %d grants, %d expiries", grants, expiries)
			}
		})
	}
}
