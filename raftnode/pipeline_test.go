package raftnode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// gatedDurable is a Durable whose saves of entries block while the gate is
// shut; blockedC gets the last index of each save that blocks.
type gatedDurable struct {
	Durable
	mu       sync.Mutex
	gate     chan struct{} // nil: open
	step     chan struct{} // non-nil: every save of entries also waits for a value on it (or its close)
	blockedC chan uint64
}

// stepping makes every later save of entries wait for a value on c (or
// its close); the caller closes c when done.
func (g *gatedDurable) stepping(c chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.step = c
}

func (g *gatedDurable) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gatedDurable) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

func (g *gatedDurable) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	g.mu.Lock()
	gate, step := g.gate, g.step
	g.mu.Unlock()
	if (gate != nil || step != nil) && len(ents) > 0 {
		select {
		case g.blockedC <- ents[len(ents)-1].GetIndex():
		default:
		}
		if gate != nil {
			<-gate
		}
		if step != nil {
			<-step
		}
	}
	return g.Durable.Save(hs, ents)
}

// gatedCluster is three Nodes on a MemNetwork whose WALs can be gated.
type gatedCluster struct {
	t       *testing.T
	nw      *MemNetwork
	nodes   map[uint64]*Node
	durable map[uint64]*gatedDurable
	ticks   map[uint64]chan struct{}
}

func newGatedCluster(t *testing.T) *gatedCluster {
	t.Helper()
	nw := NewMemNetwork(1)
	peers := map[uint64]string{1: "mem://1", 2: "mem://2", 3: "mem://3"}
	c := &gatedCluster{t: t, nw: nw, nodes: map[uint64]*Node{}, durable: map[uint64]*gatedDurable{}, ticks: map[uint64]chan struct{}{}}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for id := range peers {
		cfg := DefaultConfig()
		cfg.ID = id
		cfg.DataDir = t.TempDir()
		cfg.Peers = peers
		cfg.ClientURL = fmt.Sprintf("http://client-%d", id)
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.Now = time.Now
		tick := make(chan struct{})
		cfg.Tick = tick
		meta, err := json.Marshal(metadata{ID: id, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		w, st, err := wal.Open(context.Background(), wal.Config{Dir: cfg.DataDir, Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		g := &gatedDurable{Durable: w, blockedC: make(chan uint64, 16)}
		n, err := newNode(cfg, g, st)
		if err != nil {
			t.Fatal(err)
		}
		tr := nw.Transport(id)
		nw.Register(id, n)
		c.nodes[id], c.durable[id], c.ticks[id] = n, g, tick
		wg.Go(func() {
			if err := n.Run(ctx, tr); err != nil {
				t.Errorf("node %d: %v", id, err)
			}
			tr.Stop()
		})
	}
	t.Cleanup(func() {
		for _, g := range c.durable {
			g.open()
		}
		cancel()
		wg.Wait()
	})
	return c
}

// leader ticks every node until one leads and is ready; after each tick it
// waits until the tick's messages have crossed the network.
func (c *gatedCluster) leader() *Node {
	c.t.Helper()
	for range 1000 {
		for _, n := range c.nodes {
			if st := n.Status(); st.IsLeader && st.Ready {
				return n
			}
		}
		for id, tick := range c.ticks {
			select {
			case tick <- struct{}{}:
			case <-c.nodes[id].Done():
			}
		}
		c.nw.AwaitQuiet(c.t, quietTimeout)
	}
	c.t.Fatal("no leader")
	return nil
}

// lastIndex is the last index in n's raft log (MemoryStorage is safe for
// concurrent use).
func lastIndex(n *Node) uint64 {
	i, _ := n.storage.LastIndex()
	return i
}

// TestLeaderReplicatesWhileItPersists: the leader hands its MsgApp to the
// transport before its own WAL save, so the followers receive, persist and
// acknowledge an entry while the leader's save is still blocked, and the
// entry commits once the leader's save returns (the followers alone are a
// majority, the leader counts itself only after its save).
func TestLeaderReplicatesWhileItPersists(t *testing.T) {
	c := newGatedCluster(t)
	lead := c.leader()
	g := c.durable[lead.ID()]
	g.shut()
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err := lead.Propose(ctx, &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second)})
		res <- err
	}()
	var idx uint64
	select {
	case idx = <-g.blockedC:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never saved the proposal")
	}
	// While the leader is stuck in its save, both followers get the entry.
	if _, ok := await.Within(10*time.Second, func() bool {
		got := 0
		for id, n := range c.nodes {
			if id != lead.ID() && lastIndex(n) >= idx {
				got++
			}
		}
		return got == 2
	}); !ok {
		t.Fatalf("followers did not receive entry %d while the leader persisted it: the leader sends only after its save", idx)
	}
	select {
	case err := <-res:
		t.Fatalf("the proposal was answered before the leader's save returned: %v", err)
	default:
	}
	g.open()
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proposal not answered after the leader's save")
	}
}

