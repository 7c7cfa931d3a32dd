package raftnode

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/internal/mutant"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// metadata is stored in the WAL when it is created: who this member is and
// the cluster it was created in, so that a restart needs no cluster flags.
type metadata struct {
	ID    uint64            `json:"id"`
	Peers map[uint64]string `json:"peers"`
}

// Node is one member of the cluster. Create it with New, run it with Run.
// Its exported methods are safe for concurrent use; they talk to the loop
// goroutine that Run drives.
type Node struct {
	cfg   Config
	log   *slog.Logger
	id    uint64
	peers map[uint64]string // member ID → peer URL; read-only after New

	propC   chan *proposal
	readC   chan *readReq
	recvC   chan *raftpb.Message
	reportC chan func()
	doneC   chan struct{}
	started atomic.Bool

	status atomic.Pointer[Status]

	subsMu sync.Mutex
	subs   map[*subscriber]struct{}
	hist   history

	// Owned by the loop goroutine (and by New before Run starts).
	wal          Durable
	storage      *raft.MemoryStorage
	rn           *raft.RawNode
	machine      *lock.Machine
	transport    Transport
	confState    *raftpb.ConfState
	applied      uint64
	snapIndex    uint64
	lead         uint64
	state        raft.StateType
	term         uint64
	commit       uint64
	reqSeq       uint64
	waiters      map[uint64]*waiter
	kaBatch      []*proposal
	propBatch    []pendingProp // proposals of this iteration, see flushProposals
	readSeq      uint64
	pendingReads map[string]*readReq
	readyReads   []*readReq
	expireReq    uint64
	ticks        uint64
	publishedAt  uint64 // tick of the last publish proposal
	members      []MemberStatus
	membersDirty bool
	snapJob      *snapJob // our snapshot in flight (at most one), see snapshot.go

	// snapDoneC carries a snapshot job back from its goroutine to Run's
	// loop (buffered 1: the goroutine never blocks).
	snapDoneC chan *snapJob
	// snapRun, when set, replaces that goroutine: it must run the job
	// (snapJob.run) later and hand it to finishSnapshot on the loop. The
	// simulation sets it to do so at steps it schedules.
	snapRun func(*snapJob)
}

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
// applied. A keep-alive batch answers several callers.
type waiter struct {
	single *proposal
	batch  []*proposal
}

type readReq struct {
	stale bool
	fn    func(*lock.Machine)
	index uint64
	done  chan error // buffered 1
}

