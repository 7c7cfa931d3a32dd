package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
)

// loopLeader returns an idle single-voter node that leads, driven by the
// test itself (no Run): the test is its loop goroutine.
func loopLeader(t *testing.T) *Node {
	t.Helper()
	n := idleNode(t)
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	if n.state != raft.StateLeader {
		t.Fatalf("single voter is %v, want leader", n.state)
	}
	return n
}

// offer hands cmd to n's loop as one iteration and returns its proposal.
func offer(t *testing.T, n *Node, cmd *lock.Command) *proposal {
	t.Helper()
	p := &proposal{cmd: cmd, resC: make(chan proposalResult, 1)}
	if err := n.iterate(input{prop: p}, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

// answered returns p's answer, failing when there is none yet.
func answered(t *testing.T, what string, p *proposal) proposalResult {
	t.Helper()
	select {
	case r := <-p.resC:
		return r
	default:
		t.Fatalf("%s: no answer", what)
		return proposalResult{}
	}
}

// unanswered fails when p has an answer.
func unanswered(t *testing.T, what string, p *proposal) {
	t.Helper()
	select {
	case r := <-p.resC:
		t.Fatalf("%s: answered %+v, want no answer yet", what, r)
	default:
	}
}

func openSession(t *testing.T, n *Node) uint64 {
	t.Helper()
	r := answered(t, "open session", offer(t, n, &lock.Command{Op: lock.OpOpenSession, TTL: lock.MaxTTL}))
	if r.err != nil || r.res.Code != lock.CodeOK {
		t.Fatalf("open session: %+v", r)
	}
	return r.res.Session
}

// TestQueueJoinRidesWithTheRelease: a join of a held lock's queue is not
// proposed alone; the holder's release takes it along, ahead of itself, in
// one Ready (one WAL write), and the joiner is then granted by the
// release.
func TestQueueJoinRidesWithTheRelease(t *testing.T) {
	n := loopLeader(t)
	a, b := openSession(t, n), openSession(t, n)
	ra := answered(t, "a acquires", offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: a, Name: "x"}))
	if ra.res.Code != lock.CodeOK {
		t.Fatalf("a acquires: %+v", ra)
	}
	before := lastIndex(n)
	join := offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: b, Name: "x", Wait: true})
	unanswered(t, "b's join", join)
	if got := lastIndex(n); got != before {
		t.Fatalf("the log grew from %d to %d on a lone join, want it held back", before, got)
	}
	rel := offer(t, n, &lock.Command{Op: lock.OpRelease, Session: a, Name: "x", Token: ra.res.Token})
	rj, rr := answered(t, "b's join", join), answered(t, "a's release", rel)
	if rj.err != nil || rj.res.Code != lock.CodeQueued || rr.err != nil || rr.res.Code != lock.CodeOK {
		t.Fatalf("join %+v, release %+v: want queued, then released", rj, rr)
	}
	if rj.index != before+1 || rr.index != before+2 {
		t.Fatalf("join at %d, release at %d, want %d and %d (the join first, in one batch)", rj.index, rr.index, before+1, before+2)
	}
	if h, ok := n.machine.Lock("x"); !ok || h.Holder == nil || h.Holder.Session != b || h.Holder.Token != rr.index {
		t.Fatalf("lock x after the release: %+v, want held by b with token %d", h, rr.index)
	}
}

// TestDeferredJoinGoesOnATick: a join nothing takes along is proposed at
// the next tick (the simulation's bound; Run's timer is sooner).
func TestDeferredJoinGoesOnATick(t *testing.T) {
	n := loopLeader(t)
	a, b := openSession(t, n), openSession(t, n)
	answered(t, "a acquires", offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: a, Name: "x"}))
	join := offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: b, Name: "x", Wait: true})
	unanswered(t, "b's join", join)
	if err := n.iterate(input{tick: true}, nil); err != nil {
		t.Fatal(err)
	}
	if r := answered(t, "b's join after a tick", join); r.err != nil || r.res.Code != lock.CodeQueued {
		t.Fatalf("b's join after a tick: %+v, want queued", r)
	}
}

// TestDeferredJoinGoesWhenItsLockIsFreed: when an entry that did not take
// the deferred join along frees its lock (here a release the loop proposes
// by itself, as a new leader commits an old term's), the join is proposed
// at once and granted.
func TestDeferredJoinGoesWhenItsLockIsFreed(t *testing.T) {
	n := loopLeader(t)
	a, b := openSession(t, n), openSession(t, n)
	ra := answered(t, "a acquires", offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: a, Name: "x"}))
	join := offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: b, Name: "x", Wait: true})
	unanswered(t, "b's join", join)
	n.propose(&lock.Command{Op: lock.OpRelease, Session: a, Name: "x", Token: ra.res.Token}, nil)
	if err := n.endIteration(); err != nil {
		t.Fatal(err)
	}
	r := answered(t, "b's join", join)
	if r.err != nil || r.res.Code != lock.CodeOK || r.res.Token != r.index {
		t.Fatalf("b's join after the release: %+v, want granted with its own index as token", r)
	}
}