// TestFollowersAckOnlyAfterTheirSave: with both followers' saves blocked,
// the leader cannot commit (its own copy is one of three); once one
// follower's save returns, it does.
func TestFollowersAckOnlyAfterTheirSave(t *testing.T) {
	c := newGatedCluster(t)
	lead := c.leader()
	var followers []uint64
	for id := range c.nodes {
		if id != lead.ID() {
			followers = append(followers, id)
			c.durable[id].shut()
		}
	}
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err := lead.Propose(ctx, &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second)})
		res <- err
	}()
	// A follower may have saved an entry of the leader's own (a tick or a
	// publish) just before its gate shut, and block on the next one: the
	// entries no follower has saved end at the highest blocked index.
	var idx uint64
	for _, id := range followers {
		select {
		case i := <-c.durable[id].blockedC:
			idx = max(idx, i)
		case <-time.After(10 * time.Second):
			t.Fatalf("follower %d never saved the entry", id)
		}
	}
	// Both followers are inside their save: no acknowledgement exists.
	if st := lead.Status(); st.Commit >= idx {
		t.Fatalf("leader committed %d while no follower had saved entry %d", st.Commit, idx)
	}
	select {
	case err := <-res:
		t.Fatalf("answered before any follower saved: %v", err)
	default:
	}
	c.durable[followers[0]].open()
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proposal not answered after a follower saved")
	}
}

func TestSplitLeaderMessages(t *testing.T) {
	app := &raftpb.Message{Type: raftpb.MsgApp.Enum()}
	hb := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum()}
	resp := &raftpb.Message{Type: raftpb.MsgAppResp.Enum()}
	vote := &raftpb.Message{Type: raftpb.MsgVoteResp.Enum()}
	pre := &raftpb.Message{Type: raftpb.MsgPreVoteResp.Enum()}
	msgs := []*raftpb.Message{app, hb}
	early, late := splitLeaderMessages(msgs)
	if len(early) != 2 || &early[0] != &msgs[0] || late != nil {
		t.Fatalf("only replication: early %v late %v, want msgs itself and nothing late", early, late)
	}
	early, late = splitLeaderMessages([]*raftpb.Message{resp, app, vote, hb, pre})
	if len(early) != 2 || early[0] != app || early[1] != hb || len(late) != 3 || late[0] != resp || late[1] != vote || late[2] != pre {
		t.Fatalf("mixed: early %v late %v", early, late)
	}
}

// TestCommitAnsweredBeforeTheNextSave: when the acknowledgements that
// commit entries reach the leader together with a new proposal, the
// committed entries (on the leader's disk already) are applied and
// answered before the WAL save of the new one, not after it: under load a
// commit never waits for one more fsync (processReady).
func TestCommitAnsweredBeforeTheNextSave(t *testing.T) {
	c := newGatedCluster(t)
	lead := c.leader()
	step := c.durable[lead.ID()]
	proceed := make(chan struct{})
	step.stepping(proceed)
	var once sync.Once
	release := func() { once.Do(func() { close(proceed) }) }
	t.Cleanup(release) // before the cluster's clean-up, which waits for the nodes
	var followers []*gatedDurable
	for id, g := range c.durable {
		if id != lead.ID() {
			g.shut()
			followers = append(followers, g)
		}
	}
	propose := func() chan error {
		res := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _, err := lead.Propose(ctx, &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second)})
			res <- err
		}()
		return res
	}
	blocked := func(what string) uint64 {
		select {
		case i := <-step.blockedC:
			return i
		case <-time.After(10 * time.Second):
			t.Fatalf("the leader never saved %s", what)
			return 0
		}
	}
	// P1 is on the leader's disk; the followers' saves block.
	r1 := propose()
	blocked("P1")
	proceed <- struct{}{}
	// The leader's save of P2 blocks; meanwhile the followers persist and
	// acknowledge P1 and P2, and P3 waits for the loop.
	r2 := propose()
	i2 := blocked("P2")
	for _, g := range followers {
		g.open()
	}
	await.True(t, 10*time.Second, "the followers persisted P2", func() bool {
		for id, n := range c.nodes {
			if id != lead.ID() && lastIndex(n) < i2 {
				return false
			}
		}
		return true
	})
	c.nw.AwaitQuiet(t, quietTimeout)
	r3 := propose()
	await.True(t, 10*time.Second, "P3 queued for the loop", func() bool { return len(lead.propC) == 1 })
	proceed <- struct{}{} // P2's save returns
	blocked("P3")         // the save of P3 blocks now
	for i, r := range []chan error{r1, r2} {
		select {
		case err := <-r:
			if err != nil {
				t.Fatalf("P%d: %v", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("P%d, committed, was not answered while the save of P3 was in progress", i+1)
		}
	}
	select {
	case err := <-r3:
		t.Fatalf("P3 answered before its save: %v", err)
	default:
	}
	release()
	if err := <-r3; err != nil {
		t.Fatal(err)
	}
}
