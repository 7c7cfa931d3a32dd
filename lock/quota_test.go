package lock

import (
	"bytes"
	"strings"
	"testing"
)

func TestQuotasRefuseWithoutChange(t *testing.T) {
	m := New()
	idx := uint64(0)
	apply := func(c *Command) Result {
		idx++
		c.Now = int64(idx)
		return m.Apply(idx, 1, c)
	}
	if r := apply(&Command{Op: OpSetLimits, Limits: Limits{SessionsPerPrincipal: 2, LocksPerSession: 2, WaitersPerLock: 1, ElectionsPerSession: 1}}); r.Code != CodeOK {
		t.Fatalf("set limits: %v", r.Code)
	}
	if r := apply(&Command{Op: OpInitLimits, Limits: Limits{SessionsPerPrincipal: 1000}}); r.Code != CodeOK || r.Reason == "" || m.Limits().SessionsPerPrincipal != 2 {
		t.Fatalf("initial limits after set: %+v, limits %+v", r, m.Limits())
	}
	a1 := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"}).Session
	a2 := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"}).Session
	b := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "bob"}).Session
	c := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "carol"}).Session
	apply(&Command{Op: OpAcquire, Session: a1, Name: "x"})
	apply(&Command{Op: OpAcquire, Session: a1, Name: "y"})
	apply(&Command{Op: OpAcquire, Session: b, Name: "x", Wait: true})
	apply(&Command{Op: OpCampaign, Session: a1, Name: "e"})
	// With auth off a principal proves nothing (every client is the same
	// one, or names a certificate): sessions per principal are not capped.
	for _, p := range []string{"", "dave", "dave", "dave"} {
		if r := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: p}); r.Code != CodeOK {
			t.Fatalf("sessions of %q capped with auth off: %v", p, r.Code)
		}
	}
	// Auth on: alice, bob and carol may lock and elect everywhere.
	apply(&Command{Op: OpAuthBootstrap, Hash: strings.Repeat("r", TokenHashLen)})
	apply(&Command{Op: OpAuthPutRole, Name: "all", Permissions: []Permission{{Prefix: "", Actions: ActionLock | ActionElect}}, Principal: RootUser})
	for _, u := range []string{"alice", "bob", "carol"} {
		if r := apply(&Command{Op: OpAuthPutUser, Name: u, Roles: []string{"all"}, Principal: RootUser}); r.Code != CodeOK {
			t.Fatalf("put user %s: %v %s", u, r.Code, r.Reason)
		}
	}
	restored := New()
	if err := restored.Restore(m.Snapshot()); err != nil {
		t.Fatal(err)
	}
	before := stripHeader(t, m.Snapshot())
	for _, tc := range []struct {
		name string
		c    *Command
		want Code
	}{
		{"a third session of alice", &Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"}, CodeQuotaExceeded},
		{"an ephemeral session of alice", &Command{Op: OpAcquire, TTL: 10e9, Name: "z", Principal: "alice"}, CodeQuotaExceeded},
		{"a third lock of a1", &Command{Op: OpAcquire, Session: a1, Name: "z", Principal: "alice"}, CodeQuotaExceeded},
		{"a second waiter of x", &Command{Op: OpAcquire, Session: c, Name: "x", Wait: true, Principal: "carol"}, CodeQuotaExceeded},
		{"an ephemeral second waiter of x", &Command{Op: OpAcquire, TTL: 10e9, Name: "x", Wait: true, Principal: "carol"}, CodeQuotaExceeded},
		{"a second election of a1", &Command{Op: OpCampaign, Session: a1, Name: "f", Principal: "alice"}, CodeQuotaExceeded},
	} {
		for i, mm := range []*Machine{m, restored} {
			idx := mm.AppliedIndex() + 1
			cmd := *tc.c
			cmd.Now = int64(idx)
			r := mm.Apply(idx, 1, &cmd)
			if r.Code != tc.want || r.Reason == "" || len(r.Events) != 0 {
				t.Errorf("%s (machine %d): %v %q %d events, want %v", tc.name, i, r.Code, r.Reason, len(r.Events), tc.want)
			}
		}
		idx = m.AppliedIndex()
		if !bytes.Equal(stripHeader(t, m.Snapshot()), before) {
			t.Fatalf("%s changed the state", tc.name)
		}
	}
	// Retries do not count as growth.
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpAcquire, Session: a1, Name: "x", Principal: "alice"}); r.Code != CodeOK {
		t.Fatalf("a retry of a held lock: %v", r.Code)
	}
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpAcquire, Session: b, Name: "x", Wait: true, Principal: "bob"}); r.Code != CodeQueued {
		t.Fatalf("a retry of a queued acquire: %v", r.Code)
	}
	// An ended session frees its principal's place.
	m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpCloseSession, Session: a2, Principal: "alice"})
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"}); r.Code != CodeOK {
		t.Fatalf("alice after closing one: %v %s", r.Code, r.Reason)
	}
	// The state's size.
	m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpSetLimits, Limits: Limits{MaxStateBytes: m.StateBytes()}, Principal: RootUser})
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpOpenSession, TTL: 10e9, Principal: "carol"}); r.Code != CodeNoSpace {
		t.Fatalf("past the size quota: %v", r.Code)
	}
	y, _ := m.Lock("y")
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpRelease, Session: a1, Name: "y", Token: y.Holder.Token, Principal: "alice"}); r.Code != CodeOK {
		t.Fatalf("a release must pass the size quota: %v", r.Code)
	}
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpOpenSession, TTL: 10e9, Principal: "carol"}); r.Code != CodeOK {
		t.Fatalf("after the state shrank: %v %s", r.Code, r.Reason)
	}
}

