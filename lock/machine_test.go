package lock

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// scenario builds a machine with sessions, held locks, queues, an ephemeral
// session and members.
func scenario(t testing.TB) *Machine {
	m := New()
	for i, c := range []*Command{
		{Op: OpOpenSession, Now: 1e9, TTL: 10e9, Owner: "a"},
		{Op: OpOpenSession, Now: 1e9, TTL: 20e9, Owner: "b"},
		{Op: OpAcquire, Now: 2e9, Session: 1, Name: "jobs/1"},
		{Op: OpAcquire, Now: 2e9, Session: 1, Name: "jobs/2"},
		{Op: OpAcquire, Now: 3e9, Session: 2, Name: "jobs/1", Wait: true},
		{Op: OpAcquire, Now: 3e9, Session: 2, Name: "other"},
		{Op: OpAcquire, Now: 3e9, Name: "jobs/2", TTL: 5e9, Owner: "eph", Wait: true},
		{Op: OpPublish, Member: Member{ID: 1, PeerURL: "p", ClientURL: "c"}},
	} {
		if r := m.Apply(uint64(i+1), 1, c); r.Code != CodeOK && r.Code != CodeQueued {
			t.Fatalf("command %d: %s", i+1, r.Code)
		}
	}
	if err := checkInvariants(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestZeroMachine(t *testing.T) {
	var m Machine
	if _, ok := m.NextDeadline(); ok || m.Clock() != 0 || m.AppliedIndex() != 0 || len(m.Locks("")) != 0 || len(m.Members()) != 0 {
		t.Fatal("zero machine not empty")
	}
	if !bytes.Equal(m.Snapshot(), New().Snapshot()) {
		t.Fatal("zero machine snapshots differ from New()")
	}
	if r := m.Apply(1, 1, &Command{Op: OpOpenSession, TTL: 1}); r.Code != CodeOK || r.Session != 1 {
		t.Fatalf("open on zero machine: %+v", r)
	}
}

func TestApplyPanicsOnOldIndex(t *testing.T) {
	m := scenario(t)
	for _, idx := range []uint64{0, 1, m.AppliedIndex()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Apply(%d) after %d did not panic", idx, m.AppliedIndex())
				}
			}()
			m.Apply(idx, 1, &Command{Op: OpTick})
		}()
	}
	// Gaps are fine (raft indexes of entries skipped by the caller).
	if r := m.Apply(m.AppliedIndex()+10, 1, &Command{Op: OpTick}); r.Code != CodeOK {
		t.Fatal(r.Code)
	}
}

func TestReadsAreCopies(t *testing.T) {
	m := scenario(t)
	before := m.Snapshot()
	s, _ := m.Session(1)
	s.Locks[0] = "changed"
	l, _ := m.Lock("jobs/1")
	l.Holder.Token = 99
	l.Waiters[0].Session = 99
	ls := m.Locks("")
	ls[0].Holder.Owner = "x"
	ms := m.Members()
	ms[0].PeerURL = "x"
	if !bytes.Equal(before, m.Snapshot()) {
		t.Fatal("mutating read results changed the machine")
	}
}

func TestLocksPrefix(t *testing.T) {
	m := scenario(t)
	var names []string
	for _, l := range m.Locks("jobs/") {
		names = append(names, l.Name)
	}
	if want := []string{"jobs/1", "jobs/2"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Locks(jobs/) = %v, want %v", names, want)
	}
	if got := m.Locks("nope"); len(got) != 0 {
		t.Fatalf("Locks(nope) = %v", got)
	}
	if _, ok := m.Lock("nope"); ok {
		t.Fatal("Lock(nope) exists")
	}
	l, ok := m.Lock("jobs/2")
	want := LockInfo{Name: "jobs/2", Holder: &Holder{Session: 1, Owner: "a", Token: 4, Since: 2e9},
		Waiters: []Waiter{{Session: 7, Owner: "eph", Since: 3e9}}}
	if !ok || !reflect.DeepEqual(l, want) {
		t.Fatalf("Lock(jobs/2) = %+v, want %+v", l, want)
	}
	s, ok := m.Session(7)
	wantS := SessionInfo{ID: 7, Owner: "eph", TTL: 5e9, Deadline: 8e9, Waiting: []string{"jobs/2"}, Bound: "jobs/2"}
	if !ok || !reflect.DeepEqual(s, wantS) {
		t.Fatalf("Session(7) = %+v, want %+v", s, wantS)
	}
	if d, ok := m.NextDeadline(); !ok || d != 8e9 {
		t.Fatalf("NextDeadline = %d %v", d, ok)
	}
}

