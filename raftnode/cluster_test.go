package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

// fakeClock is a wall clock and a monotonic clock that the test moves by
// hand: Advance moves both (time passes), Step the wall clock only (an NTP
// correction).
type fakeClock struct{ ns, mono atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Mono() time.Duration     { return time.Duration(c.mono.Load()) }
func (c *fakeClock) Step(d time.Duration)    { c.ns.Add(int64(d)) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)); c.mono.Add(int64(d)) }

type testNode struct {
	n      *Node
	tr     *MemTransport
	tick   chan struct{}
	cancel context.CancelFunc
	errC   chan error
}

// testCluster runs Nodes in this process on a MemNetwork. Time moves only
// when the test ticks it.
type testCluster struct {
	t       *testing.T
	nw      *MemNetwork
	clock   *fakeClock
	peers   map[uint64]string
	dirs    map[uint64]string
	nodes   map[uint64]*testNode
	mutateC func(*Config)
}

func newTestCluster(t *testing.T, size int, mutate func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{
		t:       t,
		nw:      NewMemNetwork(1),
		clock:   &fakeClock{},
		peers:   map[uint64]string{},
		dirs:    map[uint64]string{},
		nodes:   map[uint64]*testNode{},
		mutateC: mutate,
	}
	c.clock.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	for id := uint64(1); id <= uint64(size); id++ {
		c.peers[id] = fmt.Sprintf("mem://%d", id)
		c.dirs[id] = t.TempDir()
	}
	for id := range c.peers {
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	return c
}

func (c *testCluster) start(id uint64) *testNode {
	c.t.Helper()
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.DataDir = c.dirs[id]
	cfg.Peers = c.peers
	cfg.ClientURL = fmt.Sprintf("http://client-%d", id)
	cfg.Now = c.clock.Now
	cfg.Monotonic = c.clock.Mono
	tick := make(chan struct{})
	cfg.Tick = tick
	if c.mutateC != nil {
		c.mutateC(&cfg)
	}
	n, err := New(context.Background(), cfg)
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{n: n, tr: c.nw.Transport(id), tick: tick, cancel: cancel, errC: make(chan error, 1)}
	c.nw.Register(id, n)
	go func() { tn.errC <- n.Run(ctx, tn.tr) }()
	c.nodes[id] = tn
	return tn
}

func (c *testCluster) stop(id uint64) {
	c.t.Helper()
	tn := c.nodes[id]
	if tn == nil {
		return
	}
	tn.cancel()
	if err := <-tn.errC; err != nil {
		c.t.Errorf("node %d stopped with %v", id, err)
	}
	tn.tr.Stop()
	delete(c.nodes, id)
}

// quietTimeout bounds how long one tick's messages may take to cross the
// in-memory network (delays included), how long a node's loop may take to
// come round to a read, and how long a condition still false after the
// last tick may take to come true: generous, as a loaded machine under
// -race is slow; it is reached only when something is stuck.
const quietTimeout = 10 * time.Second

// tickUntil ticks every running node, one tick at a time, until cond holds;
// it fails the test after max ticks. After each tick it waits until the
// cluster has settled (see settle) before it checks cond, so raft's time
// moves only when nothing else can happen without it.
//
// A tick costs microseconds, so it must not outrun a goroutine outside the
// cluster that cond may wait for (one that waits for a Propose or a Read
// and passes the answer on, and was not scheduled in time): after the last
// tick, cond gets quietTimeout more to come true without ticks. A
// condition that needs ticks fails all the same.
func (c *testCluster) tickUntil(what string, max int, cond func() bool) {
	c.t.Helper()
	for i := 0; i < max; i++ {
		if cond() {
			return
		}
		for _, tn := range c.nodes {
			select {
			case tn.tick <- struct{}{}:
			case <-tn.n.Done():
			}
		}
		c.settle()
	}
	if _, ok := await.Within(quietTimeout, cond); !ok {
		c.t.Fatalf("%s: not reached after %d ticks", what, max)
	}
}

// settle waits until no message is in flight and every running node's loop
// has come round to a stale Read (a no-op that passes through the loop
// behind what the loop had), and again for as long as that sends anything:
// the tick's messages, their answers and what those caused have then
// reached their receivers' loops. The loop may still be handling the last
// of them (a Read is answered as soon as the loop takes it); a condition
// that needs that is checked again after the next tick.
func (c *testCluster) settle() {
	c.t.Helper()
	for range 1000 {
		sent := c.nw.Sent()
		c.nw.AwaitQuiet(c.t, quietTimeout)
		for _, tn := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), quietTimeout)
			err := tn.n.Read(ctx, true, func(*lock.Machine) {})
			cancel()
			if err != nil && !errors.Is(err, ErrStopped) {
				c.t.Fatalf("node %d's loop did not come round to a read: %v", tn.n.ID(), err)
			}
		}
		if c.nw.Sent() == sent {
			return
		}
	}
	c.t.Fatalf("the cluster did not settle: messages keep being sent without ticks")
}

