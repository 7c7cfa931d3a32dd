package raftnode

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// TestAnswerBeatsCancel: an answer that arrived before the caller looked
// is returned, even when its context has ended and the node has stopped
// too; only a missing answer is ErrOutcomeUnknown. Callers rely on it:
// "unknown" makes them read back or retry a command that took effect.
// Every select case is ready when awaitAnswer (the wait of Propose,
// ProposeAll and ChangeMembership) begins, 200 times; a select that
// picks at random among them fails with probability 1-3^-200.
func TestAnswerBeatsCancel(t *testing.T) {
	for i := range 200 {
		n := &Node{doneC: make(chan struct{})}
		close(n.doneC)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p := &proposal{cmd: &lock.Command{Op: lock.OpRelease}, resC: make(chan proposalResult, 1)}
		p.resC <- proposalResult{res: lock.Result{Code: lock.CodeOK}, index: uint64(i + 1)}
		if r := n.awaitAnswer(ctx, p); r.err != nil || r.index != uint64(i+1) {
			t.Fatalf("round %d: awaitAnswer = %+v; want the answer that arrived (index %d)", i, r, i+1)
		}
		if r := n.awaitAnswer(ctx, p); !errors.Is(r.err, ErrOutcomeUnknown) {
			t.Fatalf("round %d: without an answer, awaitAnswer = %+v; want ErrOutcomeUnknown", i, r)
		}
	}
}

// TestDrainCountsCommands: an iteration takes at most maxDrain commands
// (plus the rest of the input that crosses it), however they are packed
// into ProposeAll inputs, so that one Ready's WAL write stays bounded. Ten
// batches of api.MaxBatchOps wait; the iteration takes five of them (5,000
// commands; counted per input it would take all ten), and every command
// it took is answered.
func TestDrainCountsCommands(t *testing.T) {
	n := loopLeader(t)
	batch := func() []*proposal {
		ps := make([]*proposal, api.MaxBatchOps)
		for i := range ps {
			ps[i] = &proposal{cmd: &lock.Command{Op: lock.OpRelease, Name: "x", Session: 1, Token: 1}, resC: make(chan proposalResult, 1)}
		}
		return ps
	}
	var taken [][]*proposal
	first := batch()
	taken = append(taken, first)
	next := func() (input, bool) {
		if len(taken) == 10 {
			return input{}, false
		}
		ps := batch()
		taken = append(taken, ps)
		return input{props: ps}, true
	}
	if err := n.iterate(input{props: first}, next); err != nil {
		t.Fatal(err)
	}
	if want := (maxDrain + api.MaxBatchOps - 1) / api.MaxBatchOps; len(taken) != want {
		t.Fatalf("one iteration took %d batches of %d, want %d", len(taken), api.MaxBatchOps, want)
	}
	for i, ps := range taken {
		for _, p := range ps {
			answered(t, fmt.Sprintf("batch %d", i), p)
		}
	}
}
