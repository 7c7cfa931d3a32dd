package raftnode

import (
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
)

// processReady handles every Ready raft has, in the order of the package
// documentation, and publishes the node's status.
func (n *Node) processReady() error {
	n.sendReadIndex()
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if rd.SoftState != nil {
			n.onSoftState(rd.SoftState)
		}
		if hs := rd.HardState; hs != nil {
			n.term, n.commit = hs.GetTerm(), hs.GetCommit()
		}
		haveSnap := rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot)
		// A leader sends its replication messages before it persists, so
		// that the followers write the entries to their disks while the
		// leader writes to its own (raft thesis 10.2.1; etcd's raftNode
		// does the same). It is safe: the leader counts its own copy of an
		// entry towards the commit quorum only after Advance, i.e. after
		// the WAL save below, so an entry commits only once a majority has
		// it on disk; and MsgApp carries its entries, so nothing is read
		// from storage that is not saved yet. Responses (MsgAppResp,
		// MsgVoteResp, MsgPreVoteResp: promises about this node's own
		// durable state) still wait for the save, as do all messages of a
		// follower or candidate.
		msgs := rd.Messages
		// (Also when this Ready deposes the leader: its messages were
		// made while it led.)
		msgs = n.freshenSnapshots(msgs)
		if n.state == raft.StateLeader && len(msgs) > 0 && n.transport != nil {
			var early []*raftpb.Message
			early, msgs = splitLeaderMessages(msgs)
			n.transport.Send(early)
		}
		committed := rd.CommittedEntries
		if !haveSnap {
			// Committed entries this node has on disk already are applied
			// (and their callers answered) before this Ready's WAL write,
			// not after it: a commit that arrived while the last write was
			// in flight does not wait for the next one. Under load the
			// next Ready always carries new entries, so without this every
			// answer would pay one more fsync (a lock hand-off, two). etcd
			// applies beside its WAL writes for the same reason. It is
			// safe: the entries are committed (a majority has them on
			// disk) and durable here; the HardState saved below only
			// records a commit index that is true already.
			k := 0
			for k < len(committed) && committed[k].GetIndex() <= n.durable {
				k++
			}
			if k > 0 {
				n.metrics.committed.Add(uint64(k))
				if err := n.apply(committed[:k]); err != nil {
					return err
				}
				committed = committed[k:]
			}
		}
		if haveSnap {
			// Ours first: the WAL's snapshot records must increase.
			if n.snapJob != nil {
				if err := n.awaitSnapshot(); err != nil {
					return err
				}
			}
			if err := n.wal.SaveSnapshotFile(rd.Snapshot); err != nil {
				return fmt.Errorf("raftnode: save received snapshot: %w", err)
			}
			if err := n.wal.SaveSnapshotRecord(rd.Snapshot); err != nil {
				return fmt.Errorf("raftnode: save received snapshot: %w", err)
			}
		}
		saveStart := time.Now()
		if err := n.wal.Save(rd.HardState, rd.Entries); err != nil {
			return fmt.Errorf("raftnode: save to wal: %w", err)
		}
		if rd.HardState != nil || len(rd.Entries) > 0 {
			n.metrics.walSave.Observe(time.Since(saveStart).Seconds())
		}
		if haveSnap {
			n.durable = rd.Snapshot.GetMetadata().GetIndex()
		}
		if len(rd.Entries) > 0 {
			n.durable = rd.Entries[len(rd.Entries)-1].GetIndex()
		}
		if haveSnap {
			if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
				return fmt.Errorf("raftnode: apply snapshot to storage: %w", err)
			}
			if err := n.restoreSnapshot(rd.Snapshot); err != nil {
				return err
			}
		}
		if rd.HardState != nil {
			if err := n.storage.SetHardState(rd.HardState); err != nil {
				return fmt.Errorf("raftnode: set hard state: %w", err)
			}
		}
		if err := n.storage.Append(rd.Entries); err != nil {
			return fmt.Errorf("raftnode: append to storage: %w", err)
		}
		// The members this Ready's configuration changes add are trusted
		// before they are applied (vouch.go).
		n.trustLogged(rd.Entries)
		if mutated(answerBeforeCommit) {
			n.mutantAnswerAppended(rd.Entries)
		}
		if len(msgs) > 0 && n.transport != nil {
			n.transport.Send(msgs)
		}
		n.readStatesArrived(rd.ReadStates)
		n.metrics.committed.Add(uint64(len(committed)))
		if err := n.apply(committed); err != nil {
			return err
		}
		if n.memberSetStale {
			n.refreshMemberSet()
		}
		n.serveReads()
		if err := n.maybeSnapshot(); err != nil {
			return err
		}
		n.rn.Advance(rd)
		if n.removedSelf {
			return ErrRemoved
		}
		// Reads that came in while the last request was in flight.
		n.sendReadIndex()
	}
	n.publishStatus()
	return nil
}