// ticks ticks every running node n times.
func (c *testCluster) ticks(n int) {
	left := n
	c.tickUntil("ticks", n+1, func() bool { left--; return left < 0 })
}

func (c *testCluster) leader() *testNode {
	var lead *testNode
	c.tickUntil("a leader", 500, func() bool {
		for _, tn := range c.nodes {
			if st := tn.n.Status(); st.IsLeader && st.Ready {
				lead = tn
				return true
			}
		}
		return false
	})
	return lead
}

// follower returns a running node that is not the leader.
func (c *testCluster) follower() *testNode {
	c.t.Helper()
	for _, tn := range c.nodes {
		if !tn.n.Status().IsLeader {
			return tn
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// propose proposes on the leader, ticking the cluster while it waits.
func (c *testCluster) propose(tn *testNode, cmd *lock.Command) (lock.Result, uint64, error) {
	c.t.Helper()
	type out struct {
		res lock.Result
		idx uint64
		err error
	}
	ch := make(chan out, 1)
	calling := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		close(calling)
		r, i, err := tn.n.Propose(ctx, cmd)
		ch <- out{r, i, err}
	}()
	// Ticks are cheap: start them once the proposal is on its way, not
	// while its goroutine waits to be scheduled.
	<-calling
	var o out
	c.tickUntil("proposal answered", 2000, func() bool {
		select {
		case o = <-ch:
			return true
		default:
			return false
		}
	})
	return o.res, o.idx, o.err
}

func (c *testCluster) mustPropose(tn *testNode, cmd *lock.Command) (lock.Result, uint64) {
	c.t.Helper()
	r, i, err := c.propose(tn, cmd)
	if err != nil {
		c.t.Fatalf("propose %v: %v", cmd.Op, err)
	}
	return r, i
}

// snapshotOf returns the node's state machine bytes (a stale, local read).
func snapshotOf(t *testing.T, tn *testNode) ([]byte, uint64) {
	t.Helper()
	var b []byte
	var applied uint64
	if err := tn.n.Read(context.Background(), true, func(m *lock.Machine) {
		b = m.Snapshot()
		applied = m.AppliedIndex()
	}); err != nil {
		t.Fatalf("read node %d: %v", tn.n.ID(), err)
	}
	return b, applied
}

// converged waits until every running node has applied the same index and
// holds byte-identical state.
func (c *testCluster) converged() {
	c.t.Helper()
	c.tickUntil("all nodes converge", 1000, func() bool {
		var first []byte
		var idx uint64
		for _, tn := range c.nodes {
			b, a := snapshotOf(c.t, tn)
			if first == nil {
				first, idx = b, a
				continue
			}
			if a != idx || !bytes.Equal(b, first) {
				return false
			}
		}
		return true
	})
}

func TestClusterElectsCommitsAndReadsFromFollower(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	res, idx := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second), Owner: "a"})
	if res.Code != lock.CodeOK || res.Session != idx {
		t.Fatalf("open session: %+v at %d, want ok with ID = index", res, idx)
	}
	res, idx = c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: "job"})
	if res.Code != lock.CodeOK || res.Token != idx {
		t.Fatalf("acquire: %+v at %d, want granted with token = index", res, idx)
	}
	for id, tn := range c.nodes {
		if tn == lead {
			continue
		}
		// A follower refuses clocked writes and names the leader.
		_, _, err := tn.n.Propose(context.Background(), &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Second)})
		var nle *NotLeaderError
		if !errors.As(err, &nle) || nle.LeaderID != lead.n.ID() {
			t.Fatalf("follower %d propose: %v, want NotLeaderError naming %d", id, err, lead.n.ID())
		}
		// A linearizable read on a follower sees the grant.
		var info lock.LockInfo
		done := make(chan error, 1)
		calling := make(chan struct{})
		go func() {
			close(calling)
			done <- tn.n.Read(context.Background(), false, func(m *lock.Machine) { info, _ = m.Lock("job") })
		}()
		<-calling // see propose
		var err2 error
		c.tickUntil("follower read", 500, func() bool {
			select {
			case err2 = <-done:
				return true
			default:
				return false
			}
		})
		if err2 != nil || info.Holder == nil || info.Holder.Token != res.Token {
			t.Fatalf("follower %d read: %v %+v, want holder with token %d", id, err2, info, res.Token)
		}
	}
	// Every member publishes its client URL; followers can name the leader's.
	c.tickUntil("members published", 500, func() bool {
		for _, tn := range c.nodes {
			st := tn.n.Status()
			if st.LeaderClientURL != fmt.Sprintf("http://client-%d", lead.n.ID()) {
				return false
			}
		}
		return true
	})
	c.converged()
}