func TestNoSpaceAlarm(t *testing.T) {
	m := New()
	s := m.Apply(1, 1, &Command{Op: OpOpenSession, TTL: 10e9, Now: 1}).Session
	g := m.Apply(2, 1, &Command{Op: OpAcquire, Session: s, Name: "x", Now: 2})
	raise := &Command{Op: OpAlarm, Alarm: Alarm{Member: 2, Kind: AlarmNoSpace}, Wait: true}
	for i := 0; i < 2; i++ { // idempotent
		if r := m.Apply(m.AppliedIndex()+1, 1, raise); r.Code != CodeOK {
			t.Fatalf("raise: %v", r.Code)
		}
	}
	if got := m.Alarms(); len(got) != 1 || got[0] != raise.Alarm {
		t.Fatalf("alarms %+v", got)
	}
	n := New()
	if err := n.Restore(m.Snapshot()); err != nil || len(n.Alarms()) != 1 {
		t.Fatalf("restore: %v, alarms %+v", err, n.Alarms())
	}
	for _, c := range []*Command{
		{Op: OpOpenSession, TTL: 10e9},
		{Op: OpAcquire, Session: s, Name: "y"},
		{Op: OpCampaign, Session: s, Name: "e"},
	} {
		if r := m.Apply(m.AppliedIndex()+1, 1, c); r.Code != CodeNoSpace || r.Reason == "" {
			t.Fatalf("%v under the alarm: %v", c.Op, r.Code)
		}
	}
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpRelease, Session: s, Name: "x", Token: g.Token}); r.Code != CodeOK {
		t.Fatalf("a release under the alarm: %v", r.Code)
	}
	m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpAlarm, Alarm: raise.Alarm})
	if len(m.Alarms()) != 0 {
		t.Fatal("the alarm was not cleared")
	}
	if r := m.Apply(m.AppliedIndex()+1, 1, &Command{Op: OpAcquire, Session: s, Name: "y"}); r.Code != CodeOK {
		t.Fatalf("after the alarm: %v", r.Code)
	}
}
