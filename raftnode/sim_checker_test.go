package raftnode

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/internal/linearize"
	"github.com/raftlock/raftlock/lock"
)

// The simulation's checks must be able to fail: each case feeds the checker
// one violation and expects it to name it.
func TestSimCheckerCatchesViolations(t *testing.T) {
	ev := func(typ lock.EventType, rev, sess uint64, name string, tok uint64) lock.Event {
		return lock.Event{Revision: rev, Type: typ, Session: sess, Name: name, Token: tok}
	}
	// sh is a lock event of a shared hold or wait.
	sh := func(typ lock.EventType, rev, sess uint64, name string, tok uint64) lock.Event {
		e := ev(typ, rev, sess, name, tok)
		e.Mode = lock.Shared
		return e
	}
	// semAcq is the command of an entry that creates semaphore "s" with
	// limit 2.
	semAcq := &lock.Command{Op: lock.OpSemAcquire, Name: "s", Limit: 2}
	type entry struct {
		idx uint64
		evs []lock.Event
		cmd *lock.Command // nil: an OpOpenSession
	}
	cases := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"token is not the index", []entry{{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 4)}, nil}}, "fencing-token"},
		{"token reused", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5), ev(lock.EventLockReleased, 5, 1, "a", 5), ev(lock.EventLockGranted, 5, 2, "a", 5)}, nil},
		}, "fencing-token"},
		{"two holders", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}, nil},
			{6, []lock.Event{ev(lock.EventLockGranted, 6, 2, "a", 6)}, nil},
		}, "exclusion"},
		{"two leaders", []entry{
			{5, []lock.Event{ev(lock.EventElected, 5, 1, "x", 5)}, nil},
			{6, []lock.Event{ev(lock.EventElected, 6, 2, "x", 6)}, nil},
		}, "exclusion"},
		{"grant out of FIFO order", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}, nil},
			{6, []lock.Event{ev(lock.EventLockQueued, 6, 2, "a", 0)}, nil},
			{7, []lock.Event{ev(lock.EventLockQueued, 7, 3, "a", 0)}, nil},
			{8, []lock.Event{ev(lock.EventLockReleased, 8, 1, "a", 5), ev(lock.EventLockGranted, 8, 3, "a", 8)}, nil},
		}, "fifo"},
		{"queued twice", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}, nil},
			{6, []lock.Event{ev(lock.EventLockQueued, 6, 2, "a", 0)}, nil},
			{7, []lock.Event{ev(lock.EventLockQueued, 7, 2, "a", 0)}, nil},
		}, "fifo"},
		{"granted to a session that dies in the same entry", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5), ev(lock.EventSessionExpired, 5, 1, "", 0)}, nil},
		}, "grant-to-dying"},
		{"session expired early", []entry{
			{1, []lock.Event{ev(lock.EventSessionOpened, 1, 1, "", 0)}, nil},
			{2, []lock.Event{ev(lock.EventSessionExpired, 2, 1, "", 0)}, nil},
		}, "session-expiry"},
		// Shared holds and semaphores.
		{"shared holders granted together after an exclusive one", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "b", 5)}, nil},
			{6, []lock.Event{sh(lock.EventLockQueued, 6, 2, "b", 0)}, nil},
			{7, []lock.Event{sh(lock.EventLockQueued, 7, 3, "b", 0)}, nil},
			{8, []lock.Event{ev(lock.EventLockQueued, 8, 4, "b", 0)}, nil},
			{9, []lock.Event{ev(lock.EventLockReleased, 9, 1, "b", 5), sh(lock.EventLockGranted, 9, 2, "b", 9), sh(lock.EventLockGranted, 9, 3, "b", 9)}, nil},
			{10, []lock.Event{sh(lock.EventLockQueued, 10, 5, "b", 0)}, nil},
			{11, []lock.Event{sh(lock.EventLockReleased, 11, 2, "b", 9)}, nil},
			{12, []lock.Event{sh(lock.EventLockReleased, 12, 3, "b", 9), ev(lock.EventLockGranted, 12, 4, "b", 12)}, nil},
		}, ""},
		{"shared beside exclusive", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "b", 5)}, nil},
			{6, []lock.Event{sh(lock.EventLockGranted, 6, 2, "b", 6)}, nil},
		}, "exclusion"},
		{"exclusive beside shared", []entry{
			{5, []lock.Event{sh(lock.EventLockGranted, 5, 1, "b", 5)}, nil},
			{6, []lock.Event{ev(lock.EventLockGranted, 6, 2, "b", 6)}, nil},
		}, "exclusion"},
		{"a shared holder granted again", []entry{
			{5, []lock.Event{sh(lock.EventLockGranted, 5, 1, "b", 5)}, nil},
			{6, []lock.Event{sh(lock.EventLockGranted, 6, 1, "b", 6)}, nil},
		}, "exclusion"},
		{"a shared grant shares an exclusive grant's token", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "b", 5), ev(lock.EventLockReleased, 5, 1, "b", 5), sh(lock.EventLockGranted, 5, 2, "b", 5)}, nil},
		}, "fencing-token"},
		{"a shared waiter behind shared holders", []entry{
			{5, []lock.Event{sh(lock.EventLockGranted, 5, 1, "b", 5)}, nil},
			{6, []lock.Event{sh(lock.EventLockQueued, 6, 2, "b", 0)}, nil},
		}, "waiter-behind-free"},
		{"a waiter behind a free lock", []entry{
			{5, []lock.Event{ev(lock.EventLockGranted, 5, 1, "a", 5)}, nil},
			{6, []lock.Event{ev(lock.EventLockQueued, 6, 2, "a", 0)}, nil},
			{7, []lock.Event{ev(lock.EventLockReleased, 7, 1, "a", 5)}, nil},
		}, "waiter-behind-free"},
		{"a release of a shared hold nobody has", []entry{
			{5, []lock.Event{sh(lock.EventLockGranted, 5, 1, "b", 5)}, nil},
			{6, []lock.Event{sh(lock.EventLockReleased, 6, 1, "b", 4)}, nil},
		}, "events"},
		{"permits granted up to the limit, then queued and handed on", []entry{
			{5, []lock.Event{ev(lock.EventPermitGranted, 5, 1, "s", 5)}, semAcq},
			{6, []lock.Event{ev(lock.EventPermitGranted, 6, 2, "s", 6)}, semAcq},
			{7, []lock.Event{ev(lock.EventPermitQueued, 7, 3, "s", 0)}, semAcq},
			{8, []lock.Event{ev(lock.EventPermitReleased, 8, 1, "s", 5), ev(lock.EventPermitGranted, 8, 3, "s", 8)}, nil},
		}, ""},
		{"more permits than the limit", []entry{
			{5, []lock.Event{ev(lock.EventPermitGranted, 5, 1, "s", 5)}, semAcq},
			{6, []lock.Event{ev(lock.EventPermitGranted, 6, 2, "s", 6)}, semAcq},
			{7, []lock.Event{ev(lock.EventPermitGranted, 7, 3, "s", 7)}, semAcq},
		}, "semaphore-limit"},
		{"two permits to one session", []entry{
			{5, []lock.Event{ev(lock.EventPermitGranted, 5, 1, "s", 5)}, semAcq},
			{6, []lock.Event{ev(lock.EventPermitGranted, 6, 1, "s", 6)}, semAcq},
		}, "exclusion"},
		{"a waiter behind a free permit", []entry{
			{5, []lock.Event{ev(lock.EventPermitGranted, 5, 1, "s", 5)}, semAcq},
			{6, []lock.Event{ev(lock.EventPermitQueued, 6, 2, "s", 0)}, semAcq},
		}, "waiter-behind-free"},
		{"a permit granted out of FIFO order", []entry{
			{5, []lock.Event{ev(lock.EventPermitGranted, 5, 1, "s", 5)}, semAcq},
			{6, []lock.Event{ev(lock.EventPermitGranted, 6, 2, "s", 6)}, semAcq},
			{7, []lock.Event{ev(lock.EventPermitQueued, 7, 3, "s", 0)}, semAcq},
			{8, []lock.Event{ev(lock.EventPermitQueued, 8, 4, "s", 0)}, semAcq},
			{9, []lock.Event{ev(lock.EventPermitReleased, 9, 2, "s", 6), ev(lock.EventPermitGranted, 9, 4, "s", 9)}, nil},
		}, "fifo"},
		{"a permit granted to a session that dies in the same entry", []entry{
			{5, []lock.Event{ev(lock.EventPermitGranted, 5, 1, "s", 5), ev(lock.EventSessionExpired, 5, 1, "", 0)}, semAcq},
		}, "grant-to-dying"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(simOptions{seed: 1, nodes: 3})
			for _, e := range tc.entries {
				cmd := e.cmd
				if cmd == nil {
					cmd = &lock.Command{Op: lock.OpOpenSession, TTL: 1000}
				}
				s.chk.events(e.idx, cmd, e.evs)
			}
			switch {
			case tc.want == "" && s.failure != nil:
				t.Fatalf("failure %v, want none", s.failure)
			case tc.want != "" && (s.failure == nil || s.failure.check != tc.want):
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
	t.Run("events and state disagree", func(t *testing.T) {
		s := boot(t)
		s.chk.sems["s"] = &chkQueue{shared: []chkHold{{session: 3, token: 2}}, limit: 2}
		s.chk.matchState(uint64(len(s.chk.clog)))
		if s.failure == nil || s.failure.check != "state-events" {
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

// The simulation's transport knows the peers its node told it of, as
// rafthttp does: a node started from its disk tells it its configuration
// (as Run does), a message to any other ID is dropped and counted, and one
// sent to a member at another URL than the member's is lost; a node that
// goes on sending to a wrong URL after the faults stopped fails the run.
func TestSimTransportKnowsOnlyItsPeers(t *testing.T) {
	s := newSim(simOptions{seed: 1, nodes: 3})
	sn := s.nodes[0]
	s.boot(sn)
	if s.failure != nil {
		t.Fatal(s.failure)
	}
	tr := sn.n.transport.(*simTransport)
	want := map[uint64]string{2: s.peers[2], 3: s.peers[3]}
	if !maps.Equal(tr.peers, want) {
		t.Fatalf("a node started from its disk told its transport of %v, want %v", tr.peers, want)
	}
	hb := func(to uint64) []*raftpb.Message {
		return []*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(to), Term: proto.Uint64(1)}}
	}
	queued := func() int {
		k := 0
		for _, ev := range s.events {
			if ev.kind == evDeliver {
				k++
			}
		}
		return k
	}
	tr.Send(hb(2))
	if queued() != 1 || s.stats.msgsUnknownPeer[raftpb.MsgHeartbeat] != 0 {
		t.Fatalf("a message to a peer: %d deliveries queued, %v dropped as unknown", queued(), s.stats.msgsUnknownPeer)
	}
	tr.RemovePeer(2)
	tr.Send(hb(2))
	tr.Send(hb(4))
	if queued() != 1 || s.stats.msgsUnknownPeer[raftpb.MsgHeartbeat] != 2 {
		t.Fatalf("messages to a removed and to an unknown peer: %d deliveries queued, %v dropped as unknown", queued(), s.stats.msgsUnknownPeer)
	}
	if s.failure != nil {
		t.Fatal(s.failure)
	}
	// A restart starts from what the node tells it, not from what the
	// last incarnation's transport knew.
	s.crash(sn)
	s.boot(sn)
	if tr := sn.n.transport.(*simTransport); !maps.Equal(tr.peers, want) {
		t.Fatalf("after a restart the transport knows %v, want %v", tr.peers, want)
	}
	// AddPeer of a known peer keeps its URL, as HTTPTransport does.
	tr = sn.n.transport.(*simTransport)
	tr.AddPeer(3, "http://elsewhere.sim:2380")
	if tr.peers[3] != s.peers[3] {
		t.Fatalf("a second AddPeer changed peer 3's URL to %q", tr.peers[3])
	}
	// A message to a member at another URL is lost; once the faults
	// stopped, one sent simDropGrace after the first fails the run.
	tr.RemovePeer(3)
	tr.AddPeer(3, "http://elsewhere.sim:2380")
	strict := *simStrict
	defer func() { *simStrict = strict }()
	*simStrict = "all" // fails even while simKnownBugs lists it
	s.calm = true
	s.probe.started = s.now
	before := queued()
	tr.Send(hb(3))
	if queued() != before || s.stats.msgsWrongURL != 1 || s.failure != nil {
		t.Fatalf("a message to a wrong URL: %d deliveries queued (%d before), %d counted, failure %v", queued(), before, s.stats.msgsWrongURL, s.failure)
	}
	s.now += simDropGrace + 1
	tr.Send(hb(3))
	if s.failure == nil || s.failure.check != "transport-url" {
		t.Fatalf("failure %v, want transport-url", s.failure)
	}
}

// The membership checks must be able to fail too.
func TestSimCheckerCatchesMembershipViolations(t *testing.T) {
	// A single node leads at once (start campaigns as the only voter).
	boot := func(t *testing.T) (*sim, *simNode) {
		s := newSim(simOptions{seed: 1, nodes: 1, membership: true})
		sn := s.nodes[0]
		s.boot(sn)
		if s.failure != nil {
			t.Fatal(s.failure)
		}
		if st := sn.n.rn.BasicStatus(); st.RaftState != raft.StateLeader {
			t.Fatalf("node 1 is %v", st.RaftState)
		}
		return s, sn
	}
	confEntry := func(s *sim, typ raftpb.ConfChangeType, cmd *lock.Command) *raftpb.Entry {
		id := cmd.Member.ID
		cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: &id, Context: encodeEnvelope(1, 1, cmd)}
		data, err := proto.Marshal(cc)
		if err != nil {
			t.Fatal(err)
		}
		idx := uint64(len(s.chk.clog)) + 1
		return &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Index: &idx, Term: proto.Uint64(1), Data: data}
	}
	check := func(t *testing.T, s *sim, want string) {
		t.Helper()
		if s.failure == nil || s.failure.check != want {
			t.Fatalf("failure %v, want check %q", s.failure, want)
		}
	}
	t.Run("a committed change refused when applied", func(t *testing.T) {
		s, _ := boot(t)
		s.chk.commit(confEntry(s, raftpb.ConfChangeAddLearnerNode, &lock.Command{Op: lock.OpMemberAdd, Wait: true, Member: lock.Member{ID: 1, PeerURL: "http://x.sim:2380"}}))
		check(t, s, "conf-change-refused")
	})
	t.Run("a member ID used again", func(t *testing.T) {
		s, _ := boot(t)
		s.chk.maxID = 5 // as if members up to 5 had come and gone
		s.chk.commit(confEntry(s, raftpb.ConfChangeAddLearnerNode, &lock.Command{Op: lock.OpMemberAdd, Wait: true, Member: lock.Member{ID: 4, PeerURL: "http://x.sim:2380"}}))
		check(t, s, "member-id")
	})
	t.Run("a node's configuration differs from the log's", func(t *testing.T) {
		s, sn := boot(t)
		sn.n.confState.Learners = append(sn.n.confState.Learners, 9)
		sn.chkApplied = 0
		s.chk.node(sn)
		check(t, s, "configuration")
	})
	t.Run("a removed node leads with its removal committed", func(t *testing.T) {
		s, sn := boot(t)
		s.chk.removedAt[sn.id] = 1
		s.chk.node(sn)
		check(t, s, "removed-leads")
	})
	t.Run("a removed member still counts", func(t *testing.T) {
		s, sn := boot(t)
		s.chk.removedAt[7], s.chk.removed = 1, []uint64{7}
		sn.chkApplied = 0
		s.chk.node(sn)
		check(t, s, "removed-member")
	})
	t.Run("two changes in flight", func(t *testing.T) {
		s, sn := boot(t)
		last, _ := sn.n.storage.LastIndex()
		term := sn.n.rn.BasicStatus().GetTerm()
		var ents []*raftpb.Entry
		for i := range uint64(2) {
			ents = append(ents, &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Index: proto.Uint64(last + 1 + i), Term: &term})
		}
		if err := sn.n.storage.Append(ents); err != nil {
			t.Fatal(err)
		}
		s.chk.node(sn)
		check(t, s, "one-conf-change")
	})
	t.Run("a snapshot that its recipient is not in", func(t *testing.T) {
		s, sn := boot(t)
		joiner := s.memberNode(2, "http://joiner.sim:2380")
		m := &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Snapshot: &raftpb.Snapshot{
			Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}}
		s.now = 7
		strict := *simStrict
		defer func() { *simStrict = strict }()
		*simStrict = ""
		// Fixed (freshenSnapshots): no longer a known bug, so it fails
		// whatever -sim.strict says.
		s.snapshotTo(sn, joiner, m)
		check(t, s, "join-snapshot")
	})
	t.Run("a change no leader checked", func(t *testing.T) {
		s, _ := boot(t)
		strict := *simStrict
		defer func() { *simStrict = strict }()
		*simStrict = "all"
		s.chk.leaders[1] = 2 // the entry's term was led by another node than its proposer (1)
		s.chk.commit(confEntry(s, raftpb.ConfChangeAddLearnerNode, &lock.Command{Op: lock.OpMemberAdd, Wait: true, Member: lock.Member{ID: 2, PeerURL: "http://x.sim:2380"}}))
		check(t, s, "conf-change-forwarded")
	})
	t.Run("a member's message dropped", func(t *testing.T) {
		s, sn := boot(t)
		strict := *simStrict
		defer func() { *simStrict = strict }()
		*simStrict = "all"
		// Member 2's addition is committed, but node 1 has not applied it.
		two := s.memberNode(2, "http://joiner.sim:2380")
		s.chk.confs = append(s.chk.confs, simConf{index: 100, voters: []uint64{1}, learners: []uint64{2}})
		m := &raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(1)}
		// The faults stopped; node 1 may drop member 2's messages for
		// simDropGrace (it asks the others to vouch for it), no longer.
		s.calm, s.now = true, 7
		s.probe.started = s.now
		if s.accept(sn, two, two.inc, m) {
			t.Fatal("node 1 took a message from a member it does not know")
		}
		if s.failure != nil {
			t.Fatalf("failure %v on the first message dropped", s.failure)
		}
		s.now += simDropGrace + 1
		if s.accept(sn, two, two.inc, m) {
			t.Fatal("node 1 took a message from a member nobody vouched for")
		}
		check(t, s, "member-dropped")
	})
	t.Run("a member vouched for", func(t *testing.T) {
		s, sn := boot(t)
		strict := *simStrict
		defer func() { *simStrict = strict }()
		*simStrict = "all"
		// Node 1 has not applied the addition of member 2, which a member
		// it knows lists: the lookup that its first drop queues makes it
		// take member 2's messages.
		two := s.memberNode(2, "http://joiner.sim:2380")
		s.chk.confs = append(s.chk.confs, simConf{index: 100, voters: []uint64{1}, learners: []uint64{2}})
		m := &raftpb.Message{Type: raftpb.MsgAppResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(1)}
		if s.accept(sn, two, two.inc, m) {
			t.Fatal("node 1 took a message from a member it does not know")
		}
		if len(sn.n.vouchers.reqC) != 1 {
			t.Fatalf("%d lookups queued, want 1", len(sn.n.vouchers.reqC))
		}
		if sn.n.vouchedBy(2, []ClusterInfo{{Members: []MemberInfo{{ID: 1}, {ID: 2, Learner: true}}}}); !s.accept(sn, two, two.inc, m) {
			t.Fatal("node 1 drops a message from a member that was vouched for")
		}
		if s.failure != nil || len(sn.dropping) != 0 {
			t.Fatalf("failure %v, dropping %v", s.failure, sn.dropping)
		}
	})
}