func TestIsolatedLeaderIsReplacedAndCatchesUp(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	old := c.leader()
	sres, _ := c.mustPropose(old, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	c.nw.Isolate(old.n.ID())
	var lead *testNode
	c.tickUntil("a new leader", 1000, func() bool {
		for _, tn := range c.nodes {
			if st := tn.n.Status(); tn != old && st.IsLeader && st.Ready {
				lead = tn
				return true
			}
		}
		return false
	})
	// The isolated old leader cannot commit: CheckQuorum makes it step
	// down, and its write fails rather than hanging or succeeding.
	_, _, err := c.propose(old, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: "x"})
	if err == nil {
		t.Fatal("write on an isolated leader succeeded")
	}
	res, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: "y"})
	if res.Code != lock.CodeOK {
		t.Fatalf("acquire on new leader: %+v", res)
	}
	c.nw.Heal()
	c.converged()
	var info lock.LockInfo
	if err := old.n.Read(context.Background(), true, func(m *lock.Machine) { info, _ = m.Lock("y") }); err != nil {
		t.Fatal(err)
	}
	if info.Holder == nil || info.Holder.Token != res.Token {
		t.Fatalf("old leader after heal: %+v, want token %d", info, res.Token)
	}
	if _, ok := func() (lock.LockInfo, bool) {
		var i lock.LockInfo
		var ok bool
		_ = old.n.Read(context.Background(), true, func(m *lock.Machine) { i, ok = m.Lock("x") })
		return i, ok
	}(); ok {
		t.Fatal("the isolated leader's uncommitted acquire of x survived")
	}
}

func TestRestartRecoversFromWAL(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	sres, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	for i := 0; i < 5; i++ {
		c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: fmt.Sprintf("l%d", i)})
	}
	c.converged()
	want, wantIdx := snapshotOf(t, lead)
	// Restart every node, the leader included: state comes back from the
	// WAL alone.
	for id := range c.peers {
		c.stop(id)
	}
	for id := range c.peers {
		c.start(id)
	}
	for _, tn := range c.nodes {
		got, idx := snapshotOf(t, tn)
		if idx < wantIdx {
			// Entries committed but not yet known committed locally are
			// re-applied once a leader is elected.
			continue
		}
		if !bytes.Equal(got, want) && idx == wantIdx {
			t.Fatalf("node %d after restart differs at index %d", tn.n.ID(), idx)
		}
	}
	lead = c.leader()
	res, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: "l0"})
	if res.Code != lock.CodeOK || res.Token == 0 {
		t.Fatalf("retry acquire after restart: %+v, want the original grant", res)
	}
	c.converged()
	var info lock.LockInfo
	_ = lead.n.Read(context.Background(), true, func(m *lock.Machine) { info, _ = m.Lock("l4") })
	if info.Holder == nil || info.Holder.Session != sres.Session {
		t.Fatalf("lock l4 after restart: %+v", info)
	}
}

func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotEvery = 20
		cfg.SnapshotCatchUp = 5
	})
	lead := c.leader()
	var lag uint64
	for id := range c.nodes {
		if id != lead.n.ID() {
			lag = id
			break
		}
	}
	c.stop(lag)
	sres, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	for i := 0; i < 60; i++ {
		c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: fmt.Sprintf("n%03d", i)})
	}
	// The snapshot is recorded shortly after its file is written, off the
	// loop.
	c.tickUntil("the leader's snapshot", 500, func() bool { return lead.n.Status().SnapshotIndex != 0 })
	tn := c.start(lag)
	c.converged()
	if st := tn.n.Status(); st.SnapshotIndex == 0 {
		t.Fatalf("lagging node caught up without a snapshot: %+v", st)
	}
	// And it restarts from that snapshot plus its WAL.
	c.stop(lag)
	tn = c.start(lag)
	c.converged()
	var n int
	_ = tn.n.Read(context.Background(), true, func(m *lock.Machine) { n = len(m.Locks("n")) })
	if n != 60 {
		t.Fatalf("restarted node holds %d locks, want 60", n)
	}
}

