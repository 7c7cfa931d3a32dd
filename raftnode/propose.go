package raftnode

import (
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
)

// proposal is a client command on its way to the loop (Propose).
type proposal struct {
	cmd  *lock.Command
	resC chan proposalResult // buffered 1
}

type proposalResult struct {
	res   lock.Result
	index uint64
	err   error
}

// waiter is a proposal in flight, matched by request ID when its entry is
// applied (etcd's pkg/wait). A keep-alive batch answers several callers.
type waiter struct {
	single *proposal
	batch  []*proposal
}

func (w *waiter) answer(res lock.Result, index uint64) {
	if w.single != nil {
		w.single.resC <- proposalResult{res: res, index: index}
		return
	}
	for _, p := range w.batch {
		r := lock.Result{Code: res.Code, Reason: res.Reason}
		for _, id := range p.cmd.Sessions {
			if _, found := slices.BinarySearch(res.Missing, id); found {
				r.Missing = append(r.Missing, id)
			}
		}
		p.resC <- proposalResult{res: r, index: index}
	}
}

func (w *waiter) fail(err error) {
	if w.single != nil {
		w.single.resC <- proposalResult{err: err}
		return
	}
	for _, p := range w.batch {
		p.resC <- proposalResult{err: err}
	}
}

// failAll answers every caller still waiting on the loop with err.
func (n *Node) failAll(err error) {
	for req, w := range n.waiters {
		delete(n.waiters, req)
		w.fail(fmt.Errorf("%w (%w)", ErrOutcomeUnknown, err))
		n.metrics.failed.Add(1)
	}
	for _, p := range n.kaBatch {
		p.resC <- proposalResult{err: err}
	}
	n.kaBatch = nil
	n.failDeferred(err)
	n.failReads(err)
}

// handleProposal takes a client command: a leader gathers it for
// flushProposals (keep-alives for flushKeepAlives); a follower refuses it
// with ErrNotLeader (the HTTP layer forwards the request).
func (n *Node) handleProposal(p *proposal) {
	if n.state != raft.StateLeader {
		p.resC <- proposalResult{err: n.notLeader()}
		return
	}
	if p.cmd.Op == lock.OpKeepAlive {
		n.kaBatch = append(n.kaBatch, p)
		return
	}
	if isMemberOp(p.cmd.Op) {
		n.handleConfChange(p)
		return
	}
	if need, have := lock.CommandVersion(p.cmd), n.machine.ClusterVersion(); need > have {
		p.resC <- proposalResult{err: &ClusterVersionError{Need: need, Have: have}}
		return
	}
	cmd := p.cmd
	cmd.Now = n.now()
	n.reqSeq++
	pp := pendingProp{req: n.reqSeq, data: encodeEnvelope(n.id, n.reqSeq, cmd), w: &waiter{single: p}}
	if n.machine.AcquireMustWait(cmd) {
		n.deferJoin(pp)
		return
	}
	n.propBatch = append(n.propBatch, pp)
}

// JoinDeferral is the longest a leader holds back a queue join
// (deferJoin) waiting for another proposal to ride with.
const JoinDeferral = 2 * time.Millisecond

// maxDeferred bounds the joins held back at once; more are proposed at the
// end of the iteration.
const maxDeferred = 1024

// deferJoin holds back pp, an acquire that cannot be granted now (it joins
// or keeps a place in the queue of a held lock, lock.AcquireMustWait),
// until the loop proposes something else, so that both share one WAL
// write and fsync on every member. Under contention that something is
// most often the holder's release: the answer that grants the lock to the
// next waiter also tells the last holder its release went through, and
// both clients then write at once (the last holder to queue again, the new
// one to release). Proposed one after the other, the release waited for
// the join's fsync on every member, on the hand-off's critical path.
//
// The join loses nothing by waiting: nothing can grant it before an entry
// changes the lock, and every such entry is a proposal, which takes the
// deferred joins with it, ahead of itself (flushProposals). A join whose
// lock an applied entry frees goes at once (endIteration); the others go
// after JoinDeferral at most (Run's timer; the next tick in the
// simulation), or when maxDeferred wait. A deferred join is not in the
// log: if this node stops leading first, its caller is told so
// (onSoftState), and the request certainly did not take effect.
func (n *Node) deferJoin(pp pendingProp) {
	n.deferred = append(n.deferred, pp)
	if len(n.deferred) >= maxDeferred {
		n.deferDue = true
	}
}

