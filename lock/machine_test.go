package lock

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// scenario builds a machine with sessions, held locks, queues, an ephemeral
// session, members, and elections with a leader and a candidate.
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
		{Op: OpCampaign, Now: 3e9, Session: 1, Name: "leader/x", Value: "v1"},
		{Op: OpCampaign, Now: 4e9, Session: 2, Name: "leader/x", Value: "v2", Wait: true},
		{Op: OpCampaign, Now: 4e9, Session: 2, Name: "leader/y", Value: "y2"},
		{Op: OpCampaign, Now: 4e9, Session: 1, Name: "x", Value: "named like a lock"},
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
	s2, _ := m.Session(2)
	s2.Campaigns[0] = "changed"
	e, _ := m.Election("leader/x")
	e.Leader.Value = "changed"
	e.Candidates[0].Value = "changed"
	es := m.Elections("")
	es[0].Leader.Term = 1
	es[0].Candidates[0].Session = 99
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
		Holders: []Holder{{Session: 1, Owner: "a", Token: 4, Since: 2e9}},
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

func TestElectionReads(t *testing.T) {
	m := scenario(t)
	var names []string
	for _, e := range m.Elections("leader/") {
		names = append(names, e.Name)
	}
	if want := []string{"leader/x", "leader/y"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Elections(leader/) = %v, want %v", names, want)
	}
	if got := m.Elections(""); len(got) != 3 || got[2].Name != "x" {
		t.Fatalf("Elections() = %+v", got)
	}
	if _, ok := m.Election("nope"); ok {
		t.Fatal("Election(nope) exists")
	}
	e, ok := m.Election("leader/x")
	want := ElectionInfo{Name: "leader/x", Leader: &Leader{Session: 1, Owner: "a", Value: "v1", Term: 9, Since: 3e9},
		Candidates: []Candidate{{Session: 2, Owner: "b", Value: "v2", Since: 4e9}}}
	if !ok || !reflect.DeepEqual(e, want) {
		t.Fatalf("Election(leader/x) = %+v, want %+v", e, want)
	}
	// Elections and locks are separate namespaces.
	if l, _ := m.Lock("x"); l.Holder != nil {
		t.Fatalf("election x made lock x: %+v", l)
	}
	for id, want := range map[uint64][]string{1: {"leader/x", "x"}, 2: {"leader/x", "leader/y"}, 7: nil} {
		if s, _ := m.Session(id); !reflect.DeepEqual(s.Campaigns, want) {
			t.Fatalf("Session(%d).Campaigns = %v, want %v", id, s.Campaigns, want)
		}
	}
	// Resigning hands over to the candidate with this index as term.
	i := m.AppliedIndex() + 1
	r := m.Apply(i, 1, &Command{Op: OpResign, Session: 1, Name: "leader/x", Token: 9})
	if r.Code != CodeOK || len(r.Events) != 2 || r.Events[1].Type != EventElected || r.Events[1].Token != i {
		t.Fatalf("resign: %+v", r)
	}
	if e, _ := m.Election("leader/x"); e.Leader.Session != 2 || e.Leader.Value != "v2" || e.Candidates != nil {
		t.Fatalf("after resign: %+v", e)
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
	unknown := append([]byte{7}, good[1:]...)
	// A waiter that also holds the lock: decodes, but is inconsistent.
	bad := New()
	bad.Apply(1, 1, &Command{Op: OpOpenSession, TTL: 1})
	bad.Apply(2, 1, &Command{Op: OpOpenSession, TTL: 1})
	bad.Apply(3, 1, &Command{Op: OpAcquire, Session: 1, Name: "x"})
	bad.Apply(4, 1, &Command{Op: OpAcquire, Session: 2, Name: "x", Wait: true})
	inconsistent := bad.Snapshot()
	inconsistent[len(inconsistent)-4] = 1 // the waiter's id (then since=0, elections=0, members=0)
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

// editElection changes election name in place (tests only: it breaks the
// machine's invariants on purpose).
func editElection(m *Machine, name string, f func(e *electionRec)) {
	e, _ := m.elections.Get(name)
	f(&e)
	m.elections.Set(name, e)
}

// TestRestoreRejectsBadElections snapshots broken internal states: Restore
// must refuse each of them.
func TestRestoreRejectsBadElections(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(m *Machine) []byte
	}{
		{"leader missing", func(m *Machine) []byte {
			editElection(m, "leader/y", func(e *electionRec) { e.leader = 5 })
			return m.Snapshot()
		}},
		{"leader also candidate", func(m *Machine) []byte {
			editElection(m, "leader/x", func(e *electionRec) { e.queue = appended(e.queue, candidate{session: e.leader}) })
			return m.Snapshot()
		}},
		{"candidate twice", func(m *Machine) []byte {
			editElection(m, "leader/x", func(e *electionRec) { e.queue = appended(e.queue, e.queue[0]) })
			return m.Snapshot()
		}},
		{"candidate missing", func(m *Machine) []byte {
			editElection(m, "leader/x", func(e *electionRec) { e.queue = appended(e.queue, candidate{session: 4}) })
			return m.Snapshot()
		}},
		{"term zero", func(m *Machine) []byte {
			editElection(m, "leader/x", func(e *electionRec) { e.term = 0 })
			return m.Snapshot()
		}},
		{"term after applied", func(m *Machine) []byte {
			editElection(m, "leader/x", func(e *electionRec) { e.term = m.applied + 1 })
			return m.Snapshot()
		}},
		{"value too long", func(m *Machine) []byte {
			editElection(m, "leader/x", func(e *electionRec) { e.value = strings.Repeat("v", MaxValueSize+1) })
			return m.Snapshot()
		}},
		{"ephemeral leader", func(m *Machine) []byte {
			editElection(m, "leader/y", func(e *electionRec) { e.leader = 7 })
			return m.Snapshot()
		}},
		{"unsorted", func(m *Machine) []byte {
			// leader/x comes before leader/y; renamed to leader/z it does not.
			return bytes.Replace(m.Snapshot(), []byte("leader/x"), []byte("leader/z"), 1)
		}},
	} {
		m := scenario(t)
		b := tc.corrupt(m)
		err := New().Restore(b)
		t.Logf("%s: %v", tc.name, err)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(scenario(f).Snapshot())
	f.Add(primitivesScenario(f).Snapshot())
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
			m.Apply(i+3, math.MaxUint64, &Command{Op: OpCampaign, Session: i + 2, Name: "leader/x", Wait: true})
			if err := checkInvariants(m); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// primitivesScenario is a machine with a lock held shared with waiters of
// both modes, and a full semaphore with a waiter (snapshot version 6).
func primitivesScenario(tb testing.TB) *Machine {
	m := New()
	var i uint64
	apply := func(c *Command) Result {
		i++
		c.Now = int64(i) * 1e9
		return m.Apply(i, 1, c)
	}
	var ids []uint64
	for range 5 {
		ids = append(ids, apply(&Command{Op: OpOpenSession, TTL: 60e9}).Session)
	}
	apply(&Command{Op: OpAcquire, Session: ids[0], Name: "db", Mode: Shared})
	apply(&Command{Op: OpAcquire, Session: ids[1], Name: "db", Mode: Shared})
	apply(&Command{Op: OpAcquire, Session: ids[2], Name: "db", Wait: true})
	apply(&Command{Op: OpAcquire, Session: ids[3], Name: "db", Mode: Shared, Wait: true})
	apply(&Command{Op: OpSemAcquire, Session: ids[0], Name: "pool", Limit: 2})
	apply(&Command{Op: OpSemAcquire, Session: ids[4], Name: "pool", Limit: 2})
	if r := apply(&Command{Op: OpSemAcquire, Session: ids[3], Name: "pool", Limit: 2, Wait: true}); r.Code != CodeQueued {
		tb.Fatalf("semaphore wait: %v", r.Code)
	}
	if err := checkInvariants(m); err != nil {
		tb.Fatal(err)
	}
	return m
}