func TestKeepAlivesAreBatched(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	lead := c.leader()
	const sessions = 50
	ids := make([]uint64, sessions)
	for i := range ids {
		r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
		ids[i] = r.Session
	}
	// The applied index as the loop has it (Status is published at the
	// end of an iteration, after the answers went out).
	appliedNow := func() uint64 {
		var a uint64
		if err := lead.n.Read(context.Background(), true, func(*lock.Machine) { a = lead.n.applied }); err != nil {
			t.Fatal(err)
		}
		return a
	}
	before := appliedNow()
	var wg sync.WaitGroup
	errs := make(chan error, sessions+1)
	start := make(chan struct{})
	for _, id := range append(ids, 999999) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, _, err := lead.n.Propose(context.Background(), &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{id}})
			switch {
			case err != nil:
				errs <- err
			case id == 999999 && (len(r.Missing) != 1 || r.Missing[0] != id):
				errs <- fmt.Errorf("unknown session %d: missing %v", id, r.Missing)
			case id != 999999 && len(r.Missing) != 0:
				errs <- fmt.Errorf("session %d: missing %v", id, r.Missing)
			}
		}()
	}
	// The keep-alives reach the loop while it is busy (here with a read
	// that waits for them, not with a WAL write that may or may not last
	// long enough), as under load: those it finds waiting go in one entry.
	held := make(chan struct{})
	readDone := make(chan error, 1)
	go func() {
		readDone <- lead.n.Read(context.Background(), true, func(*lock.Machine) {
			close(held)
			// (Not the test's goroutine: a timeout shows below, as
			// keep-alives that were not batched.)
			await.Within(10*time.Second, func() bool { return len(lead.n.propC) == sessions+1 })
		})
	}()
	<-held
	close(start)
	wg.Wait()
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries := appliedNow() - before
	if entries == 0 || entries >= sessions {
		t.Fatalf("%d keep-alives took %d entries, want them batched", sessions+1, entries)
	}
	t.Logf("%d keep-alives in %d entries", sessions+1, entries)
}

func TestLeaderExpiresSessionsOnItsClock(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	a, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(5 * time.Second)})
	b, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(5 * time.Second)})
	g, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "m"})
	q, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: b.Session, Name: "m", Wait: true})
	if g.Code != lock.CodeOK || q.Code != lock.CodeQueued {
		t.Fatalf("acquire: %+v, %+v", g, q)
	}
	events, cancel := lead.n.Subscribe(64)
	defer cancel()
	c.clock.Advance(3 * time.Second)
	c.mustPropose(lead, &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{b.Session}})
	c.clock.Advance(3 * time.Second) // a is past its deadline, b is not
	var granted lock.Event
	c.tickUntil("a expires and b is granted", 500, func() bool {
		for {
			select {
			case ev := <-events:
				if ev.Type == lock.EventLockGranted && ev.Session == b.Session {
					granted = ev
					return true
				}
			default:
				return false
			}
		}
	})
	if granted.Token <= g.Token || granted.Token != granted.Revision {
		t.Fatalf("grant after expiry: %+v, want token = its revision > %d", granted, g.Token)
	}
	var ok bool
	_ = lead.n.Read(context.Background(), true, func(m *lock.Machine) { _, ok = m.Session(a.Session) })
	if ok {
		t.Fatal("expired session still exists")
	}
}