// New opens (or creates) the data dir and prepares the node. It does not
// start it: call Run. Errors name what failed (config, WAL, snapshot).
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SnapshotCatchUp > cfg.SnapshotEvery {
		cfg.SnapshotCatchUp = cfg.SnapshotEvery
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	meta, err := json.Marshal(metadata{ID: cfg.ID, Peers: cfg.Peers})
	if err != nil {
		return nil, fmt.Errorf("raftnode: encode metadata: %w", err)
	}
	w, st, err := wal.Open(ctx, wal.Config{Dir: cfg.DataDir, Metadata: meta, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	n, err := newNode(cfg, w, st)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	return n, nil
}

func newNode(cfg Config, w Durable, st *wal.State) (*Node, error) {
	var md metadata
	if err := json.Unmarshal(st.Metadata, &md); err != nil {
		return nil, fmt.Errorf("raftnode: data dir %s: decode WAL metadata: %w", cfg.DataDir, err)
	}
	if md.ID == 0 {
		return nil, fmt.Errorf("raftnode: data dir %s: no member ID (start it with an ID)", cfg.DataDir)
	}
	if cfg.ID != 0 && cfg.ID != md.ID {
		return nil, fmt.Errorf("raftnode: data dir %s belongs to member %d, not %d", cfg.DataDir, md.ID, cfg.ID)
	}
	if _, ok := md.Peers[md.ID]; !ok {
		return nil, fmt.Errorf("raftnode: data dir %s: member %d is not in its own cluster %v", cfg.DataDir, md.ID, md.Peers)
	}
	n := &Node{
		cfg:          cfg,
		log:          cfg.Logger.With("node_id", md.ID),
		id:           md.ID,
		peers:        md.Peers,
		propC:        make(chan *proposal, 1024),
		readC:        make(chan *readReq, 1024),
		recvC:        make(chan *raftpb.Message, 1024),
		reportC:      make(chan func(), 1024),
		doneC:        make(chan struct{}),
		snapDoneC:    make(chan *snapJob, 1),
		subs:         map[*subscriber]struct{}{},
		wal:          w,
		storage:      raft.NewMemoryStorage(),
		machine:      lock.New(),
		confState:    &raftpb.ConfState{},
		waiters:      map[uint64]*waiter{},
		pendingReads: map[string]*readReq{},
		membersDirty: true,
	}
	// Request IDs only need to be unique among this process's proposals in
	// flight; starting from the clock keeps a restarted node from matching
	// an entry proposed by its previous life.
	n.reqSeq = uint64(cfg.Now().UnixNano())
	n.hist.max = cfg.EventHistory

	if snap := st.Snapshot; snap != nil && !raft.IsEmptySnap(snap) {
		if err := n.storage.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("raftnode: apply snapshot %d to storage: %w", snap.GetMetadata().GetIndex(), err)
		}
		if err := n.machine.Restore(snap.GetData()); err != nil {
			return nil, fmt.Errorf("raftnode: data dir %s: restore snapshot at index %d: %w", cfg.DataDir, snap.GetMetadata().GetIndex(), err)
		}
		n.applied = snap.GetMetadata().GetIndex()
		n.snapIndex = n.applied
		n.confState = proto.Clone(snap.GetMetadata().GetConfState()).(*raftpb.ConfState)
		// Entries after the snapshot are applied again, and their events
		// published again; those before it are gone.
		n.hist.complete = n.applied
	}
	if hs := st.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
		if err := n.storage.SetHardState(hs); err != nil {
			return nil, fmt.Errorf("raftnode: set hard state: %w", err)
		}
	}
	if mutant.Enabled(mutant.TokenReusedAfterRestart) {
		st.Entries = mutantForgetUncommitted(st) // tests only
	}
	if err := n.storage.Append(st.Entries); err != nil {
		return nil, fmt.Errorf("raftnode: append replayed entries: %w", err)
	}
	rc := &raft.Config{
		ID:                        n.id,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   n.storage,
		Applied:                   n.applied,
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: cfg.MaxUncommittedEntriesSize,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    raftLogger{n.log},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("raftnode: new raw node: %w", err)
	}
	n.rn = rn
	last, _ := n.storage.LastIndex()
	if last == 0 {
		ids := make([]uint64, 0, len(n.peers))
		for id := range n.peers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		bp := make([]raft.Peer, len(ids))
		for i, id := range ids {
			bp[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(bp); err != nil {
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
		n.log.Info("bootstrapping a new cluster", "members", len(ids))
	} else {
		n.log.Info("restarting from data dir", "data_dir", cfg.DataDir, "snapshot_index", n.snapIndex,
			"last_index", last, "repaired", st.Repaired)
	}
	n.publishStatus()
	return n, nil
}

// ID returns this member's ID.
func (n *Node) ID() uint64 { return n.id }

// Peers returns a copy of the cluster's members: ID → peer URL.
func (n *Node) Peers() map[uint64]string {
	m := make(map[uint64]string, len(n.peers))
	for id, u := range n.peers {
		m[id] = u
	}
	return m
}

// Done is closed when Run has returned.
func (n *Node) Done() <-chan struct{} { return n.doneC }

// Run drives the node until ctx ends (it returns nil) or storage fails (it
// returns the error). t carries messages to the other members; Run adds
// them to it. Before it returns, Run waits for a snapshot being written in
// the background (it is then not recorded, and a restart ignores its file)
// and closes the WAL. Run may be called once.
func (n *Node) Run(ctx context.Context, t Transport) (err error) {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("raftnode: Run called twice")
	}
	n.transport = t
	defer func() {
		n.failAll(ErrStopped)
		n.abandonSnapshot()
		if cerr := n.wal.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("raftnode: close wal: %w", cerr)
		}
		st := *n.status.Load()
		st.Ready = false
		n.status.Store(&st)
		close(n.doneC)
		n.closeSubscribers()
	}()
	for id, u := range n.peers {
		if id != n.id {
			t.AddPeer(id, u)
		}
	}
	tickC := n.cfg.Tick
	if tickC == nil {
		tk := time.NewTicker(n.cfg.TickInterval)
		defer tk.Stop()
		c := make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-tk.C:
					select {
					case c <- struct{}{}:
					default:
					}
				case <-n.doneC:
					return
				}
			}
		}()
		tickC = c
	}
	// Apply what the WAL already holds as committed before serving.
	if err := n.processReady(); err != nil {
		return err
	}
	// The only voter need not wait an election timeout to lead.
	if v := n.confState.GetVoters(); len(v) == 1 && v[0] == n.id {
		if err := n.rn.Campaign(); err != nil {
			n.log.Warn("campaign as the only voter", "err", err)
		}
		if err := n.processReady(); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			n.log.Info("stopping")
			return nil
		case <-tickC:
			n.rn.Tick()
			n.onTick()
		case m := <-n.recvC:
			n.step(m)
			n.drainInputs()
		case p := <-n.propC:
			n.handleProposal(p)
			n.drainInputs()
		case r := <-n.readC:
			n.handleRead(r)
		case f := <-n.reportC:
			f()
		case job := <-n.snapDoneC:
			if err := n.finishSnapshot(job); err != nil {
				n.log.Error("node stopped", "err", err)
				return err
			}
		}
		if err := n.endIteration(); err != nil {
			n.log.Error("node stopped", "err", err)
			return err
		}
	}
}

