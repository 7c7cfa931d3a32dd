package raftnode

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Commit news.
//
// When a leader's commit index moves, raft sends every follower that has
// the whole log an empty MsgApp whose only news is the new commit index
// (bcastAppend). Under a lock hand-off, every entry is a Raft round of its
// own, and these messages double the round's traffic: two more messages
// out of the leader, two more answers back, and on each follower a read, a
// WAL write of its hard state and a write of the answer, none of them on
// the path of any client.
//
// So the leader holds such a message back (holdCommitNews), at most one
// per follower, the newest. Any later message to that follower that
// carries the commit index (a MsgApp with entries, a heartbeat) replaces
// it, and it is dropped; otherwise it goes out when the loop's short timer
// fires (JoinDeferral in Run) or at the next tick (the simulation's bound),
// unless that tick's heartbeat replaces it. A leader that steps down drops
// what it holds. Raft tolerates the
// loss and delay of any message; this one carries no entries and asks for
// nothing. Followers learn a commit index at most JoinDeferral later when
// the cluster is otherwise idle; a linearizable read at a follower does not
// wait for it (ReadIndex's heartbeat round carries the commit index).

// progressFunc tells a follower's acknowledged index and replication
// state, as the leader's raft knows them (ok false: no such member).
type progressFunc func(id uint64) (match uint64, state tracker.StateType, ok bool)

// isCommitNews reports whether m is an empty MsgApp to a follower that
// has acknowledged the whole log up to m's previous index, in the
// replicate state: a message whose only news is the commit index.
func isCommitNews(m *raftpb.Message, progress progressFunc) bool {
	if m.GetType() != raftpb.MsgApp || len(m.GetEntries()) > 0 {
		return false
	}
	match, state, ok := progress(m.GetTo())
	return ok && state == tracker.StateReplicate && match == m.GetIndex()
}

// carriesCommit reports whether m tells its receiver the leader's commit
// index (as far as the receiver's log goes), as commit news does.
func carriesCommit(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MsgApp || m.GetType() == raftpb.MsgHeartbeat
}

// raftProgress is the progressFunc of this node's raft, read once per
// call of the returned function's first use. Loop only.
func (n *Node) raftProgress() progressFunc {
	var pr map[uint64]tracker.Progress
	return func(id uint64) (uint64, tracker.StateType, bool) {
		if pr == nil {
			pr = map[uint64]tracker.Progress{}
			n.rn.WithProgress(func(id uint64, _ raft.ProgressType, p tracker.Progress) { pr[id] = p })
		}
		p, ok := pr[id]
		return p.Match, p.State, ok
	}
}

// holdCommitNews takes the commit news out of a leader's messages and
// keeps it in n.heldCommits, newest per follower; a held message to a
// follower that msgs also reach with the commit index is dropped. It
// returns the messages to send (msgs itself when it took nothing). Loop
// only; a leader's messages only.
func (n *Node) holdCommitNews(msgs []*raftpb.Message, progress progressFunc) []*raftpb.Message {
	var keep []*raftpb.Message
	changed := false
	for i, m := range msgs {
		switch {
		case isCommitNews(m, progress):
			if !changed {
				keep = append(keep, msgs[:i]...)
				changed = true
			}
			if n.heldCommits == nil {
				n.heldCommits = map[uint64]*raftpb.Message{}
			}
			n.heldCommits[m.GetTo()] = m
			continue
		case carriesCommit(m):
			delete(n.heldCommits, m.GetTo())
		}
		if changed {
			keep = append(keep, m)
		}
	}
	if !changed {
		return msgs
	}
	return keep
}

// sendCommitNews sends the commit news held back (holdCommitNews), at the
// end of an iteration in which the timer fired or the clock ticked. Loop
// only.
func (n *Node) sendCommitNews() {
	if len(n.heldCommits) == 0 {
		return
	}
	msgs := make([]*raftpb.Message, 0, len(n.heldCommits))
	for id, m := range n.heldCommits {
		msgs = append(msgs, m)
		delete(n.heldCommits, id)
	}
	if n.transport != nil {
		n.transport.Send(msgs)
	}
}