// TestLeaderStampsIgnoreWallClockSteps: while a node leads, its stamps
// advance with its monotonic clock, so a step of its wall clock (an NTP
// correction, a VM resumed) neither expires sessions early (forward) nor
// keeps them past their TTL (backward).
func TestLeaderStampsIgnoreWallClockSteps(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	s, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(5 * time.Second)})
	events, cancel := lead.n.Subscribe(256)
	defer cancel()
	clockOf := func() int64 {
		var clk int64
		if err := lead.n.Read(context.Background(), true, func(m *lock.Machine) { clk = m.Clock() }); err != nil {
			t.Fatal(err)
		}
		return clk
	}
	before := clockOf()

	c.clock.Step(time.Hour)
	c.clock.Advance(time.Second)
	c.ticks(30)
	c.mustPropose(lead, &lock.Command{Op: lock.OpTick})
	if got := clockOf(); got-before > int64(2*time.Second) {
		t.Fatalf("the leader stamped %v after a wall clock step of 1h and 1s of time", time.Duration(got-before))
	}
	for {
		select {
		case ev := <-events:
			if ev.Type == lock.EventSessionExpired {
				t.Fatalf("session %d expired after 1s of its 5s TTL: the leader followed its wall clock's step", ev.Session)
			}
			continue
		default:
		}
		break
	}

	c.clock.Step(-2 * time.Hour)
	c.clock.Advance(5 * time.Second)
	c.tickUntil("the session expires 5s after it was opened", 500, func() bool {
		for {
			select {
			case ev := <-events:
				if ev.Type == lock.EventSessionExpired && ev.Session == s.Session {
					return true
				}
			default:
				return false
			}
		}
	})
}

func TestLeaderClock(t *testing.T) {
	var c leaderClock
	wall := time.Unix(1000, 0)
	c.start(int64(500*time.Second), wall, 7*time.Second)
	if got := c.at(7 * time.Second); got != wall.UnixNano() {
		t.Fatalf("stamp at the anchor: %d, want the wall clock %d (later than the state's)", got, wall.UnixNano())
	}
	if got := c.at(9 * time.Second); got != wall.UnixNano()+int64(2*time.Second) {
		t.Fatalf("stamp 2s later: %d", got)
	}
	c.start(int64(2000*time.Second), wall, 0)
	if got := c.at(time.Second); got != int64(2001*time.Second) {
		t.Fatalf("stamp anchored at the state's clock (later than the wall): %d", got)
	}
	if got := c.at(-time.Second); got != int64(2000*time.Second) {
		t.Fatalf("stamp before the anchor: %d, want the anchor", got)
	}
}

func TestNewLeaderExtendsSessions(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	old := c.leader()
	s, _ := c.mustPropose(old, &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second)})
	c.converged()
	// The leader dies; the election takes long enough that the session's
	// deadline passes on the wall clock before anyone can renew it.
	c.stop(old.n.ID())
	c.clock.Advance(15 * time.Second)
	var lead *testNode
	c.tickUntil("a new leader", 1000, func() bool {
		for _, tn := range c.nodes {
			if st := tn.n.Status(); st.IsLeader && st.Ready {
				lead = tn
				return true
			}
		}
		return false
	})
	// Give the new leader many ticks in which it could expire the session.
	c.ticks(50)
	var info lock.SessionInfo
	var ok bool
	_ = lead.n.Read(context.Background(), true, func(m *lock.Machine) { info, ok = m.Session(s.Session) })
	if !ok {
		t.Fatal("a leader change cost the session its lease")
	}
	if r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{s.Session}}); len(r.Missing) != 0 {
		t.Fatalf("keep-alive after failover: %+v", r)
	}
	if info.Deadline <= c.clock.Now().UnixNano() {
		t.Fatalf("session deadline %d not extended past the clock %d", info.Deadline, c.clock.Now().UnixNano())
	}
	c.start(old.n.ID())
	c.converged()
}

func TestCommitsThroughLossyDelayedNetwork(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	s, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	c.nw.SetDropRate(0.2)
	c.nw.SetDelay(time.Millisecond)
	var last uint64
	for i := 0; i < 10; i++ {
		// Leadership may move while messages are lost: find the leader
		// again and retry. A retry is safe and answers the original grant
		// if the first attempt happened.
		var r lock.Result
		var idx uint64
		var err error
		for attempt := 0; attempt < 10; attempt++ {
			lead = c.leader()
			r, idx, err = c.propose(lead, &lock.Command{Op: lock.OpAcquire, Session: s.Session, Name: fmt.Sprintf("k%d", i)})
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("acquire k%d: %v after 10 attempts", i, err)
		}
		if r.Code != lock.CodeOK || r.Token <= last || r.Token > idx {
			t.Fatalf("acquire k%d: %+v at %d after token %d", i, r, idx, last)
		}
		last = r.Token
	}
	c.nw.Heal()
	c.converged()
}

