package raftnode

import (
	"errors"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
)

// maxDrain bounds how many proposals and raft messages one iteration of the
// loop takes (see iterate and input.weight); one input is never split, so
// an iteration may take up to maxDrain-1 more.
const maxDrain = 4096

// input is one item of the loop's input: exactly one field is set. Run
// builds inputs from its channels and ticker; the simulation tests build
// them from their scheduler. Both hand them to iterate, so the simulation
// runs the product's loop, not a copy of it.
type input struct {
	tick     bool            // one tick of the clock
	msg      *raftpb.Message // a raft message from another member
	prop     *proposal       // a client command (Propose)
	props    []*proposal     // client commands that came together (ProposeAll)
	read     *readReq        // a read (Read)
	report   *report         // the transport's news about a peer
	transfer uint64          // hand leadership to this member
	snap     *snapJob        // a snapshot job whose file is written
	flush    bool            // the deferred queue joins are due (JoinDeferral)
}

// report is what a transport tells the loop about a peer: that a message to
// it was lost (ReportUnreachable), or how sending it a snapshot ended.
type report struct {
	peer     uint64
	snapshot bool // a snapshot report, with status; else unreachable
	status   raft.SnapshotStatus
}

// drains reports whether in is an input that iterate takes together with
// others of its kind: proposals, raft messages and reads, so that they
// share one Ready (one WAL write and fsync, one batch of messages per
// peer, one ReadIndex request). This is group commit for proposals, and
// for messages what raft.Node does by stepping them while its user handles
// the previous Ready: without it a follower would fsync once per MsgApp,
// i.e. once per proposal of the leader.
func (in input) drains() bool {
	return in.msg != nil || in.prop != nil || in.props != nil || in.read != nil
}

// weight is what in counts towards an iteration's maxDrain: each command
// of a ProposeAll input (up to api.MaxBatchOps), else 1. Counted per
// input, a loop draining batches would propose up to maxDrain of them,
// millions of entries, in one Ready.
func (in input) weight() int {
	return max(len(in.props), 1)
}

// start prepares the loop before its first input: it applies what the WAL
// already holds as committed and, when this node is the only voter,
// campaigns at once (it need not wait an election timeout to lead). Run and
// the simulation call it once, after newNode.
func (n *Node) start() error {
	if err := n.processReady(); err != nil {
		return err
	}
	if v := n.confState.GetVoters(); len(v) == 1 && v[0] == n.id {
		if err := n.rn.Campaign(); err != nil {
			n.log.Warn("campaign as the only voter", "err", err)
		}
		return n.processReady()
	}
	return nil
}

// iterate is one iteration of the loop. It handles in; if in drains (see
// input.drains), it also handles the inputs next returns, up to maxDrain
// commands and messages in all (input.weight), for as long as they drain
// too (next must return only inputs that drain, and false when there is
// none waiting); then it proposes what the iteration gathered and handles
// the Ready. An error is a storage failure: the node must stop.
//
// After iterate, the driver runs the snapshot job it may have started
// (takeSnapshotJob) off the loop, and hands it back as an input when its
// file is written.
func (n *Node) iterate(in input, next func() (input, bool)) error {
	if err := n.handle(in); err != nil {
		return err
	}
	if in.drains() && next != nil {
		for taken := in.weight(); taken < maxDrain; {
			more, ok := next()
			if !ok {
				break
			}
			if err := n.handle(more); err != nil {
				return err
			}
			taken += more.weight()
		}
	}
	return n.endIteration()
}

// handle handles one input.
func (n *Node) handle(in input) error {
	switch {
	case in.tick:
		n.onTick()
	case in.msg != nil:
		n.step(in.msg)
	case in.prop != nil:
		n.handleProposal(in.prop)
	case in.props != nil:
		for _, p := range in.props {
			n.handleProposal(p)
		}
	case in.read != nil:
		n.handleRead(in.read)
	case in.report != nil:
		if in.report.snapshot {
			n.rn.ReportSnapshot(in.report.peer, in.report.status)
		} else {
			n.rn.ReportUnreachable(in.report.peer)
		}
	case in.transfer != 0:
		to := in.transfer
		if to == anyVoter {
			to = n.mostCaughtUpVoter()
		}
		if to != 0 {
			n.rn.TransferLeader(to)
		}
	case in.snap != nil:
		return n.finishSnapshot(in.snap)
	case in.flush:
		n.deferDue = len(n.deferred) > 0
	}
	return nil
}

// endIteration ends an iteration: it proposes what the iteration gathered
// and handles the Ready (which sends a ReadIndex request for the reads that
// wait for one). When the entries that Ready applied let a deferred join
// be granted (deferJoin), it proposes the deferred joins at once, and
// handles the Ready again.
func (n *Node) endIteration() error {
	n.flushKeepAlives()
	n.flushProposals()
	applied := n.applied
	if err := n.processReady(); err != nil {
		return err
	}
	if len(n.deferred) > 0 && n.applied != applied && n.deferredFreed() {
		n.deferDue = true
		n.flushProposals()
		return n.processReady()
	}
	return nil
}

// onTick advances raft's clock and does the loop's periodic work: the
// leader proposes an expiry when its clock passes the earliest deadline,
// this member publishes its URLs until the state holds them, deferred
// queue joins are proposed (deferJoin), unanswered
// ReadIndex requests are sent again and abandoned reads are dropped.
func (n *Node) onTick() {
	n.rn.Tick()
	n.ticks++
	// Run's timer proposes deferred joins sooner; the simulation has
	// only ticks.
	n.deferDue = len(n.deferred) > 0
	if n.state == raft.StateLeader && n.expireReq == 0 {
		if d, ok := n.machine.NextDeadline(); ok && n.now() >= d {
			n.expireReq = n.propose(&lock.Command{Op: lock.OpExpire}, nil)
		}
	}
	n.maybePublish()
	n.maybeBootstrapAuth()
	n.maybeInitLimits()
	n.maybeCheckDisk()
	n.maybeRaiseClusterVersion()
	n.refreshProgress()
	n.tickReads()
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.log.Debug("step", "err", err, "from", m.GetFrom(), "type", m.GetType().String())
	}
}
