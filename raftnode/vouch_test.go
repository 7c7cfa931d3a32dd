package raftnode

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

type fakeAsker struct {
	members []MemberInfo
	asked   atomic.Int64
}

func (f *fakeAsker) AskCluster(ctx context.Context, self uint64) []ClusterInfo {
	f.asked.Add(1)
	return []ClusterInfo{{Members: f.members}}
}

// A sender this node does not know, with an ID above all it knows, is
// accepted once a member it knows vouches for it; one nobody lists never
// is, and it is asked about at most once per vouchInterval.
func TestVouchForMembersAddedSince(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	n := c.leader().n
	asker := &fakeAsker{members: []MemberInfo{{ID: 1}, {ID: 5, PeerURL: "mem://5"}}}
	go n.runVouchers(asker)

	if n.IsMember(5) {
		t.Fatal("an unknown member accepted before anyone vouched for it")
	}
	await.True(t, 5*time.Second, "member 5 vouched for", func() bool { return n.IsMember(5) })

	for range 10 {
		if n.IsMember(9) {
			t.Fatal("a sender nobody lists was accepted")
		}
	}
	await.True(t, 5*time.Second, "the stranger looked up", func() bool { return asker.asked.Load() >= 2 })
	time.Sleep(50 * time.Millisecond) // no wait for a condition: counting that nothing more happens
	if got := asker.asked.Load(); got != 2 {
		t.Fatalf("%d lookups for two unknown senders within %v", got, vouchInterval)
	}
	// An ID at or below the highest known is never looked up: it is a
	// member this node knows, or not one.
	n.IsMember(1)
	if n.vouch(0); asker.asked.Load() != 2 {
		t.Fatal("looked up an ID this node knows")
	}
}

// recordingTransport is a Transport that records what the loop tells it
// and, as rafthttp does, drops the messages to a peer it was not told of
// (recording them too). It is safe for concurrent use.
type recordingTransport struct {
	mu      sync.Mutex
	peers   map[uint64]string
	calls   []string // "add ID URL", "remove ID", in order
	dropped []string // "TYPE to ID" of the messages dropped
}

func (rt *recordingTransport) Send(msgs []*raftpb.Message) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, m := range msgs {
		if _, ok := rt.peers[m.GetTo()]; !ok {
			rt.dropped = append(rt.dropped, fmt.Sprintf("%v to %d", m.GetType(), m.GetTo()))
		}
	}
}

func (rt *recordingTransport) AddPeer(id uint64, url string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.peers[id] = url
	rt.calls = append(rt.calls, fmt.Sprintf("add %d %s", id, url))
}

func (rt *recordingTransport) RemovePeer(id uint64) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	delete(rt.peers, id)
	rt.calls = append(rt.calls, fmt.Sprintf("remove %d", id))
}

func (rt *recordingTransport) Stop() {}

// take returns the calls and drops recorded since the last take.
func (rt *recordingTransport) take() (calls, dropped []string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	calls, dropped = rt.calls, rt.dropped
	rt.calls, rt.dropped = nil, nil
	return calls, dropped
}

// memberEntry is the entry a leader of term appends at index for member
// command cmd (OpMemberAdd of a voter, or OpMemberRemove), as
// handleConfChange proposes it.
func memberEntry(t *testing.T, term, index uint64, cmd *lock.Command) *raftpb.Entry {
	t.Helper()
	typ := raftpb.ConfChangeAddNode
	if cmd.Op == lock.OpMemberRemove {
		typ = raftpb.ConfChangeRemoveNode
	}
	cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(cmd.Member.ID), Context: encodeEnvelope(1, index, cmd)}
	data, err := proto.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	return &raftpb.Entry{Term: proto.Uint64(term), Index: proto.Uint64(index), Type: raftpb.EntryConfChange.Enum(), Data: data}
}

