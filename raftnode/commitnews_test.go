package raftnode

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

// sentTransport records what it is asked to send.
type sentTransport struct {
	mu   sync.Mutex
	sent []*raftpb.Message
}

func (st *sentTransport) Send(msgs []*raftpb.Message) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sent = append(st.sent, msgs...)
}
func (st *sentTransport) AddPeer(uint64, string) {}
func (st *sentTransport) RemovePeer(uint64)      {}
func (st *sentTransport) Stop()                  {}
func (st *sentTransport) take() []*raftpb.Message {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.sent
	st.sent = nil
	return s
}

func msgApp(to, prev uint64, commit uint64, ents int) *raftpb.Message {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(to), Index: proto.Uint64(prev), Commit: proto.Uint64(commit)}
	for i := range ents {
		m.Entries = append(m.Entries, &raftpb.Entry{Index: proto.Uint64(prev + 1 + uint64(i))})
	}
	return m
}

// The commit news of a leader (an empty MsgApp to a follower that has
// the whole log) is held back, newest per follower; a later message that
// carries the commit index replaces it; the rest goes out as it came, and
// what is held goes out on sendCommitNews.
func TestCommitNewsIsHeldUntilReplacedOrDue(t *testing.T) {
	progress := func(id uint64) (uint64, tracker.StateType, bool) {
		switch id {
		case 2:
			return 10, tracker.StateReplicate, true // has everything
		case 3:
			return 8, tracker.StateReplicate, true // entries 9 and 10 in flight
		case 4:
			return 10, tracker.StateProbe, true // being probed
		}
		return 0, 0, false
	}
	st := &sentTransport{}
	n := &Node{transport: st}
	news2, news3, news4 := msgApp(2, 10, 10, 0), msgApp(3, 10, 10, 0), msgApp(4, 10, 10, 0)
	hb3 := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(3), Commit: proto.Uint64(8)}
	out := n.holdCommitNews([]*raftpb.Message{news2, news3, news4, hb3}, progress)
	if !slices.Equal(out, []*raftpb.Message{news3, news4, hb3}) || len(n.heldCommits) != 1 || n.heldCommits[2] != news2 {
		t.Fatalf("out %v, held %v: want only the news to 2 held", out, n.heldCommits)
	}
	// Newer news replaces older; a message with entries to 2 carries
	// the commit index and drops it.
	newer := msgApp(2, 10, 11, 0)
	if out := n.holdCommitNews([]*raftpb.Message{newer}, progress); len(out) != 0 || n.heldCommits[2] != newer {
		t.Fatalf("out %v, held %v: want the newer news held", out, n.heldCommits)
	}
	app2 := msgApp(2, 10, 11, 1)
	if out := n.holdCommitNews([]*raftpb.Message{app2}, progress); !slices.Equal(out, []*raftpb.Message{app2}) || len(n.heldCommits) != 0 {
		t.Fatalf("out %v, held %v: want the MsgApp sent and the news dropped", out, n.heldCommits)
	}
	// What is held goes out when due.
	n.holdCommitNews([]*raftpb.Message{news2}, progress)
	n.sendCommitNews()
	if got := st.take(); !slices.Equal(got, []*raftpb.Message{news2}) || len(n.heldCommits) != 0 {
		t.Fatalf("sent %v, held %v: want the news to 2 sent", got, n.heldCommits)
	}
}

// Run sends the commit news it holds within JoinDeferral: with the clock
// never ticking (no heartbeat), every follower still learns that the
// entries it holds are committed, and applies them.
func TestFollowersLearnTheCommitWithoutTicks(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	c.settle()
	for i := range 5 {
		r, idx := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
		if r.Code != lock.CodeOK {
			t.Fatalf("open session %d: %v", i, r.Code)
		}
		for _, tn := range c.nodes {
			await.True(t, 10*time.Second, "a follower applies the committed entry without a tick", func() bool {
				var applied uint64
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = tn.n.Read(ctx, true, func(*lock.Machine) { applied = tn.n.applied })
				return applied >= idx
			})
		}
	}
}

// BenchmarkHoldCommitNews: the leader's filter over one Ready's messages to
// two followers, one of them commit news (which it holds). The progress
// lookup is the caller's; raftProgress reads raft's only for a Ready that
// has an empty MsgApp.
func BenchmarkHoldCommitNews(b *testing.B) {
	progress := func(id uint64) (uint64, tracker.StateType, bool) { return 10, tracker.StateReplicate, true }
	n := &Node{transport: &sentTransport{}}
	app, news := msgApp(2, 10, 10, 1), msgApp(3, 10, 10, 0)
	b.ReportAllocs()
	for b.Loop() {
		n.holdCommitNews([]*raftpb.Message{app, news}, progress)
		delete(n.heldCommits, 3)
	}
}