// freshenSnapshots takes out of msgs each MsgSnap to a member that the
// snapshot's configuration does not list (a member added after the
// snapshot was taken) and returns the others. Such a message gets a
// snapshot of the state applied now, with the current configuration, as
// etcd's createMergedSnapshotMessage does: raft refuses a snapshot that
// does not make it a member, so the new member could not catch up until
// the next snapshot, and would be sent the old one again and again.
//
// The loop only captures the state (O(1), copy-on-write) into a freshSnap;
// the driver encodes it off the loop and then sends the message
// (takeFreshSnaps): encoding a large state on the loop stalled it for as
// long (hundreds of milliseconds at a million locks). Raft holds the
// member in its snapshot state meanwhile, as it would while a slow
// transport sends the snapshot. Loop only (only a leader makes a MsgSnap);
// before this Ready's entries are applied, so the machine is at n.applied.
func (n *Node) freshenSnapshots(msgs []*raftpb.Message) []*raftpb.Message {
	stale := func(m *raftpb.Message) bool {
		if m.GetType() != raftpb.MsgSnap || m.Snapshot == nil {
			return false
		}
		cs := m.Snapshot.GetMetadata().GetConfState()
		return !slices.Contains(cs.GetVoters(), m.GetTo()) && !slices.Contains(cs.GetLearners(), m.GetTo())
	}
	if !slices.ContainsFunc(msgs, stale) {
		return msgs
	}
	var keep []*raftpb.Message
	for _, m := range msgs {
		if !stale(m) {
			keep = append(keep, m)
			continue
		}
		term, err := n.storage.Term(n.applied)
		if err != nil {
			n.log.Warn("fresh snapshot for a new member", "to", m.GetTo(), "err", err)
			keep = append(keep, m)
			continue
		}
		m.Snapshot = &raftpb.Snapshot{
			Metadata: &raftpb.SnapshotMetadata{
				Index:     proto.Uint64(n.applied),
				Term:      proto.Uint64(term),
				ConfState: proto.Clone(n.confState).(*raftpb.ConfState),
			},
		}
		n.newFreshSnaps = append(n.newFreshSnaps, &freshSnap{msg: m, capture: n.machine.CaptureSnapshot()})
		n.log.Info("sending a fresh snapshot to a member added after the last one", "to", m.GetTo(), "index", n.applied)
	}
	return keep
}

// freshSnap is a MsgSnap of freshenSnapshots on its way: its snapshot's
// metadata is set, its data is the capture, to encode off the loop.
type freshSnap struct {
	msg     *raftpb.Message
	capture *lock.SnapshotCapture
}

// encode sets the message's snapshot data. It runs on any goroutine (the
// capture is safe to encode beside the machine); the message belongs to
// it until it is handed to the transport.
func (f *freshSnap) encode() {
	f.msg.Snapshot.Data = f.capture.Encode()
	f.capture = nil
}

// takeFreshSnaps returns the fresh snapshots the loop started since the
// last call. The driver (Run, or the simulation) must encode each off the
// loop and then send its message.
func (n *Node) takeFreshSnaps() []*freshSnap {
	fs := n.newFreshSnaps
	n.newFreshSnaps = nil
	return fs
}

// sendFreshSnaps encodes and sends the fresh snapshots the last iteration
// started, each on a goroutine of its own; Run waits for them before it
// returns (freshWG).
func (n *Node) sendFreshSnaps() {
	for _, f := range n.takeFreshSnaps() {
		t := n.transport
		n.freshWG.Add(1)
		go func() {
			defer n.freshWG.Done()
			f.encode()
			t.Send([]*raftpb.Message{f.msg})
		}()
	}
}

// splitLeaderMessages splits a leader's Ready messages into those it may
// send before it persists the Ready (MsgApp, heartbeats, snapshots, read
// index answers) and the responses that must wait for the save (see
// processReady). The common case, no response, returns msgs itself.
func splitLeaderMessages(msgs []*raftpb.Message) (early, late []*raftpb.Message) {
	afterSave := func(m *raftpb.Message) bool {
		switch m.GetType() {
		case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
			return true
		}
		return false
	}
	if !slices.ContainsFunc(msgs, afterSave) {
		return msgs, nil
	}
	for _, m := range msgs {
		if afterSave(m) {
			late = append(late, m)
		} else {
			early = append(early, m)
		}
	}
	return early, late
}