// The transport is told of the members a node trusts or that were vouched
// for, with their peer URLs, before the node answers them (vouch.go): a
// member added by a change in its log (URL of the add), then a leader the
// others vouch for (URL of their answer), whose probe beyond the node's
// log is rejected, and the rejection must reach it. Neither is removed
// from the transport while it is trusted; once the configuration lists
// one, its URL rules; once it removes one, the transport forgets it. A URL
// of another form than a member add's is never passed on.
func TestTrustedAndVouchedMembersAreTransportPeers(t *testing.T) {
	const (
		u4      = "http://127.0.0.1:7004"
		u5      = "http://127.0.0.1:7005"
		u5Asked = "http://127.0.0.1:7015" // as the others list it (published anew since)
	)
	cfg := DefaultConfig()
	cfg.ID, cfg.DataDir = 2, t.TempDir()
	cfg.Peers = map[uint64]string{1: "http://127.0.0.1:7001", 2: "http://127.0.0.1:7002", 3: "http://127.0.0.1:7003"}
	cfg.ClientURL = "http://client-2"
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.wal.Close(); err != nil {
			t.Error(err)
		}
	}()
	tr := &recordingTransport{peers: map[uint64]string{}}
	n.transport = tr // as Run does
	n.syncTransport()
	if err := n.start(); err != nil { // applies the bootstrap's entries 1–3
		t.Fatal(err)
	}
	step := func(what string, m *raftpb.Message, wantCalls ...string) {
		t.Helper()
		if err := n.iterate(input{msg: m}, nil); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		calls, dropped := tr.take()
		if !slices.Equal(calls, wantCalls) {
			t.Errorf("%s: transport told %q, want %q", what, calls, wantCalls)
		}
		if len(dropped) > 0 {
			t.Errorf("%s: the answers %q were dropped: the transport does not know their addressee", what, dropped)
		}
	}
	if calls, _ := tr.take(); !slices.Equal(calls, []string{"add 1 http://127.0.0.1:7001", "add 3 http://127.0.0.1:7003"}) &&
		!slices.Equal(calls, []string{"add 3 http://127.0.0.1:7003", "add 1 http://127.0.0.1:7001"}) {
		t.Fatalf("at the start the transport was told %q, want members 1 and 3", calls)
	}
	app := func(from, term, index, logTerm, commit uint64, ents ...*raftpb.Entry) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(2), Term: proto.Uint64(term),
			Index: proto.Uint64(index), LogTerm: proto.Uint64(logTerm), Commit: proto.Uint64(commit), Entries: ents}
	}

	// Leader 1 of term 2 appends the addition of member 4, not committed
	// yet: 4 is trusted from the log, with the add's URL.
	step("the addition of member 4 appended", app(1, 2, 3, 1, 3,
		&raftpb.Entry{Term: proto.Uint64(2), Index: proto.Uint64(4)},
		memberEntry(t, 2, 5, &lock.Command{Op: lock.OpMemberAdd, Member: lock.Member{ID: 4, PeerURL: u4}})),
		"add 4 "+u4)
	// Member 4 leads (term 3): this node's answers reach it.
	step("member 4's heartbeat", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(4), To: proto.Uint64(2),
		Term: proto.Uint64(3), Commit: proto.Uint64(3)})

	// Member 5 was added meanwhile (entry 6) and leads (term 4). The
	// others vouch for it, on the vouchers goroutine; the loop tells the
	// transport at its next Ready, before that Ready's rejection of 5's
	// probe (index 7, beyond this node's log) is sent.
	if !n.vouchedBy(5, []ClusterInfo{{Members: []MemberInfo{{ID: 1}, {ID: 3}, {ID: 4, PeerURL: u4}, {ID: 5, PeerURL: u5Asked}}}}) {
		t.Fatal("member 5, listed by the answer, not vouched for")
	}
	step("member 5's probe beyond the log, rejected", app(5, 4, 7, 4, 5), "add 5 "+u5Asked)
	if last, _ := n.storage.LastIndex(); last != 5 {
		t.Fatalf("the probe was not rejected: last index %d", last)
	}
	// A vouched URL of another form than a member add's is not passed on
	// (rafthttp would panic on a path); the member is still accepted.
	if !n.vouchedBy(9, []ClusterInfo{{Members: []MemberInfo{{ID: 9, PeerURL: "http://127.0.0.1:7009/raft"}}}}) || !n.IsMember(9) {
		t.Fatal("member 9, listed by the answer, not vouched for")
	}

	// 5 sends entries 6 (5's addition, with its own URL) and 7, and that
	// 4's addition committed: the configuration lists 4 at the URL it
	// had (nothing to change), and 5, trusted still, stays.
	step("4's addition applied", app(5, 4, 5, 2, 5,
		memberEntry(t, 2, 6, &lock.Command{Op: lock.OpMemberAdd, Member: lock.Member{ID: 5, PeerURL: u5}}),
		&raftpb.Entry{Term: proto.Uint64(4), Index: proto.Uint64(7)}))
	if !n.memberSet.Load().ids[4] || n.vouchers.isVouched(4) || !n.vouchers.isVouched(5) {
		t.Fatalf("after 4's addition applied: 4 in the configuration %v, still vouched %v; 5 vouched %v",
			n.memberSet.Load().ids[4], n.vouchers.isVouched(4), n.vouchers.isVouched(5))
	}
	// 5's addition commits: the configuration's URL rules.
	step("5's addition applied", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(5), To: proto.Uint64(2),
		Term: proto.Uint64(4), Commit: proto.Uint64(7)},
		"remove 5", "add 5 "+u5)
	// The configuration removes 4: the transport forgets it.
	step("4's removal applied", app(5, 4, 7, 4, 8,
		memberEntry(t, 4, 8, &lock.Command{Op: lock.OpMemberRemove, Member: lock.Member{ID: 4}})),
		"remove 4")
	if n.applied != 8 || n.IsMember(4) || !n.IsIDRemoved(4) {
		t.Fatalf("after 4's removal: applied %d, IsMember(4) %v, IsIDRemoved(4) %v", n.applied, n.IsMember(4), n.IsIDRemoved(4))
	}
}

