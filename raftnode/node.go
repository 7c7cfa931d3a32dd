package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// metadata is stored in the WAL when it is created: who this member is and
// the cluster it was created in, so that a restart needs no cluster flags.
//
// ClusterID is fixed when the cluster is created (0 in data dirs written
// before it was stored: the ID is then ClusterID(Peers), as it was
// computed then). Join marks a member that joined a running cluster: its
// empty log is never bootstrapped from Peers.
type metadata struct {
	ID        uint64            `json:"id"`
	Peers     map[uint64]string `json:"peers"`
	ClusterID uint64            `json:"cluster_id,omitempty"`
	Join      bool              `json:"join,omitempty"`
}

// Node is one member of the cluster. Create it with New, run it with Run.
// Its exported methods are safe for concurrent use; they talk to the loop
// goroutine that Run drives.
type Node struct {
	cfg   Config
	log   *slog.Logger
	id    uint64
	peers map[uint64]string // the initial members, ID → peer URL (metadata); read-only after New
	// clusterID is fixed at the cluster's creation (metadata).
	clusterID uint64
	// memberSet is the membership the loop last applied (membership.go).
	memberSet atomic.Pointer[memberSet]
	// versions are the command formats the members read, as the transport
	// learnt them (ReportVersion).
	versionsMu sync.Mutex
	versions   map[uint64]int
	reachable  map[uint64]bool // the last probe of each peer answered
	// auth is the machine's access-control view, published by the loop
	// after every apply and restore that changes it (Auth).
	auth atomic.Pointer[lock.AuthView]
	// peerDrops counts the inbound messages Process dropped: not from a
	// member, or not to this node (Status.DroppedPeerMessages).
	peerDrops atomic.Uint64

	propC     chan *proposal
	propsC    chan []*proposal // ProposeAll's commands, each slice one input
	readC     chan *readReq
	recvC     chan *raftpb.Message
	reportC   chan report
	transferC chan uint64
	// snapDoneC carries a snapshot job back from its goroutine to Run's
	// loop (buffered 1).
	snapDoneC chan *snapJob
	doneC     chan struct{}
	started   atomic.Bool

	status atomic.Pointer[Status]
	// readRounds and readRetries count ReadIndex requests sent, and those
	// sent again because the previous one went unanswered (Status).
	readRounds, readRetries atomic.Uint64
	// metrics are the monitoring counters (metrics.go).
	metrics *nodeMetrics

	subsMu sync.Mutex
	subs   map[*subscriber]struct{}
	hist   history

	awaits awaitRegistry
	// vouchers vouch for members added after what this node applied
	// (vouch.go).
	vouchers voucher

	// Owned by the loop goroutine (and by New before Run starts).
	wal             Durable
	storage         *memStorage
	rn              *raft.RawNode
	machine         *lock.Machine
	transport       Transport
	confState       *raftpb.ConfState
	applied         uint64
	snapIndex       uint64
	durable         uint64 // the last index of the log as saved in the WAL (see processReady)
	lead            uint64
	state           raft.StateType
	term            uint64
	commit          uint64
	reqSeq          uint64
	waiters         map[uint64]*waiter
	kaBatch         []*proposal
	propBatch       []pendingProp // proposals of this iteration, see flushProposals
	deferred        []pendingProp // queue joins waiting for company (deferJoin)
	deferDue        bool          // propose the deferred joins at the end of this iteration
	reads           readState
	clock           leaderClock
	expireReq       uint64
	ticks           uint64
	publishedAt     uint64                // tick of the last publish proposal
	bootstrapAt     uint64                // tick of the last auth bootstrap proposal
	kaGroups        map[kaKey][]*proposal // flushKeepAlives' scratch: keep-alives by principal and token
	authSettled     bool                  // the state has users or auth on: no bootstrap needed
	limitsAt        uint64                // tick of the last initial-limits proposal
	diskAt          uint64                // tick of the last free-space check
	progressMembers []MemberStatus        // the members with the leader's view of their logs (refreshProgress)
	members         []MemberStatus
	membersDirty    bool
	snapJob         *snapJob          // our snapshot in flight (at most one), see snapshot.go
	snapLog         snapLog           // what the snapshot policy counts (snapshot.go)
	transportPeers  map[uint64]string // the peers the transport was told of (syncTransport)
	confReq         uint64            // request ID of our membership change in flight (0: none)
	confFloor       uint64            // no membership change until this index is applied (set on becoming leader)
	confIndex       uint64            // the index of the last configuration change applied (a snapshot's index after restoring it): member_behind's bar
	removedSelf     bool              // this member's removal was applied: the loop stops
	memberSetStale  bool              // a configuration change was applied since memberSet was published
	versionAt       uint64            // tick of the last cluster version proposal
	lastHeard       map[uint64]uint64 // leader: the tick each member was last heard from (refreshProgress)
	leadTick        uint64            // leader: the tick of its first refreshProgress
	newSnapJob      *snapJob          // started by this iteration, for the driver to run
	newFreshSnaps   []*freshSnap      // started by this iteration, for the driver to encode and send
	freshWG         sync.WaitGroup    // Run's goroutines of sendFreshSnaps
}