// endIteration ends one iteration of Run's loop: it proposes what the
// iteration gathered and handles the Ready. The simulation test drives a
// node by the same steps as Run, without its goroutine.
func (n *Node) endIteration() error {
	n.flushKeepAlives()
	n.flushProposals()
	return n.processReady()
}

// drainInputs takes every proposal and raft message already waiting (at
// most 4096), so that they share one Ready: one WAL write and fsync, one
// batch of messages per peer. This is group commit for proposals, and for
// messages what raft.Node does by stepping them while its user handles the
// previous Ready: without it a follower would fsync once per MsgApp, i.e.
// once per proposal of the leader.
func (n *Node) drainInputs() {
	for range 4096 {
		select {
		case p := <-n.propC:
			n.handleProposal(p)
		case m := <-n.recvC:
			n.step(m)
		default:
			return
		}
	}
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.log.Debug("step", "err", err, "from", m.GetFrom(), "type", m.GetType().String())
	}
}

func (n *Node) processReady() error {
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
		if n.state == raft.StateLeader && len(msgs) > 0 && n.transport != nil {
			var early []*raftpb.Message
			early, msgs = splitLeaderMessages(msgs)
			n.transport.Send(early)
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
		if err := n.wal.Save(rd.HardState, rd.Entries); err != nil {
			return fmt.Errorf("raftnode: save to wal: %w", err)
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
		if mutant.Enabled(mutant.AnswerBeforeCommit) {
			n.mutantAnswerAppended(rd.Entries) // tests only
		}
		if len(msgs) > 0 && n.transport != nil {
			n.transport.Send(msgs)
		}
		for _, rs := range rd.ReadStates {
			if r, ok := n.pendingReads[string(rs.RequestCtx)]; ok {
				delete(n.pendingReads, string(rs.RequestCtx))
				r.index = rs.Index
				n.readyReads = append(n.readyReads, r)
			}
		}
		if err := n.apply(rd.CommittedEntries); err != nil {
			return err
		}
		n.serveReads()
		if err := n.maybeSnapshot(); err != nil {
			return err
		}
		n.rn.Advance(rd)
	}
	n.publishStatus()
	return nil
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
	n.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	n.membersDirty = true
	// The events between the old state and the snapshot were never seen
	// here: watchers must re-read the state.
	n.subsMu.Lock()
	n.hist.events = n.hist.events[:0]
	n.hist.complete = n.applied
	for s := range n.subs {
		delete(n.subs, s)
		close(s.c)
	}
	n.subsMu.Unlock()
	n.log.Info("restored snapshot from leader", "index", md.GetIndex(), "term", md.GetTerm())
	return nil
}

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
			n.publishEvents(res.Events)
			if cmd.Op == lock.OpPublish {
				n.membersDirty = true
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
			n.confState = n.rn.ApplyConfChange(&cc)
			n.membersDirty = true
			n.machine.Apply(idx, term, nil)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("raftnode: committed conf change %d is unreadable: %w", idx, err)
			}
			n.confState = n.rn.ApplyConfChange(&cc)
			n.membersDirty = true
			n.machine.Apply(idx, term, nil)
		}
		n.applied = idx
	}
	return nil
}