// With auth on, keep-alives of different principals gathered in one loop
// iteration go in one entry per principal: each is checked against its
// own sessions, and none is refused for another's.
func TestKeepAlivesBatchedPerPrincipal(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	lead := c.leader()
	hash := strings.Repeat("h", lock.TokenHashLen)
	c.mustPropose(lead, &lock.Command{Op: lock.OpAuthBootstrap, Hash: hash})
	c.mustPropose(lead, &lock.Command{Op: lock.OpAuthPutUser, Name: "alice", Principal: lock.RootUser})
	c.mustPropose(lead, &lock.Command{Op: lock.OpAuthPutUser, Name: "bob", Principal: lock.RootUser})
	if !lead.n.Auth().Enabled() {
		t.Fatal("the node does not publish the applied auth state")
	}
	const each = 20
	owners := map[uint64]string{}
	for i := 0; i < 2*each; i++ {
		p := []string{"alice", "bob"}[i%2]
		r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute), Principal: p})
		owners[r.Session] = p
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	start := make(chan struct{})
	for id, p := range owners {
		wg.Go(func() {
			<-start
			r, _, err := lead.n.Propose(context.Background(), &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{id}, Principal: p})
			switch {
			case err != nil:
				errs <- err
			case r.Code != lock.CodeOK:
				errs <- fmt.Errorf("%s's keep-alive of %d: %v %s", p, id, r.Code, r.Reason)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A keep-alive of another's session is refused for its sender only.
	var alices, bobs uint64
	for id, p := range owners {
		if p == "alice" {
			alices = id
		} else {
			bobs = id
		}
	}
	if r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{alices, bobs}, Principal: "alice"}); r.Code != lock.CodePermissionDenied {
		t.Fatalf("alice renews bob's session: %v", r.Code)
	}
}

// A member whose disk fills raises the nospace alarm through the log:
// every node reports it and refuses what would grow the state, and the
// member clears it once space is back.
func TestNoSpaceAlarmRaisedAndCleared(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 40)
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.MinFreeDiskBytes = 1 << 20
		if cfg.ID == 2 {
			cfg.DiskFree = func(string) (uint64, error) { return free.Load(), nil }
		} else {
			cfg.DiskFree = func(string) (uint64, error) { return 1 << 40, nil }
		}
	})
	lead := c.leader()
	s, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	free.Store(100 << 10)
	all := func(raised bool) func() bool {
		return func() bool {
			for _, tn := range c.nodes {
				if (len(tn.n.Status().Alarms) == 1) != raised {
					return false
				}
			}
			return true
		}
	}
	c.tickUntil("every node reports member 2's alarm", 200, all(true))
	for _, tn := range c.nodes {
		if got := tn.n.Status().Alarms[0]; got != (lock.Alarm{Member: 2, Kind: lock.AlarmNoSpace}) {
			t.Fatalf("node %d reports %+v", tn.n.ID(), got)
		}
	}
	if r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: s.Session, Name: "x"}); r.Code != lock.CodeNoSpace {
		t.Fatalf("acquire under the alarm: %v", r.Code)
	}
	free.Store(1 << 30) // above twice the minimum: cleared
	c.tickUntil("the alarm cleared everywhere", 200, all(false))
	if r, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: s.Session, Name: "x"}); r.Code != lock.CodeOK {
		t.Fatalf("acquire after the alarm: %v", r.Code)
	}
}

// The leader's status shows each member's progress: a stopped follower
// becomes unreachable and falls behind; restarted, it catches up.
func TestLeaderReportsMemberProgress(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader()
	var down uint64
	for id := range c.nodes {
		if id != lead.n.ID() {
			down = id
			break
		}
	}
	progress := func(id uint64) *MemberProgress {
		for _, m := range lead.n.Status().Members {
			if m.ID == id {
				return m.Progress
			}
		}
		return nil
	}
	c.tickUntil("the leader reports every member's progress", 100, func() bool {
		for id := range c.nodes {
			if p := progress(id); p == nil || !p.Reachable {
				return false
			}
		}
		return true
	})
	if c.follower().n.Status().Members[0].Progress != nil {
		t.Fatal("a follower reports progress")
	}
	c.stop(down)
	for i := 0; i < 5; i++ {
		c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	}
	c.tickUntil("the stopped member is unreachable and behind", 200, func() bool {
		p := progress(down)
		return p != nil && !p.Reachable && p.Behind >= 5
	})
	if p := progress(lead.n.ID()); p == nil || !p.Reachable || p.Behind != 0 {
		t.Fatalf("the leader's own progress: %+v", p)
	}
	c.start(down)
	c.tickUntil("the restarted member catches up", 300, func() bool {
		p := progress(down)
		return p != nil && p.Reachable && p.Behind == 0
	})
}