// New opens (or creates) the data dir and prepares the node. It does not
// start it: call Run. Errors name what failed (config, WAL, snapshot).
func New(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cid := cfg.ClusterID
	if cid == 0 {
		cid = ClusterIDFor(cfg.ClusterToken, cfg.Peers)
	}
	meta, err := json.Marshal(metadata{ID: cfg.ID, Peers: cfg.Peers, ClusterID: cid, Join: cfg.Join})
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

// newNode builds a node over durable storage w whose recovered state is
// st. New and the simulation call it.
func newNode(cfg Config, w Durable, st *wal.State) (*Node, error) {
	cfg = cfg.withDefaults()
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
		clusterID:    md.ClusterID,
		propC:        make(chan *proposal, 1024),
		propsC:       make(chan []*proposal, 64),
		readC:        make(chan *readReq, 1024),
		recvC:        make(chan *raftpb.Message, 1024),
		reportC:      make(chan report, 1024),
		transferC:    make(chan uint64, 1),
		doneC:        make(chan struct{}),
		snapDoneC:    make(chan *snapJob, 1),
		subs:         map[*subscriber]struct{}{},
		wal:          w,
		storage:      newMemStorage(),
		machine:      lock.New(),
		confState:    &raftpb.ConfState{},
		waiters:      map[uint64]*waiter{},
		membersDirty: true,
		metrics:      newNodeMetrics(),
	}
	n.awaits.init()
	n.vouchers.init()
	if n.clusterID == 0 {
		n.clusterID = ClusterID(md.Peers)
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
		n.snapLog.restored(snap)
		n.auth.Store(n.machine.Auth())
		n.restoreConfState(snap.GetMetadata().GetConfState())
		// Entries after the snapshot are applied again, and their events
		// published again; those before it are gone.
		n.hist.complete = n.applied
	}
	if hs := st.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
		if err := n.storage.SetHardState(hs); err != nil {
			return nil, fmt.Errorf("raftnode: set hard state: %w", err)
		}
	}
	ents := st.Entries
	if mutated(tokenReusedAfterRestart) {
		ents = mutantForgetUncommitted(st)
	}
	if err := n.storage.Append(ents); err != nil {
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
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{n.log},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("raftnode: new raw node: %w", err)
	}
	n.rn = rn
	last, _ := n.storage.LastIndex()
	n.durable = last
	if last == 0 && md.Join {
		n.log.Info("joining a running cluster: waiting for the leader's log", "cluster_id", fmt.Sprintf("%x", n.clusterID))
	} else if last == 0 {
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
	if n.memberSet.Load() == nil {
		n.refreshMemberSet()
	}
	// The log's tail past the snapshot is applied again from here: the
	// members its configuration changes add are trusted meanwhile
	// (vouch.go).
	n.trustLogged(ents)
	n.publishStatus()
	return n, nil
}

// ID returns this member's ID.
func (n *Node) ID() uint64 { return n.id }