func (w *waiter) answer(res lock.Result, index uint64) {
	if w.single != nil {
		w.single.resC <- proposalResult{res: res, index: index}
		return
	}
	for _, p := range w.batch {
		r := lock.Result{Code: res.Code}
		for _, id := range p.cmd.Sessions {
			if _, found := slices.BinarySearch(res.Missing, id); found {
				r.Missing = append(r.Missing, id)
			}
		}
		p.resC <- proposalResult{res: r, index: index}
	}
}

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
		}
		n.expireReq = 0
	}
	if leaderChanged {
		// A ReadIndex request sent to the old leader will not be answered.
		for k, r := range n.pendingReads {
			delete(n.pendingReads, k)
			r.done <- ErrNoLeader
		}
	}
	if !wasLeader && n.state == raft.StateLeader {
		// The first command of the term carries the new leader's clock:
		// applying it extends every session (see lock.Machine.Apply).
		n.propose(&lock.Command{Op: lock.OpTick}, nil)
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
	}
	for _, p := range n.kaBatch {
		p.resC <- proposalResult{err: err}
	}
	n.kaBatch = nil
	for k, r := range n.pendingReads {
		delete(n.pendingReads, k)
		r.done <- err
	}
	for _, r := range n.readyReads {
		r.done <- err
	}
	n.readyReads = nil
}

func (n *Node) onTick() {
	n.ticks++
	if n.state == raft.StateLeader && n.expireReq == 0 {
		if d, ok := n.machine.NextDeadline(); ok && n.cfg.Now().UnixNano() >= d {
			n.expireReq = n.propose(&lock.Command{Op: lock.OpExpire}, nil)
		}
	}
	n.maybePublish()
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
		if m.ID == n.id && m.ClientURL == n.cfg.ClientURL && m.PeerURL == n.peers[n.id] {
			return
		}
	}
	n.publishedAt = n.ticks
	n.reqSeq++
	data := encodeEnvelope(n.id, n.reqSeq, &lock.Command{Op: lock.OpPublish,
		Member: lock.Member{ID: n.id, PeerURL: n.peers[n.id], ClientURL: n.cfg.ClientURL}})
	if err := n.rn.Propose(data); err != nil {
		n.log.Debug("publish member", "err", err)
	}
}

func (n *Node) handleProposal(p *proposal) {
	if n.state != raft.StateLeader {
		p.resC <- proposalResult{err: n.notLeader()}
		return
	}
	if p.cmd.Op == lock.OpKeepAlive {
		n.kaBatch = append(n.kaBatch, p)
		return
	}
	cmd := p.cmd
	cmd.Now = n.cfg.Now().UnixNano()
	n.reqSeq++
	n.propBatch = append(n.propBatch, pendingProp{req: n.reqSeq, data: encodeEnvelope(n.id, n.reqSeq, cmd), w: &waiter{single: p}})
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
func (n *Node) flushProposals() {
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
		} else {
			n.waiters[pp.req] = pp.w
		}
		n.propBatch[i] = pendingProp{}
	}
	n.propBatch = n.propBatch[:0]
}

// stillLeader reports whether raft itself is the leader. n.state is what
// the last Ready said; a message stepped since (drainInputs mixes messages
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
	cmd.Now = n.cfg.Now().UnixNano()
	n.reqSeq++
	req := n.reqSeq
	if err := n.rn.Propose(encodeEnvelope(n.id, req, cmd)); err != nil {
		// Dropped: not appended, so it certainly did not happen.
		if w != nil {
			w.fail(fmt.Errorf("%w: proposal dropped: %v", ErrNoLeader, err))
		}
		return 0
	}
	if w != nil {
		n.waiters[req] = w
	}
	return req
}

