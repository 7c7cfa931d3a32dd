package lock

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkSessionRecs reports how Machine.slots and the counters the capture
// reads instead of scanning the sessions (delayedSessions, byPrincipal)
// differ from the sessions themselves.
func checkSessionRecs(m *Machine) error {
	t := &m.slots
	used := 0
	for i, c := range t.chunks {
		for j, r := range c.recs {
			slot := i*slotChunkSize + j
			if r.s == nil {
				if r != (sessionRec{}) {
					return fmt.Errorf("slot %d: empty with %+v", slot, r)
				}
				continue
			}
			used++
			s := m.sessions[r.id]
			switch {
			case s != r.s || s.id != r.id:
				return fmt.Errorf("slot %d: session %d, not the live one", slot, r.id)
			case s.slot != slot:
				return fmt.Errorf("slot %d: session %d has slot %d", slot, s.id, s.slot)
			case r.deadline != s.deadline:
				return fmt.Errorf("session %d: deadline %d in its slot, %d in the session", s.id, r.deadline, s.deadline)
			}
		}
	}
	if used != len(m.sessions) {
		return fmt.Errorf("%d slots used, %d sessions", used, len(m.sessions))
	}
	if used+len(t.free) != t.next || len(t.chunks) != (t.next+slotChunkSize-1)/slotChunkSize {
		return fmt.Errorf("%d slots used, %d free, next %d, %d chunks", used, len(t.free), t.next, len(t.chunks))
	}
	delayed, principals := 0, 0
	for _, s := range m.sessions {
		if s.lockDelay != 0 {
			delayed++
		}
		if s.principal != "" {
			principals++
		}
	}
	if delayed != m.delayedSessions {
		return fmt.Errorf("%d sessions with a lock-delay, counted %d", delayed, m.delayedSessions)
	}
	if (principals > 0) != (len(m.byPrincipal) > 0) {
		return fmt.Errorf("%d sessions with a principal, %d principals counted", principals, len(m.byPrincipal))
	}
	return nil
}

// The records a capture takes follow every change of the sessions (open,
// keep-alive, the term rule, close, expiry, ephemeral sessions, lock-delays),
// also in a restored machine.
func TestSessionRecsFollowSessions(t *testing.T) {
	for seed := range uint64(20) {
		m := New()
		g := newGen(seed, m)
		for step := range 400 {
			applyGen(g, 1)
			if err := checkSessionRecs(m); err != nil {
				t.Fatalf("seed %d step %d (index %d): %v", seed, step, m.AppliedIndex(), err)
			}
			if step%50 == 49 {
				var r Machine
				if err := r.Restore(m.Snapshot()); err != nil {
					t.Fatal(err)
				}
				if err := checkSessionRecs(&r); err != nil {
					t.Fatalf("seed %d step %d, restored: %v", seed, step, err)
				}
			}
		}
	}
}

