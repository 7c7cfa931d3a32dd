package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
)

// caughtUp reports whether the leader hears from member id and sees its
// log match its own.
func caughtUp(lead *testNode, id uint64) bool {
	for _, m := range lead.n.Status().Members {
		if m.ID == id && m.Progress != nil && m.Progress.Reachable && m.Progress.Behind == 0 {
			return true
		}
	}
	return false
}

// The leader removes no member while another that remains matches its log
// only below the latest membership change it applied (member_behind): a
// learner cut off while a member was added, then one added and never
// started. Each is named; once the first caught up the second blocks the
// removal, until the leader has not heard from it for
// behindWindowElections election timeouts.
func TestRemovalRefusedWhileAMemberIsBehind(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	lead := c.leader()
	c.tickUntil("a single member raises the cluster version", 100, func() bool {
		return lead.n.Status().ClusterVersion == lock.MaxCommandVersion
	})
	for id := uint64(2); id <= 3; id++ {
		if got, err := c.change(lead, MemberChange{Kind: MemberAddLearner, PeerURL: fmt.Sprintf("mem://%d", id)}); err != nil || got != id {
			t.Fatalf("add learner %d: got %d, %v", id, got, err)
		}
		c.join(id, lead.n.ClusterID())
		c.tickUntil(fmt.Sprintf("learner %d catches up", id), 500, func() bool { return caughtUp(lead, id) })
		for _, tn := range c.nodes {
			for m := range c.nodes {
				tn.n.ReportVersion(m, lock.MaxCommandVersion)
			}
		}
	}
	// Learner 3 misses the addition of member 4, which never starts.
	c.nw.Isolate(3)
	if got, err := c.change(lead, MemberChange{Kind: MemberAddLearner, PeerURL: "mem://4"}); err != nil || got != 4 {
		t.Fatalf("add learner 4: got %d, %v", got, err)
	}
	refusedWith(t, remove(c, lead, 2), "member_behind")
	if err := remove(c, lead, 2); !strings.Contains(err.Error(), "member 3 matches") {
		t.Fatalf("the refusal names another member than the one behind: %v", err)
	}

	c.nw.Heal()
	c.tickUntil("learner 3 catches up", 500, func() bool { return caughtUp(lead, 3) })
	err := remove(c, lead, 2)
	refusedWith(t, err, "member_behind")
	if !strings.Contains(err.Error(), "member 4 matches the leader's log only up to index 0") {
		t.Fatalf("the refusal does not name member 4, which never started: %v", err)
	}
	// A member the leader has not heard from for behindWindowElections
	// election timeouts is taken for gone (a dead disk must not block the
	// removal of others for good): then member 2 may go.
	// (raft takes a member it just added for active until its next
	// CheckQuorum round, an election timeout: the leader "heard" member 4
	// then.)
	c.ticks((behindWindowElections + 3) * DefaultConfig().ElectionTicks)
	if err := remove(c, lead, 2); err != nil {
		t.Fatalf("remove member 2 once member 4, behind, was not heard from for %d election timeouts: %v", behindWindowElections, err)
	}
	// Removing the one behind is allowed (the others have every change).
	if err := remove(c, lead, 4); err != nil {
		t.Fatalf("remove the member behind: %v", err)
	}
	gone := c.nodes[2]
	select {
	case err := <-gone.errC:
		if !errors.Is(err, ErrRemoved) {
			t.Fatalf("removed member 2 stopped with %v, want ErrRemoved", err)
		}
		gone.errC <- nil // for the cleanup's stop
	case <-time.After(quietTimeout):
		t.Fatal("removed member 2 did not stop")
	}
	if _, l := voters(lead); len(l) != 1 || l[0] != 3 {
		t.Fatalf("learners %v, want [3]", l)
	}
}

func remove(c *testCluster, tn *testNode, id uint64) error {
	_, err := c.change(tn, MemberChange{Kind: MemberRemove, ID: id})
	return err
}

// addLearnerEntry is the entry a leader of term appends at index to add
// learner id.
func addLearnerEntry(t *testing.T, term, index, id uint64) *raftpb.Entry {
	t.Helper()
	cmd := &lock.Command{Op: lock.OpMemberAdd, Wait: true, Member: lock.Member{ID: id, PeerURL: fmt.Sprintf("mem://%d", id)}}
	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(id), Context: encodeEnvelope(1, 1, cmd)}
	data, err := proto.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	return &raftpb.Entry{Term: proto.Uint64(term), Index: proto.Uint64(index), Type: raftpb.EntryConfChange.Enum(), Data: data}
}

// A member trusts the members that configuration changes in its own log
// add before it applies them (vouch.go): it learns that they committed
// from the leader, which may be one of them. Both where the loop appends
// a Ready's entries and at a restart, whose log's tail is applied again.
func TestAppendedConfChangeTrustsTheMemberItAdds(t *testing.T) {
	dir := t.TempDir()
	open := func() *Node {
		t.Helper()
		cfg := DefaultConfig()
		cfg.ID, cfg.DataDir = 2, dir
		cfg.Peers = map[uint64]string{1: "mem://1", 2: "mem://2", 3: "mem://3"}
		cfg.ClientURL = "http://client-2"
		n, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := open()
	if err := n.start(); err != nil { // applies the bootstrap's entries 1–3
		t.Fatal(err)
	}
	if n.IsMember(4) || n.applied != 3 {
		t.Fatalf("before the entry: IsMember(4) %v, applied %d", n.IsMember(4), n.applied)
	}
	// Leader 1 of term 2 appends the addition of learner 4 at index 5
	// (after its empty entry), without telling that it committed.
	app := &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(2),
		Index: proto.Uint64(3), LogTerm: proto.Uint64(1), Commit: proto.Uint64(3),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(2), Index: proto.Uint64(4)}, addLearnerEntry(t, 2, 5, 4)},
	}
	if err := n.iterate(input{msg: app}, nil); err != nil {
		t.Fatal(err)
	}
	if last, _ := n.storage.LastIndex(); last != 5 || n.applied != 3 {
		t.Fatalf("the entry is not appended and unapplied: last index %d, applied %d", last, n.applied)
	}
	if !n.IsMember(4) {
		t.Fatal("member 4, added by an entry in this node's log, is not trusted before it is applied")
	}
	if n.IsMember(5) {
		t.Fatal("a member no entry adds is trusted")
	}
	if err := n.wal.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: the tail past what is applied is read again.
	n = open()
	if !n.IsMember(4) || n.memberSet.Load().ids[4] {
		t.Fatalf("after a restart: IsMember(4) %v, in the configuration %v", n.IsMember(4), n.memberSet.Load().ids[4])
	}
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	// Once the addition is applied the configuration decides.
	hb := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(2), Commit: proto.Uint64(5)}
	if err := n.iterate(input{msg: hb}, nil); err != nil {
		t.Fatal(err)
	}
	if n.applied != 5 || !n.memberSet.Load().ids[4] || n.vouchers.isVouched(4) {
		t.Fatalf("after the addition is applied: applied %d, in the configuration %v, still vouched %v",
			n.applied, n.memberSet.Load().ids[4], n.vouchers.isVouched(4))
	}
	if err := n.wal.Close(); err != nil {
		t.Fatal(err)
	}
}