// A URL trusted from this node's log may be that of an addition that a new
// leader overwrote, giving the ID to another URL: a later entry's URL
// replaces it, the members' answers replace it and are kept, and a
// message from an ID trusted only from the log makes the node ask them.
func TestTrustedURLGivesWayToTheMembersAnswer(t *testing.T) {
	var v voucher
	v.init()
	const id = 9
	stale, logged, answered := "http://10.0.0.1:2380", "http://10.0.0.2:2380", "http://10.0.0.3:2380"
	steps := []struct {
		u      string
		answer bool
		want   string
	}{
		{stale, false, stale},             // the first entry adding 9
		{logged, false, logged},           // a later entry: replaces it
		{answered, true, answered},        // the members' answer: replaces it
		{logged, false, answered},         // a log entry never replaces an answer
		{"sim://nowhere", true, answered}, // nor does a URL that is not usable
	}
	for i, st := range steps {
		v.record(id, st.u, st.answer)
		if got := v.peerURLs()[id]; got != st.want {
			t.Fatalf("step %d (%q, answer %v): peer URL %q, want %q", i, st.u, st.answer, got, st.want)
		}
	}

	c := newTestCluster(t, 1, nil)
	n := c.leader().n
	asker := &fakeAsker{members: []MemberInfo{{ID: 1}, {ID: 7, PeerURL: answered}}}
	go n.runVouchers(asker)
	n.vouchers.record(7, stale, false) // trusted from the log only
	if !n.IsMember(7) {
		t.Fatal("a member trusted from the log refused")
	}
	await.True(t, 5*time.Second, "the members asked about a member trusted only from the log", func() bool {
		return n.vouchers.peerURLs()[7] == answered
	})
}