// A capture keeps the sessions of its time: deadlines renewed or extended
// by the term rule afterwards, sessions closed, expired or opened
// afterwards (with a lock-delay or a principal, which change the format
// version) do not show in its Encode.
func TestCaptureKeepsSessionsOfItsTime(t *testing.T) {
	m := New()
	i := uint64(0)
	apply := func(term uint64, c *Command) Result {
		t.Helper()
		i++
		r := m.Apply(i, term, c)
		if r.Code == CodeInvalid {
			t.Fatalf("command %+v: invalid", c)
		}
		return r
	}
	for range 3*slotChunkSize + 10 { // several chunks
		apply(1, &Command{Op: OpOpenSession, Now: 1e9, TTL: 10e9})
	}
	apply(1, &Command{Op: OpAcquire, Now: 1e9, Session: 1, Name: "a"})
	apply(1, &Command{Op: OpCloseSession, Now: 1e9, Session: 700}) // a free slot
	want := m.Snapshot()
	c := m.CaptureSnapshot()
	if c.version != snapshotVersion {
		t.Fatalf("version %d, want %d", c.version, snapshotVersion)
	}

	apply(1, &Command{Op: OpKeepAlive, Now: 5e9, Sessions: []uint64{1, 2, 3, 300, 600}})
	apply(2, &Command{Op: OpTick, Now: 6e9}) // the term rule: every deadline moves
	apply(2, &Command{Op: OpCloseSession, Now: 6e9, Session: 4})
	apply(2, &Command{Op: OpOpenSession, Now: 6e9, TTL: 10e9}) // in the slot of 4
	apply(2, &Command{Op: OpOpenSession, Now: 6e9, TTL: 10e9}) // in the slot of 700
	apply(2, &Command{Op: OpOpenSession, Now: 6e9, TTL: 10e9}) // a new slot
	apply(2, &Command{Op: OpOpenSession, Now: 6e9, TTL: 10e9, LockDelay: 1e9})
	apply(2, &Command{Op: OpOpenSession, Now: 6e9, TTL: 10e9, Principal: "alice"})
	apply(2, &Command{Op: OpExpire, Now: 15.5e9}) // the sessions not renewed since the tick
	if err := checkSessionRecs(m); err != nil {
		t.Fatal(err)
	}
	after := m.CaptureSnapshot()
	if after.version != snapshotVersionDelay || !after.delayed {
		t.Fatalf("after a session with a lock-delay: version %d, delayed %v", after.version, after.delayed)
	}
	if got := c.Encode(); !bytes.Equal(got, want) {
		t.Fatalf("the capture changed with the machine (%d bytes, want %d)", len(got), len(want))
	}
	if got, want := after.Encode(), m.Snapshot(); !bytes.Equal(got, want) {
		t.Fatal("a second capture encodes differently from Snapshot")
	}
	var r Machine
	if err := r.Restore(m.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if r.SessionCount() != m.SessionCount() {
		t.Fatalf("restored %d sessions, want %d", r.SessionCount(), m.SessionCount())
	}
}

// Without lock-delays, a session with a principal alone makes the capture
// write version 3 (with the principals), as the scan of the sessions did.
func TestCaptureVersionOfPrincipalSessions(t *testing.T) {
	m := New()
	m.Apply(1, 1, &Command{Op: OpOpenSession, Now: 1e9, TTL: 10e9, Principal: "alice"})
	c := m.CaptureSnapshot()
	if c.version != snapshotVersionAuth {
		t.Fatalf("version %d, want %d", c.version, snapshotVersionAuth)
	}
	var r Machine
	if err := r.Restore(c.Encode()); err != nil {
		t.Fatal(err)
	}
	if s, ok := r.Session(1); !ok || s.Principal != "alice" {
		t.Fatalf("restored session %+v, %v", s, ok)
	}
	m.Apply(2, 1, &Command{Op: OpCloseSession, Now: 1e9, Session: 1, Principal: "alice"})
	if c := m.CaptureSnapshot(); c.version != snapshotVersion {
		t.Fatalf("version %d once the session closed, want %d", c.version, snapshotVersion)
	}
}

// Captures of many sessions encode, on another goroutine, to the snapshot
// of their time while the machine renews, closes and opens sessions in
// every chunk and moves every deadline (the term rule): the race detector
// (CI runs -race) catches a chunk written after a capture took it.
func TestCaptureSessionsConcurrentWithApply(t *testing.T) {
	m := New()
	i := uint64(0)
	apply := func(term uint64, c *Command) {
		i++
		if r := m.Apply(i, term, c); r.Code == CodeInvalid {
			t.Fatalf("command %+v: invalid", c)
		}
	}
	now := int64(1e9)
	for range 4 * slotChunkSize {
		apply(1, &Command{Op: OpOpenSession, Now: now, TTL: 10e9})
	}
	encode, done := encodeInBackground(t)
	r := rand.New(rand.NewPCG(1, 2))
	term := uint64(1)
	for round := range 30 {
		encode(m.CaptureSnapshot(), m.Snapshot())
		now += 1e8
		if round%5 == 4 {
			term++
			apply(term, &Command{Op: OpTick, Now: now})
		}
		var ids []uint64
		for id := range m.sessions {
			if r.IntN(4) == 0 {
				ids = append(ids, id)
			}
		}
		apply(term, &Command{Op: OpKeepAlive, Now: now, Sessions: ids})
		for range 20 {
			for id := range m.sessions {
				apply(term, &Command{Op: OpCloseSession, Now: now, Session: id})
				break
			}
			apply(term, &Command{Op: OpOpenSession, Now: now, TTL: 10e9})
		}
		if err := checkSessionRecs(m); err != nil {
			t.Fatal(err)
		}
	}
	done()
}
