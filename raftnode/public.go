package raftnode

import (
	"context"
	"fmt"
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
	select {
	case r := <-p.resC:
		return r.res, r.index, r.err
	case <-ctx.Done():
		return lock.Result{}, 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-n.doneC:
		return lock.Result{}, 0, fmt.Errorf("%w (%w)", ErrOutcomeUnknown, ErrStopped)
	}
}

// Read implements Proposer. See Proposer.Read for the contract.
func (n *Node) Read(ctx context.Context, stale bool, fn func(m *lock.Machine)) error {
	r := &readReq{stale: stale, fn: fn, done: make(chan error, 1)}
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

// Status implements Proposer.
func (n *Node) Status() Status {
	st := *n.status.Load()
	select {
	case <-n.doneC:
		st.Ready = false
	default:
	}
	return st
}

// Process delivers an inbound raft message to the loop. It blocks until the
// loop takes it, ctx ends or the node stops. It implements rafthttp.Raft.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	select {
	case n.recvC <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.doneC:
		return ErrStopped
	}
}

// IsIDRemoved implements rafthttp.Raft. Members are never removed yet.
func (n *Node) IsIDRemoved(id uint64) bool { return false }

// ReportUnreachable tells raft that a message to id was lost. It never
// blocks (transports call it from the loop's own Send); it drops the report
// when the loop is busy, which only delays raft's probing.
func (n *Node) ReportUnreachable(id uint64) {
	n.report(func() { n.rn.ReportUnreachable(id) })
}

// ReportSnapshot tells raft how sending a snapshot to id ended. It never
// blocks.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.report(func() { n.rn.ReportSnapshot(id, status) })
}

func (n *Node) report(f func()) {
	select {
	case n.reportC <- f:
	default:
	}
}