// TestDeferredJoinFailsWhenLeadershipEnds: a deferred join was never
// proposed, so a leader that steps down tells its caller the request did
// not take effect (not leader, not outcome unknown).
func TestDeferredJoinFailsWhenLeadershipEnds(t *testing.T) {
	n := loopLeader(t)
	a, b := openSession(t, n), openSession(t, n)
	answered(t, "a acquires", offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: a, Name: "x"}))
	before := lastIndex(n)
	join := offer(t, n, &lock.Command{Op: lock.OpAcquire, Session: b, Name: "x", Wait: true})
	n.onSoftState(&raft.SoftState{Lead: 2, RaftState: raft.StateFollower})
	r := answered(t, "b's join", join)
	var nl *NotLeaderError
	if !errors.As(r.err, &nl) || nl.LeaderID != 2 || errors.Is(r.err, ErrOutcomeUnknown) {
		t.Fatalf("b's join: %v, want a NotLeaderError naming 2", r.err)
	}
	if got := lastIndex(n); got != before || len(n.deferred) != 0 {
		t.Fatalf("log %d → %d, %d deferred: want nothing proposed nor kept", before, got, len(n.deferred))
	}
}

// TestRunProposesDeferredJoinsWithoutTicks: Run's timer proposes a lone
// join within JoinDeferral, on a node whose clock never ticks.
func TestRunProposesDeferredJoinsWithoutTicks(t *testing.T) {
	n := idleNode(t)
	pctx, pcancel := context.WithTimeout(runLeader(t, n), 10*time.Second)
	defer pcancel()
	var ids [2]uint64
	for i := range ids {
		res, _, err := n.Propose(pctx, &lock.Command{Op: lock.OpOpenSession, TTL: lock.MaxTTL})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.Session
	}
	if res, _, err := n.Propose(pctx, &lock.Command{Op: lock.OpAcquire, Session: ids[0], Name: "x"}); err != nil || res.Code != lock.CodeOK {
		t.Fatalf("acquire: %v %v", res.Code, err)
	}
	res, _, err := n.Propose(pctx, &lock.Command{Op: lock.OpAcquire, Session: ids[1], Name: "x", Wait: true})
	if err != nil || res.Code != lock.CodeQueued {
		t.Fatalf("join: %v %v, want queued", res.Code, err)
	}
}

// savingDurable counts the saves that carry entries.
type savingDurable struct {
	memDurable
	saves *atomic.Int64
}

func (d savingDurable) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if len(ents) > 0 {
		d.saves.Add(1)
	}
	return nil
}

// TestProposeAllSharesOneSave: the commands of one ProposeAll are
// proposed in one iteration (one WAL save of entries), each with its own
// entry and outcome, in order; one command's refusal does not touch the
// others.
func TestProposeAllSharesOneSave(t *testing.T) {
	n := idleNode(t)
	var saves atomic.Int64
	n.wal = savingDurable{saves: &saves}
	pctx, pcancel := context.WithTimeout(runLeader(t, n), 10*time.Second)
	defer pcancel()
	res, _, err := n.Propose(pctx, &lock.Command{Op: lock.OpOpenSession, TTL: lock.MaxTTL})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Session
	const k = 50
	cmds := make([]*lock.Command, k)
	for i := range cmds {
		cmds[i] = &lock.Command{Op: lock.OpAcquire, Session: s, Name: fmt.Sprintf("l%02d", i)}
	}
	cmds[7] = &lock.Command{Op: lock.OpRelease, Session: s, Name: "free", Token: 1}
	before := saves.Load()
	out := n.ProposeAll(pctx, cmds)
	if got := saves.Load() - before; got != 1 {
		t.Errorf("%d WAL saves of entries for one ProposeAll, want 1", got)
	}
	for i, o := range out {
		switch {
		case o.Err != nil:
			t.Fatalf("command %d: %v", i, o.Err)
		case i == 7 && o.Result.Code != lock.CodeNotHolder:
			t.Errorf("command 7 (a release of a free lock): %v, want not holder", o.Result.Code)
		case i != 7 && (o.Result.Code != lock.CodeOK || o.Result.Token != o.Index):
			t.Errorf("command %d: %v token %d at %d, want granted with its own index", i, o.Result.Code, o.Result.Token, o.Index)
		case i > 0 && o.Index != out[i-1].Index+1:
			t.Errorf("command %d at index %d, after %d: want consecutive entries in order", i, o.Index, out[i-1].Index)
		}
	}
}
