package raftnode

import (
	"context"
	"encoding/binary"

	"go.etcd.io/raft/v3"

	"github.com/raftlock/raftlock/lock"
)

// Linearizable reads use raft's ReadIndex, shared as etcd's
// linearizableReadLoop shares it: the reads that arrive while no ReadIndex
// request is in flight wait in a queue; one request is then sent for all of
// them, and they are all served once the node has applied the index it
// answers. A read that arrives while a request is in flight waits for the
// next one (the one in flight may have been sent before the read arrived,
// and then does not prove that its answer is current).
//
// A request without an answer after readRetryTicks ticks (lost on the
// network, or sent to a leader that has since stepped down) is sent again
// with the reads queued since, under a new key; a late answer to the old
// key is ignored. A change of leader sends it again at once. A read whose
// context ended is dropped at the next tick: no pending read outlives its
// request by more than one tick.

// readReq is one read on its way to the loop (Read).
type readReq struct {
	ctx   context.Context // nil: the read is never abandoned
	stale bool
	fn    func(*lock.Machine)
	done  chan error // buffered 1
}

// abandoned reports whether the caller has stopped waiting.
func (r *readReq) abandoned() bool { return r.ctx != nil && r.ctx.Err() != nil }

// readState is the loop's reads on their way to being served.
type readState struct {
	queued []*readReq  // waiting for the next ReadIndex request
	round  *readRound  // the request in flight; nil when none
	ready  []readBatch // answered: served once applied reaches their index
	seq    uint64
}

// readRound is a ReadIndex request in flight and the reads it serves.
type readRound struct {
	key    string
	reads  []*readReq
	sentAt uint64 // n.ticks when sent
}

// readBatch is the reads of an answered round.
type readBatch struct {
	index uint64
	reads []*readReq
}

// readRetryTicks is how long a ReadIndex request may go unanswered before
// it is sent again: half an election timeout (etcd waits 500ms), at least
// two heartbeats.
func (n *Node) readRetryTicks() uint64 {
	return uint64(max(n.cfg.ElectionTicks/2, 2*n.cfg.HeartbeatTicks))
}

// handleRead takes a read: a stale one is served at once from the local
// state; a linearizable one waits for the next ReadIndex request, unless no
// leader is known (ErrNoLeader).
func (n *Node) handleRead(r *readReq) {
	if mutated(followerReadWithoutReadIndex) {
		r.stale = true
	}
	switch {
	case r.abandoned():
		r.done <- r.ctx.Err()
	case r.stale:
		r.fn(n.machine)
		r.done <- nil
	case n.lead == 0:
		r.done <- ErrNoLeader
	default:
		n.reads.queued = append(n.reads.queued, r)
	}
}

// sendReadIndex sends one ReadIndex request for every queued read, unless
// one is in flight or no leader is known.
func (n *Node) sendReadIndex() {
	rs := &n.reads
	if rs.round != nil || len(rs.queued) == 0 || n.lead == 0 {
		return
	}
	rs.seq++
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, rs.seq)
	rs.round = &readRound{key: string(key), reads: rs.queued, sentAt: n.ticks}
	rs.queued = nil
	n.readRounds.Add(1)
	n.rn.ReadIndex(key)
}

// readStatesArrived takes raft's answers to ReadIndex requests.
func (n *Node) readStatesArrived(states []raft.ReadState) {
	rs := &n.reads
	for _, st := range states {
		if rs.round != nil && string(st.RequestCtx) == rs.round.key {
			rs.ready = append(rs.ready, readBatch{index: st.Index, reads: rs.round.reads})
			rs.round = nil
		}
	}
}

// serveReads serves the answered reads whose index is applied.
func (n *Node) serveReads() {
	rs := &n.reads
	kept := rs.ready[:0]
	for _, b := range rs.ready {
		if b.index > n.applied {
			kept = append(kept, b)
			continue
		}
		for _, r := range b.reads {
			if r.abandoned() {
				r.done <- r.ctx.Err()
				continue
			}
			r.fn(n.machine)
			r.done <- nil
		}
	}
	clear(rs.ready[len(kept):])
	rs.ready = kept
}

// tickReads drops abandoned reads and sends a ReadIndex request again when
// it went unanswered for readRetryTicks.
func (n *Node) tickReads() {
	rs := &n.reads
	rs.queued = dropAbandoned(rs.queued)
	for i := range rs.ready {
		rs.ready[i].reads = dropAbandoned(rs.ready[i].reads)
	}
	if rs.round == nil {
		return
	}
	rs.round.reads = dropAbandoned(rs.round.reads)
	switch {
	case len(rs.round.reads) == 0:
		rs.round = nil
	case n.ticks-rs.round.sentAt >= n.readRetryTicks():
		n.retryReadIndex()
	}
}

// retryReadIndex puts the reads of the request in flight back in front of
// the queue, so that the next sendReadIndex asks again for all of them.
func (n *Node) retryReadIndex() {
	rs := &n.reads
	if rs.round == nil {
		return
	}
	rs.queued = append(rs.round.reads, rs.queued...)
	rs.round = nil
	n.readRetries.Add(1)
}

// readsLeaderChanged sends the request in flight again: the old leader will
// not answer it. With no leader known the reads wait for one (or for their
// context).
func (n *Node) readsLeaderChanged() { n.retryReadIndex() }

// failReads answers every pending read with err.
func (n *Node) failReads(err error) {
	rs := &n.reads
	fail := func(reads []*readReq) {
		for _, r := range reads {
			r.done <- err
		}
	}
	fail(rs.queued)
	if rs.round != nil {
		fail(rs.round.reads)
	}
	for _, b := range rs.ready {
		fail(b.reads)
	}
	*rs = readState{seq: rs.seq}
}

func dropAbandoned(reads []*readReq) []*readReq {
	kept := reads[:0]
	for _, r := range reads {
		if r.abandoned() {
			r.done <- r.ctx.Err()
			continue
		}
		kept = append(kept, r)
	}
	clear(reads[len(kept):])
	return kept
}
