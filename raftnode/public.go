package raftnode

import (
	"context"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
)

var _ Proposer = (*Node)(nil)

// Propose implements Proposer. See Proposer.Propose for the contract.
func (n *Node) Propose(ctx context.Context, cmd *lock.Command) (lock.Result, uint64, error) {
	c := *cmd
	c.Sessions = slices.Clone(cmd.Sessions)
	p := &proposal{cmd: &c, resC: make(chan proposalResult, 1)}
	select {
	case n.propC <- p:
	case <-ctx.Done():
		return lock.Result{}, 0, ctx.Err()
	case <-n.doneC:
		return lock.Result{}, 0, ErrStopped
	}
	r := n.awaitAnswer(ctx, p)
	return r.res, r.index, r.err
}

// awaitAnswer waits for the answer to p, which the loop has taken. When
// ctx ends or the node stops, the outcome is unknown, unless the answer
// is there already: select picks at random among ready cases, and a
// caller told "unknown" about a command that did take effect must find
// out by reading, or retry it.
func (n *Node) awaitAnswer(ctx context.Context, p *proposal) proposalResult {
	var err error
	select {
	case r := <-p.resC:
		return r
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-n.doneC:
		err = fmt.Errorf("%w (%w)", ErrOutcomeUnknown, ErrStopped)
	}
	select {
	case r := <-p.resC:
		return r
	default:
		return proposalResult{err: err}
	}
}

// Outcome is the answer to one command of ProposeAll: what Propose
// would have returned for it.
type Outcome struct {
	Result lock.Result
	Index  uint64
	Err    error
}

// ProposeAll proposes every command of cmds as Propose would, and returns
// their outcomes in order once all are answered. The commands reach the
// loop together, in one input, so that they are proposed in the same
// iteration and share one Ready (one WAL write and fsync, one MsgApp per
// follower), where concurrent Propose calls reach it one by one and a
// batch would straddle the fsync of its first arrivals. Each command
// still has its own entry and its own outcome, and none depends on
// another: a command ProposeAll refuses (not leader, cluster version)
// fails alone. When ctx ends before the commands are queued for the loop,
// each outcome is ctx's error (none was proposed); after, the ones whose
// answer has not arrived are ErrOutcomeUnknown (an answer that has is
// returned, as by Propose).
func (n *Node) ProposeAll(ctx context.Context, cmds []*lock.Command) []Outcome {
	out := make([]Outcome, len(cmds))
	ps := make([]*proposal, len(cmds))
	for i, cmd := range cmds {
		c := *cmd
		c.Sessions = slices.Clone(cmd.Sessions)
		ps[i] = &proposal{cmd: &c, resC: make(chan proposalResult, 1)}
	}
	fail := func(err error) []Outcome {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	select {
	case n.propsC <- ps:
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-n.doneC:
		return fail(ErrStopped)
	}
	for i, p := range ps {
		r := n.awaitAnswer(ctx, p)
		out[i] = Outcome{Result: r.res, Index: r.index, Err: r.err}
	}
	return out
}

// Read implements Proposer. See Proposer.Read for the contract.
func (n *Node) Read(ctx context.Context, stale bool, fn func(m *lock.Machine)) error {
	r := &readReq{ctx: ctx, stale: stale, fn: fn, done: make(chan error, 1)}
	select {
	case n.readC <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrStopped
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrStopped
	}
}

// Auth implements Proposer.
func (n *Node) Auth() *lock.AuthView {
	if v := n.auth.Load(); v != nil {
		return v
	}
	return lock.New().Auth()
}

// Status implements Proposer.
func (n *Node) Status() Status {
	st := *n.status.Load()
	select {
	case <-n.doneC:
		st.Ready = false
	default:
	}
	st.ReadIndexRounds, st.ReadIndexRetries = n.readRounds.Load(), n.readRetries.Load()
	st.DroppedPeerMessages = n.droppedPeerMessages()
	return st
}

// Await implements Proposer. See Proposer.Await for the contract.
func (n *Node) Await(p lock.Place) (<-chan struct{}, func() (lock.PlaceState, bool), func()) {
	return n.awaits.add(p)
}

// TransferLeadership asks raft to hand leadership to member to (raft's
// leader transfer: the target is brought up to date, then told to campaign
// at once), or, when to is 0, to the voter other than this node whose log
// matches the leader's furthest. It returns when the loop has taken the
// request, not when the transfer is done: watch Status().Leader. A node
// that does not lead ignores it. Errors: ErrStopped, ctx's error.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	if to == 0 {
		to = anyVoter
	}
	select {
	case n.transferC <- to:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrStopped
	}
}

// Process delivers an inbound raft message to the loop. It blocks until the
// loop takes it, ctx ends or the node stops. It implements rafthttp.Raft.
//
// Only members speak Raft, whatever the transport said: a message whose
// From is not a member other than this node, or whose To is not this node,
// is dropped and counted (Status.DroppedPeerMessages), and Process returns
// nil (rafthttp would tear down the connection on an error).
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	if !n.acceptInbound(m) {
		return nil
	}
	select {
	case n.recvC <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrStopped
	}
}

// IsIDRemoved implements rafthttp.Raft: whether id was removed from the
// cluster (rafthttp then answers its requests 410 Gone, which stops it).
func (n *Node) IsIDRemoved(id uint64) bool {
	_, found := slices.BinarySearch(n.memberSet.Load().removed, id)
	return found
}

// ReportUnreachable tells raft that a message to id was lost. It never
// blocks (transports call it from the loop's own Send); it drops the report
// when the loop is busy, which only delays raft's probing.
func (n *Node) ReportUnreachable(id uint64) {
	n.report(report{peer: id})
}

// ReportSnapshot tells raft how sending a snapshot to id ended. It never
// blocks.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.report(report{peer: id, snapshot: true, status: status})
}

func (n *Node) report(r report) {
	select {
	case n.reportC <- r:
	default:
	}
}

// anyVoter asks the loop for the most caught-up voter (TransferLeadership
// with to 0).
const anyVoter = math.MaxUint64

// mostCaughtUpVoter returns the voter other than this node with the
// highest match index (the lowest ID among equals), or 0 when this node
// does not lead or has no other voter. Loop only.
func (n *Node) mostCaughtUpVoter() uint64 {
	st := n.rn.Status()
	var best, bestMatch uint64
	for id, pr := range st.Progress {
		if id == n.id || pr.IsLearner {
			continue
		}
		if best == 0 || pr.Match > bestMatch || (pr.Match == bestMatch && id < best) {
			best, bestMatch = id, pr.Match
		}
	}
	return best
}