// deferredFreed reports whether an entry applied since a join was
// deferred lets one be granted now: it must go at once.
func (n *Node) deferredFreed() bool {
	for _, pp := range n.deferred {
		if !n.machine.AcquireMustWait(pp.w.single.cmd) {
			return true
		}
	}
	return false
}

// failDeferred answers the deferred joins, none of which was proposed,
// with err.
func (n *Node) failDeferred(err error) {
	for i, pp := range n.deferred {
		pp.w.fail(err)
		n.metrics.failed.Add(1)
		n.deferred[i] = pendingProp{}
	}
	n.deferred = n.deferred[:0]
	n.deferDue = false
}

// pendingProp is a client proposal waiting for flushProposals.
type pendingProp struct {
	req  uint64
	data []byte
	w    *waiter
}

// flushProposals proposes the client commands gathered in this loop
// iteration with one MsgProp of many entries, so that raft sends one MsgApp
// per follower for all of them (RawNode.Propose would send one per
// command, and each follower would answer each). Every command is still its
// own entry, with its own index. If raft drops the message, none was
// appended, and every caller learns so.
//
// The deferred joins (deferJoin) go first, when there is another proposal
// or they are due.
func (n *Node) flushProposals() {
	if len(n.deferred) > 0 && (len(n.propBatch) > 0 || n.deferDue) {
		n.propBatch = append(n.deferred, n.propBatch...)
		n.deferred = nil
	}
	n.deferDue = false
	if len(n.propBatch) == 0 {
		return
	}
	var err error
	if !n.stillLeader() {
		err = ErrNoLeader
	} else {
		ents := make([]*raftpb.Entry, len(n.propBatch))
		for i, pp := range n.propBatch {
			ents[i] = &raftpb.Entry{Data: pp.data}
		}
		from := n.id
		err = n.rn.Step(&raftpb.Message{Type: raftpb.MsgProp.Enum(), From: &from, Entries: ents})
	}
	for i, pp := range n.propBatch {
		if err != nil {
			pp.w.fail(fmt.Errorf("%w: proposal dropped: %v", ErrNoLeader, err))
			n.metrics.failed.Add(1)
		} else {
			n.waiters[pp.req] = pp.w
		}
		n.propBatch[i] = pendingProp{}
	}
	n.propBatch = n.propBatch[:0]
}

// stillLeader reports whether raft itself is the leader. n.state is what
// the last Ready said; a message stepped since (an iteration mixes messages
// and proposals) may have ended this node's term, and a clocked command
// must never be proposed by a follower (raft would forward it).
func (n *Node) stillLeader() bool {
	return n.rn.BasicStatus().RaftState == raft.StateLeader
}

func (n *Node) notLeader() error {
	if n.lead == 0 {
		return ErrNoLeader
	}
	e := &NotLeaderError{LeaderID: n.lead}
	for _, m := range n.memberList() {
		if m.ID == n.lead {
			e.LeaderClientURL = m.ClientURL
		}
	}
	return e
}

// propose stamps the leader's clock into cmd and proposes it, registering w
// (if any) under a new request ID, which it returns (0 if raft refused).
func (n *Node) propose(cmd *lock.Command, w *waiter) uint64 {
	cmd.Now = n.now()
	n.reqSeq++
	req := n.reqSeq
	if err := n.rn.Propose(encodeEnvelope(n.id, req, cmd)); err != nil {
		// Dropped: not appended, so it certainly did not happen.
		if w != nil {
			w.fail(fmt.Errorf("%w: proposal dropped: %v", ErrNoLeader, err))
		}
		n.metrics.failed.Add(1)
		return 0
	}
	if w != nil {
		n.waiters[req] = w
	}
	return req
}

// kaKey groups keep-alives by the principal and token they were proved
// with (flushKeepAlives).
type kaKey struct {
	principal string
	token     uint64
}