// flushKeepAlives proposes the keep-alives gathered in this loop iteration
// as one entry.
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
	var ids []uint64
	for _, p := range batch {
		ids = append(ids, p.cmd.Sessions...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	n.propose(&lock.Command{Op: lock.OpKeepAlive, Sessions: ids}, &waiter{batch: batch})
}

func (n *Node) handleRead(r *readReq) {
	if mutant.Enabled(mutant.FollowerReadWithoutReadIndex) {
		r.stale = true // mutant (tests only): no ReadIndex round
	}
	if r.stale {
		r.fn(n.machine)
		r.done <- nil
		return
	}
	if n.lead == 0 {
		r.done <- ErrNoLeader
		return
	}
	n.readSeq++
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, n.readSeq)
	n.pendingReads[string(key)] = r
	n.rn.ReadIndex(key)
}

func (n *Node) serveReads() {
	kept := n.readyReads[:0]
	for _, r := range n.readyReads {
		if r.index <= n.applied {
			r.fn(n.machine)
			r.done <- nil
			continue
		}
		kept = append(kept, r)
	}
	clear(n.readyReads[len(kept):])
	n.readyReads = kept
}

func (n *Node) memberList() []MemberStatus {
	if !n.membersDirty {
		return n.members
	}
	urls := map[uint64]lock.Member{}
	for _, m := range n.machine.Members() {
		urls[m.ID] = m
	}
	ids := append(append([]uint64{}, n.confState.GetVoters()...), n.confState.GetLearners()...)
	if len(ids) == 0 {
		for id := range n.peers {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	ms := make([]MemberStatus, 0, len(ids))
	for _, id := range slices.Compact(ids) {
		m := MemberStatus{ID: id, PeerURL: n.peers[id], ClientURL: urls[id].ClientURL}
		if m.PeerURL == "" {
			m.PeerURL = urls[id].PeerURL
		}
		ms = append(ms, m)
	}
	n.members = ms
	n.membersDirty = false
	return ms
}

func (n *Node) publishStatus() {
	st := &Status{
		ID:            n.id,
		Leader:        n.lead,
		IsLeader:      n.state == raft.StateLeader,
		Term:          n.term,
		Commit:        n.commit,
		Applied:       n.applied,
		Members:       n.memberList(),
		SnapshotIndex: n.snapIndex,
	}
	if n.rn != nil {
		hs := n.rn.BasicStatus().HardState
		st.Term, st.Commit = hs.GetTerm(), hs.GetCommit()
	}
	for _, m := range st.Members {
		if m.ID == n.lead {
			st.LeaderClientURL = m.ClientURL
		}
	}
	// Ready also wants the leader's client URL: without it a follower can
	// not forward writes.
	st.Ready = n.lead != 0 && n.applied >= st.Commit && st.LeaderClientURL != ""
	n.status.Store(st)
}

// mutantForgetUncommitted is the TokenReusedAfterRestart mutant (see
// internal/mutant; tests only): it drops the replayed entries after the
// saved commit index, although this node acknowledged them.
func mutantForgetUncommitted(st *wal.State) []*raftpb.Entry {
	ents := st.Entries
	for len(ents) > 0 && ents[len(ents)-1].GetIndex() > st.HardState.GetCommit() {
		ents = ents[:len(ents)-1]
	}
	return ents
}

// mutantAnswerAppended is the AnswerBeforeCommit mutant (see
// internal/mutant; tests only): it answers the waiters of entries as soon
// as they are appended, with the results they would have if every appended
// entry committed.
func (n *Node) mutantAnswerAppended(appended []*raftpb.Entry) {
	if len(appended) == 0 {
		return
	}
	last := appended[len(appended)-1].GetIndex()
	ents, err := n.storage.Entries(n.applied+1, last+1, math.MaxUint64)
	spec := lock.New()
	if err != nil || spec.Restore(n.machine.Snapshot()) != nil {
		return
	}
	for _, e := range ents {
		var from, req uint64
		var cmd *lock.Command
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			if from, req, cmd, err = decodeEnvelope(e.GetData()); err != nil {
				return
			}
		}
		res := spec.Apply(e.GetIndex(), e.GetTerm(), cmd)
		if w, ok := n.waiters[req]; ok && from == n.id {
			delete(n.waiters, req)
			w.answer(res, e.GetIndex())
		}
	}
}