// The history the clients record of shared holds and semaphores must be
// checked: each case changes one answer of a run into one that no order
// explains, and the run must fail linearizability.
func TestSimHistoryCatchesViolations(t *testing.T) {
	cases := []struct {
		name string
		// tamper changes one answer of op; false if op is not one to
		// change.
		tamper func(op *simOp) bool
	}{
		{"a read of more permit holders than the limit", func(op *simOp) bool {
			if op.in.Kind != linearize.GetSemaphore || !op.returned || op.out.Limit == 0 || len(op.out.Holders) != op.out.Limit {
				return false
			}
			h := op.out.Holders[0]
			op.out.Holders = append(slices.Clone(op.out.Holders), linearize.Hold{Session: 1 << 40, Token: h.Token})
			return true
		}},
		{"a read of an exclusive holder beside a shared one", func(op *simOp) bool {
			if op.in.Kind != linearize.GetLock || !op.returned || len(op.out.Holders) < 2 {
				return false
			}
			op.out.Holders = slices.Clone(op.out.Holders)
			op.out.Holders[0].Shared = false
			return true
		}},
		{"a full semaphore that nobody holds", func(op *simOp) bool {
			if op.in.Kind != linearize.SemTryAcquire || !op.returned || op.out.Kind != linearize.Locked {
				return false
			}
			op.out.Holders = []linearize.Hold{}
			return true
		}},
	}
	// One run, its history checked once per case with that case's
	// answer changed, and then as it was (which must pass).
	caught := make([]*simFailure, len(cases))
	changed := make([]bool, len(cases))
	for seed := uint64(1); seed <= 5 && slices.Contains(changed, false); seed++ {
		res := runSim(simOptions{seed: seed, nodes: 3, steps: 6000, beforeCheck: func(s *sim) {
			orig := s.ops
			defer func() { s.ops, s.failure = orig, nil }()
			for i, tc := range cases {
				if changed[i] {
					continue
				}
				s.ops = slices.Clone(orig)
				for k, op := range s.ops {
					if cp := *op; !op.dropped && tc.tamper(&cp) {
						s.ops[k], changed[i] = &cp, true
						break
					}
				}
				if changed[i] {
					s.failure = nil
					s.checkHistory()
					caught[i] = s.failure
				}
			}
		}})
		if res.failure != nil {
			t.Fatalf("seed %d, unchanged: %v", seed, res.failure)
		}
	}
	for i, tc := range cases {
		switch {
		case !changed[i]:
			t.Errorf("%s: no run of seeds 1 to 5 has an answer to change", tc.name)
		case caught[i] == nil || caught[i].check != "linearizability":
			t.Errorf("%s: failure %v, want linearizability", tc.name, caught[i])
		default:
			t.Logf("%s: %v", tc.name, caught[i])
		}
	}
}