func TestDeadlineSaturates(t *testing.T) {
	m := New()
	m.Apply(1, 1, &Command{Op: OpOpenSession, Now: math.MaxInt64 - 5, TTL: MaxTTL})
	if d, _ := m.NextDeadline(); d != math.MaxInt64 {
		t.Fatalf("deadline %d, want MaxInt64", d)
	}
	if r := m.Apply(2, 1, &Command{Op: OpExpire, Now: math.MaxInt64}); len(r.Events) != 1 {
		t.Fatalf("expire at the end of time: %+v", r)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	m := scenario(t)
	b := m.Snapshot()
	if b[0] != snapshotVersion {
		t.Fatalf("version byte %d", b[0])
	}
	var r Machine
	if err := r.Restore(b); err != nil {
		t.Fatal(err)
	}
	if err := checkInvariants(&r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Snapshot(), b) {
		t.Fatal("restored machine snapshots differently")
	}
	// Both go on identically.
	for _, c := range []*Command{
		{Op: OpExpire, Now: 9e9},
		{Op: OpRelease, Session: 1, Name: "jobs/1", Token: 3},
		{Op: OpAcquire, Session: 2, Name: "n", Now: 9e9},
	} {
		i := m.AppliedIndex() + 1
		a, b := m.Apply(i, 2, c), r.Apply(i, 2, c)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("results differ: %+v vs %+v", a, b)
		}
	}
	if !bytes.Equal(r.Snapshot(), m.Snapshot()) {
		t.Fatal("machines diverged after restore")
	}
}

func TestRestoreErrorsKeepState(t *testing.T) {
	m := scenario(t)
	good := m.Snapshot()
	unknown := append([]byte{2}, good[1:]...)
	// A waiter that also holds the lock: decodes, but is inconsistent.
	bad := New()
	bad.Apply(1, 1, &Command{Op: OpOpenSession, TTL: 1})
	bad.Apply(2, 1, &Command{Op: OpOpenSession, TTL: 1})
	bad.Apply(3, 1, &Command{Op: OpAcquire, Session: 1, Name: "x"})
	bad.Apply(4, 1, &Command{Op: OpAcquire, Session: 2, Name: "x", Wait: true})
	inconsistent := bad.Snapshot()
	inconsistent[len(inconsistent)-3] = 1 // the waiter's id (then since=0, members=0)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"nil", nil, ErrCorrupt},
		{"unknown version", unknown, ErrUnknownVersion},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"trailing", append(good[:len(good):len(good)], 0), ErrCorrupt},
		{"holder waits too", inconsistent, ErrCorrupt},
	} {
		err := m.Restore(tc.b)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if !bytes.Equal(m.Snapshot(), good) {
			t.Fatalf("%s: failed restore changed the machine", tc.name)
		}
	}
	for n := 0; n < len(good); n++ {
		if err := m.Restore(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if !bytes.Equal(m.Snapshot(), good) {
		t.Fatal("failed restores changed the machine")
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(scenario(f).Snapshot())
	f.Add(New().Snapshot())
	f.Add([]byte{})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := scenario(t)
		before := m.Snapshot()
		if err := m.Restore(b); err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownVersion) {
				t.Fatalf("unexpected error %v", err)
			}
			if !bytes.Equal(before, m.Snapshot()) {
				t.Fatal("failed restore changed the machine")
			}
			return
		}
		if err := checkInvariants(m); err != nil {
			t.Fatalf("restored an inconsistent state: %v", err)
		}
		snap := m.Snapshot()
		var again Machine
		if err := again.Restore(snap); err != nil || !bytes.Equal(again.Snapshot(), snap) {
			t.Fatalf("re-restore: %v", err)
		}
		// The restored machine keeps working.
		if i := m.AppliedIndex(); i < math.MaxUint64-3 {
			m.Apply(i+1, math.MaxUint64, &Command{Op: OpExpire, Now: math.MaxInt64})
			m.Apply(i+2, math.MaxUint64, &Command{Op: OpOpenSession, TTL: 1})
			if err := checkInvariants(m); err != nil {
				t.Fatal(err)
			}
		}
	})
}