// flushKeepAlives proposes the keep-alives gathered in this loop iteration
// as one entry per principal.
func (n *Node) flushKeepAlives() {
	if len(n.kaBatch) == 0 {
		return
	}
	batch := n.kaBatch
	n.kaBatch = nil
	if !n.stillLeader() {
		for _, p := range batch {
			p.resC <- proposalResult{err: ErrNoLeader}
		}
		return
	}
	// One entry per principal and token: the state machine checks that
	// every session of an entry belongs to its principal (and that the
	// token proving it still exists), so keep-alives of different
	// principals never share an entry, nor one's refusal.
	if n.kaGroups == nil {
		n.kaGroups = map[kaKey][]*proposal{}
	}
	var order []kaKey
	for _, p := range batch {
		k := kaKey{p.cmd.Principal, p.cmd.TokenID}
		if _, seen := n.kaGroups[k]; !seen {
			order = append(order, k)
		}
		n.kaGroups[k] = append(n.kaGroups[k], p)
	}
	for _, k := range order {
		group := n.kaGroups[k]
		delete(n.kaGroups, k)
		var ids []uint64
		for _, p := range group {
			ids = append(ids, p.cmd.Sessions...)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		n.propose(&lock.Command{Op: lock.OpKeepAlive, Sessions: ids, Principal: k.principal, TokenID: k.token}, &waiter{batch: group})
	}
}

// maybePublish proposes this member's URLs until the state machine holds
// them. OpPublish carries no clock, so a follower may propose it (raft
// forwards it to the leader).
func (n *Node) maybePublish() {
	if n.lead == 0 || n.cfg.ClientURL == "" {
		return
	}
	if n.publishedAt != 0 && n.ticks-n.publishedAt < uint64(n.cfg.ElectionTicks) {
		return
	}
	for _, m := range n.machine.Members() {
		if m.ID == n.id && m.ClientURL == n.cfg.ClientURL && m.PeerURL == n.selfPeerURL() {
			return
		}
	}
	n.publishedAt = n.ticks
	n.reqSeq++
	data := encodeEnvelope(n.id, n.reqSeq, &lock.Command{Op: lock.OpPublish,
		Member: lock.Member{ID: n.id, PeerURL: n.selfPeerURL(), ClientURL: n.cfg.ClientURL}})
	if err := n.rn.Propose(data); err != nil {
		n.log.Debug("publish member", "err", err)
	}
}

// selfPeerURL is this member's peer URL: the one it was added with, or
// the initial cluster's.
func (n *Node) selfPeerURL() string {
	if u := n.memberSet.Load().urls[n.id]; u != "" {
		return u
	}
	return n.peers[n.id]
}

// maybeInitLimits proposes OpInitLimits with Config.InitialLimits once per
// election timeout until the state's limits are set. No clock: any member
// may propose it.
func (n *Node) maybeInitLimits() {
	if n.cfg.InitialLimits == nil || n.lead == 0 || n.machine.LimitsSet() {
		return
	}
	if n.limitsAt != 0 && n.ticks-n.limitsAt < uint64(n.cfg.ElectionTicks) {
		return
	}
	n.limitsAt = n.ticks
	n.reqSeq++
	data := encodeEnvelope(n.id, n.reqSeq, &lock.Command{Op: lock.OpInitLimits, Limits: *n.cfg.InitialLimits})
	if err := n.rn.Propose(data); err != nil {
		n.log.Debug("propose the initial limits", "err", err)
	}
}

// maybeBootstrapAuth proposes OpAuthBootstrap with Config.AuthBootstrapHash
// once per election timeout while the state has no users and auth is off.
// Like OpPublish it carries no clock, so a follower may propose it.
func (n *Node) maybeBootstrapAuth() {
	if n.cfg.AuthBootstrapHash == "" || n.lead == 0 || n.authSettled {
		return
	}
	if v := n.machine.Auth(); v.Enabled() || len(v.Users()) > 0 {
		n.authSettled = true
		return
	}
	if n.bootstrapAt != 0 && n.ticks-n.bootstrapAt < uint64(n.cfg.ElectionTicks) {
		return
	}
	n.bootstrapAt = n.ticks
	n.reqSeq++
	data := encodeEnvelope(n.id, n.reqSeq, &lock.Command{Op: lock.OpAuthBootstrap, Hash: n.cfg.AuthBootstrapHash})
	if err := n.rn.Propose(data); err != nil {
		n.log.Debug("propose the auth bootstrap", "err", err)
	}
}