// restoreSnapshot replaces the state machine with a snapshot received from
// the leader.
func (n *Node) restoreSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if md.GetIndex() <= n.applied {
		return nil
	}
	if err := n.machine.Restore(snap.GetData()); err != nil {
		return fmt.Errorf("raftnode: restore snapshot at index %d from the leader: %w", md.GetIndex(), err)
	}
	n.applied = md.GetIndex()
	n.snapIndex = md.GetIndex()
	n.snapLog.restored(snap)
	n.auth.Store(n.machine.Auth())
	n.restoreConfState(md.GetConfState())
	// The events between the old state and the snapshot were never seen
	// here: watchers must re-read the state, and so must every waiter.
	n.subsMu.Lock()
	n.hist.events = n.hist.events[:0]
	n.hist.complete = n.applied
	for s := range n.subs {
		delete(n.subs, s)
		close(s.c)
	}
	n.subsMu.Unlock()
	n.awaits.wakeAll()
	n.log.Info("restored snapshot from leader", "index", md.GetIndex(), "term", md.GetTerm())
	return nil
}

// apply applies committed entries to the state machine, answers the
// waiters of this node's proposals, and publishes the events.
func (n *Node) apply(ents []*raftpb.Entry) error {
	for _, e := range ents {
		idx, term := e.GetIndex(), e.GetTerm()
		if idx <= n.applied {
			continue
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				n.machine.Apply(idx, term, nil)
				break
			}
			from, req, cmd, err := decodeEnvelope(e.GetData())
			if err != nil {
				return fmt.Errorf("raftnode: committed entry %d (term %d) is unreadable; the data dir %s may be corrupt or written by a newer version: %w",
					idx, term, n.cfg.DataDir, err)
			}
			res := n.machine.Apply(idx, term, cmd)
			if v := n.machine.Auth(); v != n.auth.Load() {
				n.auth.Store(v)
			}
			n.publishEvents(res.Events)
			n.metrics.observeEvents(res.Events)
			if cmd.Op == lock.OpPublish || cmd.Op == lock.OpClusterVersion {
				n.memberSetStale = true
			}
			if from == n.id {
				if req == n.expireReq {
					n.expireReq = 0
				}
				if w, ok := n.waiters[req]; ok {
					delete(n.waiters, req)
					w.answer(res, idx)
				}
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("raftnode: committed conf change %d is unreadable: %w", idx, err)
			}
			if err := n.applyConfChange(idx, term, &cc); err != nil {
				return err
			}
			n.confIndex = idx
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("raftnode: committed conf change %d is unreadable: %w", idx, err)
			}
			n.confState = n.rn.ApplyConfChange(&cc)
			n.machine.Apply(idx, term, nil)
			n.memberSetStale = true
			n.confIndex = idx
		}
		n.applied = idx
		n.snapLog.count(e)
		n.metrics.applied.Add(1)
	}
	return nil
}

// onSoftState follows raft's changes of leader and role.
func (n *Node) onSoftState(ss *raft.SoftState) {
	wasLeader := n.state == raft.StateLeader
	if ss.Lead != n.lead || ss.RaftState != n.state {
		n.log.Info("raft state changed", "state", ss.RaftState.String(), "leader", ss.Lead)
	}
	leaderChanged := ss.Lead != n.lead
	n.lead, n.state = ss.Lead, ss.RaftState
	if wasLeader && n.state != raft.StateLeader {
		// Proposals of the lost term may or may not commit under the
		// next leader.
		for req, w := range n.waiters {
			delete(n.waiters, req)
			w.fail(ErrOutcomeUnknown)
			n.metrics.failed.Add(1)
		}
		n.expireReq = 0
		n.confReq = 0
		// Never proposed, so certainly not done: the caller may go to
		// the new leader.
		n.failDeferred(n.notLeader())
	}
	if leaderChanged {
		if ss.Lead != 0 {
			n.metrics.leaderChanges.Add(1)
		}
		n.readsLeaderChanged()
	}
	if !wasLeader && n.state == raft.StateLeader {
		// As raft does: a membership change of an earlier term may still
		// be in the log; none is proposed before everything up to here
		// is applied.
		n.confFloor, _ = n.storage.LastIndex()
		n.clock.start(n.machine.Clock(), n.cfg.Now(), n.cfg.Monotonic())
		// The first command of the term carries the new leader's clock:
		// applying it extends every session (see lock.Machine.Apply).
		n.propose(&lock.Command{Op: lock.OpTick}, nil)
	}
}
