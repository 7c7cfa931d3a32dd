package raftnode

import (
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
)

// The simulation's checks must be able to fail: each case feeds the checker
// one violation and expects it to name it.
func TestSimCheckerCatchesViolations(t *testing.T) {
	ev := func(typ lock.EventType, rev, sess uint64, name string, tok uint64) lock.Event {
		return lock.Event{Revision: rev, Type: typ, Session: sess, Name: name, Token: tok}
	}
	type entry struct {
		idx uint64
		evs []lock.Event
	}
	cases := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"token is not the index", []entry{{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 4)}}}, "fencing-token"},
		{"token reused", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5), ev(lock.EventLockReleased, 5, 1, "a", 5), ev(lock.EventLockGranted, 5, 2, "a", 5)}},
		}, "fencing-token"},
		{"two holders", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}},
			{6, []lock.Event{ev(lock.EventLockGranted, 6, 2, "a", 6)}},
		}, "exclusion"},
		{"two leaders", []entry{
			{5, []lock.Event{ev(lock.EventElected, 5, 1, "x", 5)}},
			{6, []lock.Event{ev(lock.EventElected, 6, 2, "x", 6)}},
		}, "exclusion"},
		{"grant out of FIFO order", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}},
			{6, []lock.Event{ev(lock.EventLockQueued, 6, 2, "a", 0)}},
			{7, []lock.Event{ev(lock.EventLockQueued, 7, 3, "a", 0)}},
			{8, []lock.Event{ev(lock.EventLockReleased, 8, 1, "a", 5), ev(lock.EventLockGranted, 8, 3, "a", 8)}},
		}, "fifo"},
		{"queued twice", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}},
			{6, []lock.Event{ev(lock.EventLockQueued, 6, 2, "a", 0)}},
			{7, []lock.Event{ev(lock.EventLockQueued, 7, 2, "a", 0)}},
		}, "fifo"},
		{"granted to a session that dies in the same entry", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5), ev(lock.EventSessionExpired, 5, 1, "", 0)}},
		}, "grant-to-dying"},
		{"session expired early", []entry{
			{1, []lock.Event{ev(lock.EventSessionOpened, 1, 1, "", 0)}},
			{2, []lock.Event{ev(lock.EventSessionExpired, 2, 1, "", 0)}},
		}, "session-expiry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(simOptions{seed: 1, nodes: 3})
			for _, e := range tc.entries {
				s.chk.events(e.idx, &lock.Command{Op: lock.OpOpenSession, TTL: 1000}, e.evs)
			}
			if s.failure == nil || s.failure.check != tc.want {
				t.Fatalf("failure %v, want check %q", s.failure, tc.want)
			}
		})
	}
}

func TestSimCheckerCatchesDivergence(t *testing.T) {
	boot := func(t *testing.T) *sim {
		s := newSim(simOptions{seed: 1, nodes: 3})
		for _, sn := range s.nodes {
			s.boot(sn)
		}
		if s.failure != nil {
			t.Fatal(s.failure)
		}
		return s
	}
	t.Run("two leaders in one term", func(t *testing.T) {
		s := boot(t)
		for _, sn := range s.nodes[:2] {
			s.chk.leads(sn.id, 7)
		}
		if s.failure == nil || s.failure.check != "one-leader-per-term" {
			t.Fatalf("failure %v", s.failure)
		}
	})
	t.Run("committed prefixes differ", func(t *testing.T) {
		s := boot(t)
		sn := s.nodes[1]
		e := proto.Clone(sn.disk.entry(2)).(*raftpb.Entry)
		e.Term = proto.Uint64(e.GetTerm() + 1)
		sn.disk.ents[2-sn.disk.first] = e
		sn.chkCommit = 0
		s.chk.node(sn)
		if s.failure == nil || s.failure.check != "committed-prefix" {
			t.Fatalf("failure %v", s.failure)
		}
	})
	t.Run("state machines differ", func(t *testing.T) {
		s := boot(t)
		sn := s.nodes[2]
		m := lock.New()
		m.Apply(sn.n.applied, 1, &lock.Command{Op: lock.OpOpenSession, TTL: 1000, Now: 1})
		sn.n.machine = m
		sn.chkApplied = 0
		s.chk.node(sn)
		if s.failure == nil || s.failure.check != "state" {
			t.Fatalf("failure %v", s.failure)
		}
	})
	t.Run("acknowledged write lost", func(t *testing.T) {
		s := boot(t)
		s.chk.ack(2, &lock.Command{Op: lock.OpTick, Now: 5})
		if s.failure == nil || s.failure.check != "acked-write-lost" {
			t.Fatalf("failure %v", s.failure)
		}
		s = boot(t)
		s.chk.ack(1000, &lock.Command{Op: lock.OpTick, Now: 5})
		s.chk.finalAcks()
		if s.failure == nil || !strings.Contains(s.failure.msg, "never committed") {
			t.Fatalf("failure %v", s.failure)
		}
	})
}

func TestSimLivenessCheckCanFail(t *testing.T) {
	// Nodes that never tick never elect a leader: the final probe cannot
	// commit, and the run must say so.
	s := newSim(simOptions{seed: 1, nodes: 3})
	for _, sn := range s.nodes {
		s.boot(sn)
	}
	s.finish()
	if s.failure == nil || s.failure.check != "liveness" {
		t.Fatalf("failure %v, want liveness", s.failure)
	}
}