// Peers returns a copy of the cluster's members as this node last applied
// them: ID → peer URL (see PeerURLs).
func (n *Node) Peers() map[uint64]string { return n.PeerURLs() }

// ClusterID returns the cluster's ID, fixed when the cluster was created:
// members of different clusters refuse each other's messages.
func (n *Node) ClusterID() uint64 { return n.clusterID }

// Done is closed when Run has returned.
func (n *Node) Done() <-chan struct{} { return n.doneC }

// Run drives the node until ctx ends (it returns nil) or storage fails (it
// returns the error). t carries messages to the other members; Run adds
// them to it. Before it returns, Run waits for a snapshot being written in
// the background (it is then not recorded, and a restart ignores its file)
// and closes the WAL. Run may be called once.
//
// Run is the product's driver of the loop (see loop.go): it turns its
// channels and its ticker into inputs for iterate, and runs snapshot jobs
// on goroutines. The simulation tests drive the same loop with inputs of
// their own choosing.
func (n *Node) Run(ctx context.Context, t Transport) (err error) {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("raftnode: Run called twice")
	}
	n.transport = t
	if asker, ok := t.(ClusterAsker); ok {
		go n.runVouchers(asker)
	}
	defer func() {
		n.failAll(ErrStopped)
		n.abandonSnapshot()
		n.freshWG.Wait()
		if cerr := n.wal.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("raftnode: close wal: %w", cerr)
		}
		st := *n.status.Load()
		st.Ready = false
		n.status.Store(&st)
		close(n.doneC)
		n.closeSubscribers()
		n.awaits.stop()
	}()
	n.syncTransport()
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
	fail := func(err error) error {
		n.log.Error("node stopped", "err", err)
		return err
	}
	if err := n.start(); err != nil {
		return fail(err)
	}
	n.runSnapshotJob()
	n.sendFreshSnaps()
	// deferT ends the deferral of queue joins (deferJoin): armed when
	// the loop holds some back.
	deferT := time.NewTimer(JoinDeferral)
	deferT.Stop()
	defer deferT.Stop()
	deferArmed := false
	for {
		if len(n.deferred) > 0 && !deferArmed {
			deferT.Reset(JoinDeferral)
			deferArmed = true
		}
		var in input
		select {
		case <-ctx.Done():
			n.log.Info("stopping")
			return nil
		case <-tickC:
			in.tick = true
		case m := <-n.recvC:
			in.msg = m
		case p := <-n.propC:
			in.prop = p
		case ps := <-n.propsC:
			in.props = ps
		case r := <-n.readC:
			in.read = r
		case rep := <-n.reportC:
			in.report = &rep
		case to := <-n.transferC:
			in.transfer = to
		case job := <-n.snapDoneC:
			in.snap = job
		case <-deferT.C:
			deferArmed = false
			in.flush = true
		}
		if err := n.iterate(in, n.nextQueued); err != nil {
			if errors.Is(err, ErrRemoved) {
				n.log.Warn("this member was removed from the cluster: stopping; its data dir must not be used again (add a new member with an empty data dir instead)")
				return err
			}
			return fail(err)
		}
		n.runSnapshotJob()
		n.sendFreshSnaps()
	}
}

// nextQueued returns a proposal, raft message or read already waiting on
// Run's channels, without blocking: the drain source of Run's iterations
// (only inputs that drain, see input.drains).
func (n *Node) nextQueued() (input, bool) {
	select {
	case p := <-n.propC:
		return input{prop: p}, true
	case ps := <-n.propsC:
		return input{props: ps}, true
	case m := <-n.recvC:
		return input{msg: m}, true
	case r := <-n.readC:
		return input{read: r}, true
	default:
		return input{}, false
	}
}

// runSnapshotJob runs the snapshot job the last iteration started, if
// any, on a goroutine of its own, which hands it back on snapDoneC.
func (n *Node) runSnapshotJob() {
	job := n.takeSnapshotJob()
	if job == nil {
		return
	}
	w, doneC, stopC := n.wal, n.snapDoneC, n.doneC
	go func() {
		job.run(w)
		select {
		case doneC <- job:
		case <-stopC:
		}
	}()
}
