package raftnode

// The cluster side of the deterministic simulation (see sim_test.go): the
// scheduler, the simulated nodes with their in-memory disks, the network
// and the fault injector.

import (
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// Simulated time is in microseconds since the start of a run.
const (
	simMs           int64 = 1000
	simSec                = 1000 * simMs
	simTick               = 100 * simMs // the nodes' tick, on a clock of rate 1
	simElectionTick       = 10
	simElection           = simTick * simElectionTick
	// simEpoch is the wall clock of time 0 (Unix ns).
	simEpoch int64 = 1_800_000_000 * 1_000_000_000
	// simMaxRatePPM is the fastest clock rate of a node (+10 %).
	simMaxRatePPM = 1_100_000
)

type simOptions struct {
	seed  uint64
	nodes int
	steps int // scheduler events of the faulty phase
	// trace, when set, receives one line per scheduler decision.
	trace func(string)
	// newCampaignValues makes a client that campaigns again while the
	// outcome of its last campaign is unknown always use a new value (by
	// default it does so one time in four; see simRegressions).
	newCampaignValues bool
	// membership adds an operator that changes the cluster's membership
	// under the faults (sim_membership_test.go).
	membership bool
	// beforeCheck, when set, runs just before the linearizability check
	// (a test changes the history, to see the check fail).
	beforeCheck func(s *sim)
}

// simFailure is a violated check.
type simFailure struct {
	check string // which check
	msg   string
	at    int64 // simulated time
	step  int   // scheduler step
}

func (f *simFailure) String() string {
	return fmt.Sprintf("%s at step %d (t=%.3fs): %s", f.check, f.step, float64(f.at)/float64(simSec), f.msg)
}

type simStats struct {
	deadlocks                                                   int // waiting acquires refused as deadlocks (cluster version 5)
	versionRefused                                              int // proposals refused because the cluster version does not allow them yet
	steps, msgsSent, msgsDelivered, msgsDropped, msgsDuplicated int
	snapshotsSent                                               int // MsgSnap delivered
	// Own snapshots: started; finished by the node before the scheduler
	// delivered them (a leader's snapshot arrived: awaitSnapshot); lost
	// to a crash before (lostEarly) or after (orphaned) the file was
	// written.
	snapStarted, snapAwaited, snapLostEarly, snapOrphaned int
	freshSnaps, freshSnapsLost                            int // Node.sendFreshSnaps: sent, lost to a crash before
	ops, opsUnknown, opsDropped, reads                    int
	readIndexRounds, readIndexRetries                     uint64 // sent by the nodes
	committed                                             uint64
	grants, expiries, elected, leaderTerms                int
	// Of the lock grants: shared ones, and shared ones beside another
	// shared holder. Semaphores: permits granted, waits queued (the
	// semaphore full), permits granted that filled it.
	sharedGrants, sharedTogether, permits, semWaits, semFull int
	// History operations answered: on the shared lock in shared mode,
	// and on semaphores.
	sharedOps, semOps int
	// upgraded counts runs whose cluster version reached
	// lock.MaxCommandVersion.
	upgraded              int
	faults                map[string]int
	linOps, linPartitions int
	healToCommit          int64 // µs from heal to the probe's commit
	simTime               int64 // µs simulated
	// members counts the membership changes and what came of them (see
	// simOperator), by kind.
	members map[string]int
	// msgsUnknownPeer: messages the sender's transport dropped because
	// its node never told it of the addressee (AddPeer) or told it to
	// forget it (RemovePeer), as rafthttp drops them ("unknown remote
	// peer target"), by message type.
	msgsUnknownPeer map[raftpb.MessageType]int
	// msgsWrongURL: messages the sender's transport sent to a member at
	// another URL than the member's (lost: see sentToWrongURL).
	msgsWrongURL int
	// msgsToTrusted: messages sent to a member that the sender's
	// configuration does not list yet, which its transport knows because
	// the node trusts it or it was vouched for (vouch.go).
	msgsToTrusted int
}

func (st *simStats) faultSummary() string {
	keys := make([]string, 0, len(st.faults))
	for k := range st.faults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, st.faults[k])
	}
	return b.String()
}

type simResult struct {
	hash    uint64
	failure *simFailure
	stats   simStats
}

type simEventKind uint8

const (
	evTick simEventKind = iota + 1
	evRun
	evDeliver
	evRequest
	evTimeout
	evClient
	evKeepAlive
	evWaitEnd
	evNemesis
	evHeal
	evRestart
	evResume
	evRevive
	evProbe
	evFunc
	evCrash
	evMember // the membership operator acts
)

type simEvent struct {
	at     int64
	seq    uint64
	kind   simEventKind
	node   int
	gen    int
	msg    *raftpb.Message
	from   int
	rq     *simRequest
	client *simClient
	host   *simHost
	w      *simWait
	fn     func()
}

type eventHeap []*simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

type sim struct {
	opt     simOptions
	rng     *rand.Rand
	now     int64
	seq     uint64
	events  eventHeap
	trace   uint64 // hash of every decision so far
	stats   simStats
	failure *simFailure

	nodes []*simNode
	byID  map[uint64]*simNode
	peers map[uint64]string // the initial members
	// urls are the peer URLs of every member ever added (the initial ones
	// included); clusterID is the cluster's, as the initial members
	// compute it.
	urls      map[uint64]string
	clusterID uint64
	op        *simOperator // nil unless opt.membership
	meta      []byte
	net       simNet
	// Per run: how often nodes snapshot, and how much log they keep.
	snapEvery, catchUp uint64
	maxTTL             int64   // µs
	ttls               []int64 // the TTLs clients choose from, µs
	semLimit           int     // the semaphores' limit
	// upgradeAt: until then the nodes' probes report that every member
	// reads command format MaxCommandVersion-1 (an older build), so the
	// cluster version stays below what shared locks and semaphores need.
	upgradeAt int64

	clients  []*simClient
	hosts    []*simHost
	requests []*simRequest // in flight, in the order sent
	waits    []*simWait    // acquires and campaigns waiting for their grant
	ops      []*simOp
	hclock   int64 // the history's clock: one tick per call and return

	chk  *simChecker
	calm bool // faults have stopped (the final phase)
	// probe is the final liveness proposal.
	probe struct {
		started, committedAt int64
		index                uint64
		done                 bool
	}
}

type simNode struct {
	idx  int
	id   uint64
	n    *Node // nil while crashed
	inc  int   // incarnation: bumped by every crash
	disk *memDisk
	// electionTimeout points into raft's state (see raftinternals_test.go).
	electionTimeout *int
	// Clock: wall = epoch + offset + (now × ratePPM / 1e6); the monotonic
	// clock is now × ratePPM / 1e6 (a clock-step fault moves offset only).
	offset  int64 // ns
	ratePPM int64
	period  int64 // µs between ticks: simTick at the node's rate

	inbox       []simInput
	runPending  bool
	pausedUntil int64 // > 0 while paused

	crashAfterAck bool // crash after the next MsgAppResp it sends
	// crashAfterSnapFile: crash once the file of the node's next own
	// snapshot is written, before the loop records it in the WAL.
	crashAfterSnapFile bool
	// acked is the highest index this node acknowledged to a leader
	// (MsgAppResp) and has not since replaced: its log must keep it.
	acked uint64

	chkCommit  uint64 // committed prefix compared up to here
	chkApplied uint64 // state compared at this applied index

	// Membership runs: a node added to the running cluster (its disk's
	// metadata is written when it first starts, with Join); removed: it
	// stopped because it was removed (it applied its removal:
	// knewRemoval, or a peer answered it 410 Gone), and the operator does
	// not start it again (but see restartRemoved).
	joiner, ticking      bool
	removed, knewRemoval bool
	ledRemoved           uint64 // the last term it led after its removal was committed
	// When a leader last sent it a snapshot whose configuration lacks it,
	// and when it last dropped a message from a member of the committed
	// configuration (simKnownBugs).
	refusedSnapAt, droppedMemberAt int64
	// dropping: since when (simulated time) it drops the messages of each
	// member of the committed configuration whose addition it has not
	// applied, since it last took one from it; vouchAsked: when this
	// incarnation last looked up each unknown sender (vouch.go), as
	// runVouchers would (see lookups).
	dropping, vouchAsked map[uint64]int64
	// wrongURL: since when (simulated time) this incarnation's transport
	// sends to each member at a URL that is not the member's, since it
	// last sent to it at its own (see send).
	wrongURL map[uint64]int64
}

// simInput is one item of a node's inbox: a raft message, a client request,
// a transport report or a finished snapshot job, as Run's channels carry
// them. inc is the incarnation of the node that a report is for.
type simInput struct {
	msg    *raftpb.Message
	rq     *simRequest
	report *report
	inc    int
	snap   *snapJob // a snapshot job whose file is written, for finishSnapshot
}

// monoOf is node sn's monotonic clock: simulated time at the node's rate.
func (s *sim) monoOf(sn *simNode) func() time.Duration {
	return func() time.Duration {
		ns := s.now * 1000
		return time.Duration((ns/1_000_000)*sn.ratePPM + (ns%1_000_000)*sn.ratePPM/1_000_000)
	}
}

// clockOf is node sn's wall clock: its monotonic clock from the epoch,
// shifted by its offset (which clock steps change).
func (s *sim) clockOf(sn *simNode) func() time.Time {
	mono := s.monoOf(sn)
	return func() time.Time { return time.Unix(0, simEpoch+sn.offset+int64(mono())) }
}

func newSim(opt simOptions) *sim {
	s := &sim{
		opt:   opt,
		rng:   rand.New(rand.NewPCG(opt.seed, opt.seed^0x5eed_5eed_5eed_5eed)),
		trace: 0xcbf29ce484222325,
		peers: map[uint64]string{},
		byID:  map[uint64]*simNode{},
		urls:  map[uint64]string{},
	}
	s.stats.faults = map[string]int{}
	s.stats.members = map[string]int{}
	s.stats.msgsUnknownPeer = map[raftpb.MessageType]int{}
	s.snapEvery = uint64(10 + s.rng.IntN(120))
	s.catchUp = uint64(1 + s.rng.IntN(int(s.snapEvery)/3+1))
	s.maxTTL = 5 * simSec
	// In half the runs every session has the same TTL: sessions that stop
	// renewing then expire together after a leader change.
	s.ttls = []int64{3 * simSec}
	if s.rng.IntN(2) == 0 {
		s.ttls = []int64{2 * simSec, 3 * simSec, s.maxTTL}
	}
	s.semLimit = [...]int{1, 2, 2, 3}[s.rng.IntN(4)]
	// In a quarter of the runs without membership changes, the cluster
	// is upgraded under load: shared holds and semaphores are refused
	// (cluster_version) until then.
	if !opt.membership && s.rng.IntN(4) == 0 {
		s.upgradeAt = simSec + s.rng.Int64N(10*simSec)
	}
	// Peer URLs of the form a member add accepts (api.ValidatePeerURL):
	// a node hands the transport no other URL of a member it trusts or
	// that was vouched for (vouch.go).
	for i := range opt.nodes {
		id := uint64(i + 1)
		s.peers[id] = fmt.Sprintf("http://peer-%d.sim:2380", id)
	}
	for i := range opt.nodes {
		id := uint64(i + 1)
		meta, err := json.Marshal(metadata{ID: id, Peers: s.peers})
		if err != nil {
			panic(err)
		}
		sn := &simNode{
			idx: i, id: id,
			offset:  int64(s.rng.IntN(600)-300) * 1_000_000,
			ratePPM: int64(2*1_000_000 - simMaxRatePPM + s.rng.IntN(2*(simMaxRatePPM-1_000_000)+1)),
		}
		sn.period = simTick * 1_000_000 / sn.ratePPM
		sn.disk = &memDisk{s: s, sn: sn, meta: meta}
		sn.ticking = true
		s.nodes = append(s.nodes, sn)
		s.byID[id] = sn
		s.urls[id] = s.peers[id]
	}
	s.clusterID = ClusterID(s.peers)
	s.chk = newSimChecker(s)
	s.net.init(s, opt.nodes)
	return s
}

// schedule queues an event at time at (never before now).
func (s *sim) schedule(at int64, ev *simEvent) {
	if at < s.now {
		at = s.now
	}
	s.seq++
	ev.at, ev.seq = at, s.seq
	heap.Push(&s.events, ev)
}

// note hashes a decision into the trace (and prints it with -sim.trace).
func (s *sim) note(kind string, vals ...uint64) {
	h := s.trace
	for i := 0; i < len(kind); i++ {
		h = (h ^ uint64(kind[i])) * 0x100000001b3
	}
	h = mix64(h ^ uint64(s.now))
	for _, v := range vals {
		h = mix64(h ^ v)
	}
	s.trace = h
	if s.opt.trace != nil {
		s.opt.trace(fmt.Sprintf("%10.6f %s %v", float64(s.now)/float64(simSec), kind, vals))
	}
}

func (s *sim) fail(check, format string, args ...any) {
	if s.failure != nil {
		return
	}
	s.failure = &simFailure{check: check, msg: fmt.Sprintf(format, args...), at: s.now, step: s.stats.steps}
}

func (s *sim) fault(kind string, vals ...uint64) {
	s.stats.faults[kind]++
	s.note("fault:"+kind, vals...)
}

// run runs the simulation to its end and returns its result. A panic of
// the code under test (raft's own invariant checks panic) is a failure.
func runSim(opt simOptions) (res simResult) {
	s := newSim(opt)
	defer func() {
		if r := recover(); r != nil {
			s.fail("panic", "%v\n%s", r, debug.Stack())
		}
		s.stats.simTime = s.now
		s.countOps()
		if s.chk.ref.ClusterVersion() == lock.MaxCommandVersion {
			s.stats.upgraded = 1
		}
		res = simResult{hash: s.trace, failure: s.failure, stats: s.stats}
		res.stats.committed = uint64(len(s.chk.clog))
		for _, sn := range s.nodes {
			if sn.n != nil {
				s.countReads(sn)
			}
		}
		res.stats.readIndexRounds, res.stats.readIndexRetries = s.stats.readIndexRounds, s.stats.readIndexRetries
	}()
	s.start()
	for s.stats.steps < opt.steps && s.failure == nil && len(s.events) > 0 {
		s.step()
	}
	if s.failure == nil {
		s.finish()
	}
	if s.failure == nil {
		if opt.beforeCheck != nil {
			opt.beforeCheck(s)
		}
		s.checkHistory()
	}
	return res
}

func (s *sim) start() {
	for _, sn := range s.nodes {
		s.boot(sn)
		s.schedule(int64(s.rng.IntN(int(sn.period))), &simEvent{kind: evTick, node: sn.idx})
	}
	if s.opt.membership {
		s.startOperator()
	}
	if s.upgradeAt > 0 {
		s.schedule(s.upgradeAt, &simEvent{kind: evFunc, fn: s.upgrade})
	}
	nc := 4 + s.rng.IntN(4)
	nh := 1 + s.rng.IntN(nc)
	for i := range nh {
		h := &simHost{s: s, id: i, ka: &simClient{s: s, id: -1 - i, hint: s.rng.IntN(len(s.nodes))}}
		h.ttl = s.ttls[s.rng.IntN(len(s.ttls))]
		s.hosts = append(s.hosts, h)
		s.schedule(int64(s.rng.IntN(int(simSec))), &simEvent{kind: evKeepAlive, host: h})
	}
	for i := range nc {
		h := s.hosts[i%nh]
		c := &simClient{s: s, id: i, host: h, hint: s.rng.IntN(len(s.nodes))}
		c.shared[simSharedLock] = i%2 == 0
		s.clients = append(s.clients, c)
		h.clients = append(h.clients, c)
		s.schedule(int64(s.rng.IntN(int(2*simSec))), &simEvent{kind: evClient, client: c})
	}
	s.schedule(simSec+int64(s.rng.IntN(int(2*simSec))), &simEvent{kind: evNemesis})
}

func (s *sim) step() {
	ev := heap.Pop(&s.events).(*simEvent)
	s.now = ev.at
	s.stats.steps++
	s.note("event", uint64(ev.kind), uint64(ev.node), ev.seq)
	switch ev.kind {
	case evTick:
		sn := s.nodes[ev.node]
		s.schedule(s.now+sn.period, &simEvent{kind: evTick, node: sn.idx})
		if sn.n != nil && sn.pausedUntil == 0 {
			s.note("tick", sn.id)
			s.tick(sn)
		}
	case evRun:
		s.runNode(s.nodes[ev.node])
	case evDeliver:
		s.deliver(ev)
	case evRequest:
		s.arrive(ev.rq)
	case evTimeout:
		if !ev.rq.done {
			id := -1 // the final probe has no client
			if ev.rq.c != nil {
				id = ev.rq.c.id
			}
			s.note("timeout", uint64(id))
			s.complete(ev.rq, proposalResult{err: errSimTimeout})
		}
	case evClient:
		ev.client.act()
	case evKeepAlive:
		ev.host.keepAlive()
	case evWaitEnd:
		if !ev.w.done {
			s.note("wait-end", uint64(ev.w.c.id))
			s.endWait(ev.w, false)
		}
	case evNemesis:
		if !s.calm {
			s.nemesis()
			s.schedule(s.now+300*simMs+int64(s.rng.IntN(int(3*simSec))), &simEvent{kind: evNemesis})
		}
	case evHeal:
		if ev.gen == s.net.gen {
			s.fault("heal")
			s.net.heal()
		}
	case evRestart:
		sn := s.nodes[ev.node]
		if sn.n == nil && ev.gen == sn.inc {
			s.fault("restart", sn.id)
			s.boot(sn)
		}
	case evResume:
		sn := s.nodes[ev.node]
		if sn.pausedUntil == ev.at && sn.n != nil && ev.gen == sn.inc {
			s.resume(sn)
		}
	case evRevive:
		ev.client.revive()
	case evProbe:
		s.probeStep()
	case evFunc:
		ev.fn()
	case evCrash:
		if sn := s.nodes[ev.node]; sn.n != nil && sn.inc == ev.gen && !s.calm {
			s.crash(sn)
		}
	case evMember:
		s.op.act()
	}
	if s.opt.membership {
		s.lookups()
	}
}

// ---- nodes

func (s *sim) nodeConfig(sn *simNode) Config {
	cfg := DefaultConfig()
	cfg.ID = sn.id
	cfg.DataDir = fmt.Sprintf("sim-node-%d", sn.id)
	cfg.Peers = s.peers
	cfg.ClientURL = fmt.Sprintf("sim://client-%d", sn.id)
	cfg.ElectionTicks = simElectionTick
	cfg.SnapshotEvery = s.snapEvery
	cfg.SnapshotCatchUp = s.catchUp
	cfg.EventHistory = 64
	cfg.Now = s.clockOf(sn)
	cfg.Monotonic = s.monoOf(sn)
	cfg.Logger = slog.New(slog.DiscardHandler)
	if *simLog {
		// Every node's log, stamped with the simulated time (seconds).
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Float64("t", float64(s.now)/float64(simSec))
			}
			return a
		}}))
	}
	return cfg
}

// boot starts (or restarts) a node from its disk, as New and the start of
// Run do.
func (s *sim) boot(sn *simNode) {
	if sn.disk.meta == nil {
		s.prepareJoin(sn)
	}
	sn.disk.crashNext = false
	sn.disk.lifeRecord = 0
	n, err := newNode(s.nodeConfig(sn), sn.disk, sn.disk.state())
	if err != nil {
		s.fail("restart", "node %d cannot start from its disk: %v", sn.id, err)
		return
	}
	// As Run: the transport of a new process knows no peer until the
	// node tells it its own (syncTransport), before start sends anything.
	n.transport = &simTransport{s: s, sn: sn, inc: sn.inc}
	n.syncTransport()
	sn.n = n
	sn.inbox = nil
	sn.electionTimeout = raftElectionTimeout(n.rn)
	sn.pausedUntil = 0
	sn.chkCommit = 0
	sn.chkApplied = 0
	sn.vouchAsked = nil
	sn.wrongURL = nil
	// The transport's probes would tell it what every member reads:
	// membership changes, shared holds and semaphores need the cluster
	// version they raise.
	for _, o := range s.nodes {
		n.ReportVersion(o.id, s.readsVersion())
	}
	// What the node acknowledged before it crashed is still in its log.
	if last, _ := n.storage.LastIndex(); last < sn.acked {
		s.fail("acked-entries-kept", "node %d restarted with its log ending at %d, but it acknowledged entries up to %d to a leader", sn.id, last, sn.acked)
		return
	}
	s.afterStep(sn, n.start())
}

// readsVersion is the command format that the nodes' probes report every
// member reads: one older than this build's until the run's upgrade.
func (s *sim) readsVersion() int {
	if s.now < s.upgradeAt {
		return lock.MaxCommandVersion - 1
	}
	return lock.MaxCommandVersion
}

// upgrade is the end of a rolling upgrade: every running node's probes
// learn that every member reads this build's command format.
func (s *sim) upgrade() {
	s.note("upgrade")
	for _, sn := range s.nodes {
		if sn.n == nil {
			continue
		}
		for _, o := range s.nodes {
			sn.n.ReportVersion(o.id, lock.MaxCommandVersion)
		}
	}
}

// tick is one iteration of the node's loop for a tick.
func (s *sim) tick(sn *simNode) {
	s.setElectionTimeout(sn)
	s.iterate(sn, input{tick: true}, nil)
}

// iterate runs one iteration of the node's loop (Node.iterate, as Run
// does) and then runs every check.
func (s *sim) iterate(sn *simNode, in input, next func() (input, bool)) {
	s.afterStep(sn, sn.n.iterate(in, next))
}

// afterStep does what Run does after an iteration (start the snapshot job
// the loop started, here at steps the scheduler chooses) and runs every
// check; err is the iteration's.
func (s *sim) afterStep(sn *simNode, err error) {
	if err != nil {
		s.nodeError(sn, err)
		return
	}
	if job := sn.n.takeSnapshotJob(); job != nil {
		s.startSnapshot(sn, sn.inc, job)
	}
	for _, f := range sn.n.takeFreshSnaps() {
		s.sendFreshSnap(sn, sn.inc, f)
	}
	s.afterActivation(sn)
}

func (s *sim) nodeError(sn *simNode, err error) {
	if errors.Is(err, errSimCrash) {
		s.crash(sn)
		return
	}
	if errors.Is(err, ErrRemoved) && s.opt.membership {
		s.removedStop(sn)
		return
	}
	s.fail("node-error", "node %d stopped: %v", sn.id, err)
}

// runNode hands the node's inbox to its loop, one iteration at a time, as
// Run hands its channels: the node itself (Node.iterate) decides which
// inputs it takes together.
func (s *sim) runNode(sn *simNode) {
	sn.runPending = false
	for len(sn.inbox) > 0 && sn.n != nil && sn.pausedUntil == 0 && s.failure == nil {
		in, ok := s.takeInput(sn, false)
		if !ok {
			continue
		}
		s.iterate(sn, in, func() (input, bool) { return s.takeInput(sn, true) })
	}
	if len(sn.inbox) == 0 {
		sn.inbox = nil
	}
}

// takeInput takes the head of the node's inbox as an input of its loop.
// With drainOnly it takes it only if it drains (input.drains), as Run's
// drain takes only proposals and messages. It skips what is void: a
// request that ended meanwhile, a report for an earlier incarnation (ok is
// false when nothing was taken).
func (s *sim) takeInput(sn *simNode, drainOnly bool) (input, bool) {
	for len(sn.inbox) > 0 {
		item := sn.inbox[0]
		var in input
		switch {
		case item.report != nil:
			if item.inc != sn.inc {
				sn.inbox = sn.inbox[1:]
				continue
			}
			in.report = item.report
		case item.snap != nil:
			in.snap = item.snap
		case item.msg != nil:
			in.msg = item.msg
		case item.rq.done:
			sn.inbox = sn.inbox[1:]
			continue
		default:
			in = s.requestInput(item.rq)
		}
		if drainOnly && !in.drains() {
			return input{}, false
		}
		sn.inbox = sn.inbox[1:]
		switch {
		case in.msg != nil:
			s.hashMessage("step", in.msg)
		case in.snap != nil:
			s.note("snap-finish", sn.id, in.snap.index)
		case item.rq != nil:
			item.rq.handed = true
		}
		return in, true
	}
	return input{}, false
}

func (s *sim) enqueue(sn *simNode, in simInput) {
	sn.inbox = append(sn.inbox, in)
	if !sn.runPending && sn.pausedUntil == 0 {
		sn.runPending = true
		s.schedule(s.now+int64(s.rng.IntN(300)), &simEvent{kind: evRun, node: sn.idx})
	}
}

func (s *sim) crash(sn *simNode) {
	s.note("crash", sn.id)
	s.halt(sn)
	if !s.calm {
		s.schedule(s.now+200*simMs+s.rng.Int64N(5*simSec), &simEvent{kind: evRestart, node: sn.idx, gen: sn.inc})
	}
	s.abandon(sn)
}

// halt takes node sn down: its incarnation ends with everything in its
// memory.
func (s *sim) halt(sn *simNode) {
	s.countReads(sn)
	sn.n = nil
	sn.inc++
	sn.inbox = nil
	sn.pausedUntil = 0
	sn.crashAfterAck = false
	sn.crashAfterSnapFile = false
}

// abandon ends what the clients had in flight at node sn, which went
// down.
func (s *sim) abandon(sn *simNode) {
	// Requests in flight at the node: those it took may or may not have
	// happened; the others were never seen (the connection is refused).
	for _, rq := range slices.Clone(s.requests) {
		if rq.node == sn.idx && !rq.done {
			if rq.handed {
				s.complete(rq, proposalResult{err: errSimCrashed})
			} else {
				s.complete(rq, proposalResult{err: errSimRefused})
			}
		}
	}
	for _, w := range slices.Clone(s.waits) {
		if w.node == sn.idx && !w.done {
			s.endWait(w, false)
		}
	}
}

// countReads adds the ReadIndex requests node sn sent (and sent again) to
// the run's statistics; call it once per incarnation, when it ends.
func (s *sim) countReads(sn *simNode) {
	st := sn.n.Status()
	s.stats.readIndexRounds += st.ReadIndexRounds
	s.stats.readIndexRetries += st.ReadIndexRetries
}

// startSnapshot stands in for the goroutine of a node's snapshot job (see
// snapshot.go): the job's file is written at a later step, and the job
// reaches the loop as an input after that, as on Run's snapDoneC. The node
// keeps serving meanwhile. A crash before the file step loses the job; one
// between the two steps leaves a snap file without a record. A crash
// inside the file write (crashNext) takes the node down at once.
// sendFreshSnap stands in for Run's goroutine of a fresh snapshot
// (Node.sendFreshSnaps): it encodes the capture and sends the message at a
// later step the scheduler chooses, unless the node crashed or stopped
// meanwhile (the goroutine dies with the process).
func (s *sim) sendFreshSnap(sn *simNode, inc int, f *freshSnap) {
	s.schedule(s.now+s.rng.Int64N(100*simMs), &simEvent{kind: evFunc, fn: func() {
		if sn.n == nil || sn.inc != inc {
			s.stats.freshSnapsLost++
			return
		}
		s.stats.freshSnaps++
		f.encode()
		sn.n.transport.Send([]*raftpb.Message{f.msg})
	}})
}

func (s *sim) startSnapshot(sn *simNode, inc int, job *snapJob) {
	s.note("snap-start", sn.id, job.index)
	s.stats.snapStarted++
	alive := func() bool { return sn.n != nil && sn.inc == inc && sn.n.snapJob == job }
	lost := func(orphan bool) {
		switch {
		case sn.inc == inc:
			s.stats.snapAwaited++
		case orphan:
			s.stats.snapOrphaned++
		default:
			s.stats.snapLostEarly++
		}
	}
	s.schedule(s.now+s.rng.Int64N(200*simMs), &simEvent{kind: evFunc, fn: func() {
		if !alive() {
			lost(false)
			return
		}
		s.note("snap-file", sn.id, job.index)
		job.run(sn.disk)
		if errors.Is(job.err, errSimCrash) {
			s.crash(sn)
			return
		}
		if sn.crashAfterSnapFile && job.err == nil {
			// The file is durable, its WAL record not written.
			sn.crashAfterSnapFile = false
			s.stats.snapOrphaned++
			s.crash(sn)
			return
		}
		s.schedule(s.now+s.rng.Int64N(2*simMs), &simEvent{kind: evFunc, fn: func() {
			if alive() {
				s.enqueue(sn, simInput{snap: job})
			} else {
				lost(true)
			}
		}})
	}})
}

func (s *sim) pause(sn *simNode, d int64) {
	sn.pausedUntil = s.now + d
	s.schedule(sn.pausedUntil, &simEvent{kind: evResume, node: sn.idx, gen: sn.inc})
}

func (s *sim) resume(sn *simNode) {
	s.note("resume", sn.id)
	sn.pausedUntil = 0
	// The ticker's channel holds one tick across the pause.
	s.tick(sn)
	if sn.n != nil && len(sn.inbox) > 0 && !sn.runPending {
		sn.runPending = true
		s.schedule(s.now, &simEvent{kind: evRun, node: sn.idx})
	}
}

func (s *sim) down() int {
	d := 0
	for _, sn := range s.nodes {
		if sn.n == nil || sn.pausedUntil != 0 {
			d++
		}
	}
	return d
}

// leader returns the node that believes it leads with the highest term, or
// nil.
func (s *sim) leader() *simNode {
	var best *simNode
	var bestTerm uint64
	for _, sn := range s.nodes {
		if sn.n == nil {
			continue
		}
		st := sn.n.rn.BasicStatus()
		if st.RaftState != raft.StateLeader {
			continue
		}
		if best == nil || st.GetTerm() > bestTerm {
			best, bestTerm = sn, st.GetTerm()
		}
	}
	return best
}

func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// setElectionTimeout replaces raft's randomised election timeout (drawn
// from crypto/rand) with one derived from the seed and the node's state,
// before every tick, so that a seed replays exactly.
func (s *sim) setElectionTimeout(sn *simNode) {
	st := sn.n.rn.BasicStatus()
	h := mix64(s.opt.seed ^ mix64(sn.id<<32|uint64(sn.inc)) ^ mix64(st.GetTerm()<<8|uint64(st.RaftState)) ^ mix64(st.Lead+7))
	*sn.electionTimeout = simElectionTick + int(h%simElectionTick)
}

// ---- disk

var (
	errSimCrash   = errors.New("simulation: crashed during a save")
	errSimCrashed = errors.New("simulation: the node crashed")
	errSimRefused = errors.New("simulation: connection refused")
	errSimTimeout = errors.New("simulation: request timed out")
)

// memDisk is a Durable in memory with the recovery rules of wal.Log: what
// Save, SaveSnapshotFile and SaveSnapshotRecord returned nil for survives a
// crash; a restart uses the newest snapshot record whose index the saved
// hard state commits, with its file (a snap file without a record is
// ignored; a record without its file fails the run), and the saved entries
// after it (a later save overwrites a suffix). With crashNext, the next
// save that has something to write is torn: a prefix of its entries
// reaches the disk, its hard state does not, and the node crashes; a torn
// snap file is never used.
type memDisk struct {
	s         *sim
	sn        *simNode
	meta      []byte
	hs        *raftpb.HardState
	snaps     []*raftpb.SnapshotMetadata      // the snapshot records, oldest first
	files     map[simSnapKey]*raftpb.Snapshot // the snap files
	first     uint64                          // index of ents[0]
	ents      []*raftpb.Entry
	stale     uint64 // saved entries up to here may be stale
	crashNext bool
	// lifeRecord is the index of the last snapshot record saved since the
	// node (re)started: its records must increase.
	lifeRecord uint64
}

// simSnapKey names a snap file, as wal.Log's term-index.snap.
type simSnapKey struct{ term, index uint64 }

func snapKey(md *raftpb.SnapshotMetadata) simSnapKey {
	return simSnapKey{md.GetTerm(), md.GetIndex()}
}

func (d *memDisk) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	empty := hs == nil || raft.IsEmptyHardState(hs)
	if d.crashNext && (!empty || len(ents) > 0) {
		d.crashNext = false
		k := d.s.rng.IntN(len(ents) + 1)
		d.s.note("torn-save", uint64(k), uint64(len(ents)))
		d.append(ents[:k])
		return errSimCrash
	}
	d.append(ents)
	if !empty {
		d.hs = proto.Clone(hs).(*raftpb.HardState)
	}
	return nil
}

func (d *memDisk) append(ents []*raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	i0 := ents[0].GetIndex()
	last := d.first + uint64(len(d.ents)) - 1
	if d.sn != nil && len(d.ents) > 0 && i0 <= last {
		// Raft replaced a suffix (a new leader's log differs): what was
		// acknowledged beyond the new end is void.
		d.sn.acked = min(d.sn.acked, ents[len(ents)-1].GetIndex())
	}
	if len(d.ents) == 0 || i0 < d.first || i0 > last+1 {
		// A snapshot covers what is before i0.
		d.first = i0
		d.ents = append([]*raftpb.Entry(nil), ents...)
		return
	}
	d.ents = append(d.ents[:i0-d.first], ents...)
}

func (d *memDisk) SaveSnapshotFile(sn *raftpb.Snapshot) error {
	if d.crashNext {
		d.crashNext = false
		d.s.note("torn-snapshot-file", sn.GetMetadata().GetIndex())
		return errSimCrash
	}
	if d.files == nil {
		d.files = map[simSnapKey]*raftpb.Snapshot{}
	}
	d.files[snapKey(sn.GetMetadata())] = sn
	return nil
}

func (d *memDisk) SaveSnapshotRecord(sn *raftpb.Snapshot) error {
	md := sn.GetMetadata()
	if d.crashNext {
		d.crashNext = false
		d.s.note("torn-snapshot-record", md.GetIndex())
		return errSimCrash
	}
	if d.files[snapKey(md)] == nil {
		return fmt.Errorf("snapshot record at %d (term %d) before its snap file", md.GetIndex(), md.GetTerm())
	}
	if md.GetIndex() <= d.lifeRecord {
		// Across a restart they may go back (a leader's snapshot
		// recorded before a crash, its index never committed).
		return fmt.Errorf("snapshot record at %d after one at %d by the same incarnation", md.GetIndex(), d.lifeRecord)
	}
	d.lifeRecord = md.GetIndex()
	d.snaps = append(d.snaps, proto.Clone(md).(*raftpb.SnapshotMetadata))
	if e := d.entry(md.GetIndex()); e == nil || e.GetTerm() != md.GetTerm() {
		// A snapshot from the leader that replaced this node's log: the
		// saved entries up to it may be stale.
		d.stale = max(d.stale, md.GetIndex())
	}
	if len(d.snaps) > 4 {
		d.snaps = slices.Delete(d.snaps, 0, 1)
		// As wal.Log purges: files older than every kept record go.
		oldest := d.snaps[0].GetIndex()
		for _, r := range d.snaps {
			oldest = min(oldest, r.GetIndex())
		}
		for k := range d.files {
			if k.index < oldest {
				delete(d.files, k)
			}
		}
	}
	return nil
}

func (d *memDisk) Close() error { return nil }

// entry returns the saved entry at index i, or nil.
func (d *memDisk) entry(i uint64) *raftpb.Entry {
	if len(d.ents) == 0 || i < d.first || i >= d.first+uint64(len(d.ents)) {
		return nil
	}
	return d.ents[i-d.first]
}

// state is what wal.Open would return after a crash.
func (d *memDisk) state() *wal.State {
	st := &wal.State{Metadata: d.meta, Created: d.hs == nil && len(d.ents) == 0}
	if d.hs != nil {
		st.HardState = proto.Clone(d.hs).(*raftpb.HardState)
	}
	commit := d.hs.GetCommit()
	var si uint64
	for i := len(d.snaps) - 1; i >= 0; i-- {
		if idx := d.snaps[i].GetIndex(); idx <= commit {
			st.Snapshot = d.files[snapKey(d.snaps[i])]
			if st.Snapshot == nil {
				d.s.fail("snapshot-file", "node %d: the snapshot record at %d has no snap file", d.sn.id, idx)
			}
			si = idx
			break
		}
	}
	for _, e := range d.ents {
		if e.GetIndex() > si {
			st.Entries = append(st.Entries, e)
		}
	}
	return st
}

// ---- network

type simNet struct {
	s   *sim
	cut [][]bool // cut[from][to]: messages are lost
	gen int      // bumped by every partition and heal
	// Per-message fates, in parts per million.
	dropPPM, dupPPM, spikePPM int
	delayMin, delayMax        int64 // µs
}

func (nw *simNet) init(s *sim, n int) {
	nw.s = s
	nw.cut = make([][]bool, n)
	for i := range nw.cut {
		nw.cut[i] = make([]bool, n)
	}
	nw.delayMin, nw.delayMax = 100, 2*simMs
}

// grow adds a node to the network, connected to every other.
func (nw *simNet) grow() {
	for i := range nw.cut {
		nw.cut[i] = append(nw.cut[i], false)
	}
	nw.cut = append(nw.cut, make([]bool, len(nw.cut)+1))
}

func (nw *simNet) heal() {
	nw.gen++
	for i := range nw.cut {
		clear(nw.cut[i])
	}
}

// simTransport is the sending side of one incarnation of a node, with
// rafthttp's rule of who it sends to: the peers its node told it of
// (AddPeer, until RemovePeer), each at the URL it was told. It starts
// empty, as a new process's transport does (Run's syncTransport, which
// boot calls as Run does, adds the node's configuration before anything
// is sent). A message to any other ID is dropped and counted
// (msgsUnknownPeer), silently: rafthttp reports no unreachable peer and
// no snapshot failure for an ID it does not know. Send hands every other
// message to the scheduler, which decides its fate.
type simTransport struct {
	s   *sim
	sn  *simNode
	inc int
	// peers: ID → the URL of its AddPeer. A second AddPeer of a known ID
	// changes nothing (HTTPTransport's AddPeer returns when rafthttp has
	// the peer): a new URL takes RemovePeer first.
	peers map[uint64]string
}

func (t *simTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		url, ok := t.peers[m.GetTo()]
		if !ok {
			t.s.stats.msgsSent++
			t.s.stats.msgsUnknownPeer[m.GetType()]++
			t.s.note("unknown-peer", t.sn.id, m.GetTo(), uint64(m.GetType()))
			continue
		}
		if n := t.sn.n; n != nil && !n.memberSet.Load().ids[m.GetTo()] {
			t.s.stats.msgsToTrusted++
		}
		t.s.send(t.sn, m, url)
	}
}

func (t *simTransport) AddPeer(id uint64, url string) {
	if t.peers == nil {
		t.peers = map[uint64]string{}
	}
	if _, ok := t.peers[id]; !ok {
		t.peers[id] = url
	}
}

func (t *simTransport) RemovePeer(id uint64) { delete(t.peers, id) }
func (t *simTransport) Stop()                {}

// send hands message m, which node from's transport sends to peer URL
// url, to the scheduler.
func (s *sim) send(from *simNode, m *raftpb.Message, url string) {
	s.stats.msgsSent++
	dst := s.byID[m.GetTo()]
	if dst == nil && s.opt.membership && from.n != nil && from.n.IsMember(m.GetTo()) {
		// A member the sender applied the addition of, before the
		// checker saw the entry committed.
		dst = s.memberNode(m.GetTo(), url)
	}
	if dst == nil || dst == from {
		s.fail("transport", "node %d sends %v to unknown member %d", from.id, m.GetType(), m.GetTo())
		return
	}
	if url != s.urls[dst.id] {
		// rafthttp sends it to whoever serves url, not to member dst,
		// whose peer URL is another (a member's URL is fixed when it is
		// added): the message is lost.
		s.stats.msgsWrongURL++
		s.note("wrong-url", from.id, dst.id, uint64(m.GetType()))
		s.sentToWrongURL(from, dst, m, url)
		return
	}
	delete(from.wrongURL, dst.id)
	to := dst.idx
	if s.opt.membership && m.GetType() == raftpb.MsgSnap {
		s.snapshotTo(from, dst, m)
	}
	nw := &s.net
	lost := nw.cut[from.idx][to]
	if !lost && nw.dropPPM > 0 && s.rng.IntN(1_000_000) < nw.dropPPM {
		lost = true
	}
	if lost {
		s.stats.msgsDropped++
		s.note("drop", from.id, uint64(to+1), uint64(m.GetType()))
		if m.GetType() == raftpb.MsgSnap {
			s.report(from, report{peer: m.GetTo(), snapshot: true, status: raft.SnapshotFailure})
		}
		if nw.cut[from.idx][to] {
			s.report(from, report{peer: m.GetTo()})
		}
		return
	}
	if m.GetType() == raftpb.MsgAppResp && !m.GetReject() {
		from.acked = max(from.acked, m.GetIndex())
	}
	if from.crashAfterAck && m.GetType() == raftpb.MsgAppResp && !m.GetReject() {
		from.crashAfterAck = false
		s.schedule(s.now, &simEvent{kind: evCrash, node: from.idx, gen: from.inc})
	}
	copies := 1
	if nw.dupPPM > 0 && s.rng.IntN(1_000_000) < nw.dupPPM {
		copies = 2
		s.stats.msgsDuplicated++
	}
	for range copies {
		d := nw.delayMin + s.rng.Int64N(nw.delayMax-nw.delayMin+1)
		if nw.spikePPM > 0 && s.rng.IntN(1_000_000) < nw.spikePPM {
			d += 50*simMs + s.rng.Int64N(400*simMs)
		}
		// Every delivery gets its own copy, as a real transport decodes
		// one: raft may keep or change what it is given.
		s.schedule(s.now+d, &simEvent{kind: evDeliver, node: to, from: from.idx, gen: from.inc,
			msg: proto.Clone(m).(*raftpb.Message)})
	}
}

// sentToWrongURL records that node from's transport sent m to member dst
// at url, which is not dst's peer URL. A node may hand its transport a URL
// from its own log that a later entry replaces (an addition that never
// committed, its ID then given to another URL): it must learn the right
// one. Once the faults stopped, a node that still sends to a member at a
// wrong URL simDropGrace after it began to fails transport-url: its
// answers never reach that member, which cannot replicate to it if it
// leads.
func (s *sim) sentToWrongURL(from, dst *simNode, m *raftpb.Message, url string) {
	if from.wrongURL == nil {
		from.wrongURL = map[uint64]int64{}
	}
	since, ok := from.wrongURL[dst.id]
	if !ok {
		since = s.now
		from.wrongURL[dst.id] = since
	}
	if !s.calm || s.now-max(since, s.probe.started) <= simDropGrace {
		return
	}
	s.knownBug("transport-url", true, "node %d still sends %v to member %d at %q, %v after the faults stopped, but member %d's peer URL is %q",
		from.id, m.GetType(), dst.id, url, time.Duration(s.now-max(since, s.probe.started))*time.Microsecond, dst.id, s.urls[dst.id])
}

// report queues a transport report for the node's loop, as Node.report
// does, if that incarnation still runs.
func (s *sim) report(sn *simNode, r report) {
	if sn.n == nil {
		return
	}
	s.enqueue(sn, simInput{report: &r, inc: sn.inc})
}

func (s *sim) deliver(ev *simEvent) {
	sn := s.nodes[ev.node]
	m := ev.msg
	from := s.nodes[ev.from]
	if sn.n == nil {
		s.note("lost", sn.id, uint64(m.GetType()))
		if m.GetType() == raftpb.MsgSnap && from.inc == ev.gen {
			s.report(from, report{peer: m.GetTo(), snapshot: true, status: raft.SnapshotFailure})
		}
		return
	}
	if !s.accept(sn, from, ev.gen, m) {
		return
	}
	s.stats.msgsDelivered++
	if m.GetType() == raftpb.MsgSnap {
		s.stats.snapshotsSent++
	}
	s.hashMessage("deliver", m)
	s.enqueue(sn, simInput{msg: m})
	if m.GetType() == raftpb.MsgSnap && from.inc == ev.gen {
		s.report(from, report{peer: m.GetTo(), snapshot: true, status: raft.SnapshotFinish})
	}
}

func (s *sim) hashMessage(what string, m *raftpb.Message) {
	var last uint64
	if k := len(m.GetEntries()); k > 0 {
		last = m.GetEntries()[k-1].GetIndex()
	}
	rej := uint64(0)
	if m.GetReject() {
		rej = 1
	}
	s.note(what, m.GetFrom(), m.GetTo(), uint64(m.GetType()), m.GetTerm(), m.GetIndex(), m.GetLogTerm(),
		m.GetCommit(), uint64(len(m.GetEntries())), last, rej)
}

// ---- faults

// nemesis injects one fault, chosen at random.
func (s *sim) nemesis() {
	r := s.rng.IntN(100)
	n := len(s.nodes)
	up := func() []*simNode {
		var out []*simNode
		for _, sn := range s.nodes {
			if sn.n != nil && sn.pausedUntil == 0 {
				out = append(out, sn)
			}
		}
		return out
	}
	// Most of the time a majority stays up, so that work gets done.
	down, voters := s.down(), n
	if s.opt.membership {
		down, voters = s.votersDown()
	}
	mayTakeDown := down < (voters-1)/2 || s.rng.IntN(10) == 0
	pick := func(preferLeader bool) *simNode {
		if preferLeader {
			if l := s.leader(); l != nil && l.pausedUntil == 0 {
				return l
			}
		}
		u := up()
		if len(u) == 0 {
			return nil
		}
		return u[s.rng.IntN(len(u))]
	}
	switch {
	case r < 10: // message loss
		s.net.dropPPM = []int{0, 0, 10_000, 50_000, 200_000}[s.rng.IntN(5)]
		s.fault("drop-rate", uint64(s.net.dropPPM))
	case r < 16:
		s.net.dupPPM = []int{0, 10_000, 50_000}[s.rng.IntN(3)]
		s.fault("duplicate-rate", uint64(s.net.dupPPM))
	case r < 24: // latency, and with it reordering
		switch s.rng.IntN(3) {
		case 0:
			s.net.delayMin, s.net.delayMax, s.net.spikePPM = 100, 2*simMs, 0
		case 1:
			s.net.delayMin, s.net.delayMax, s.net.spikePPM = simMs, 30*simMs, 0
		default:
			s.net.delayMin, s.net.delayMax, s.net.spikePPM = 500, 10*simMs, 20_000
		}
		s.fault("delay", uint64(s.net.delayMin), uint64(s.net.delayMax), uint64(s.net.spikePPM))
	case r < 46: // partitions
		s.net.heal()
		kind := s.rng.IntN(4)
		switch kind {
		case 0: // symmetric: a random split
			side := make([]bool, n)
			for i := range side {
				side[i] = s.rng.IntN(2) == 0
			}
			for i := range n {
				for j := range n {
					s.net.cut[i][j] = side[i] != side[j]
				}
			}
			s.fault("partition-split")
		case 1: // one way
			for range 1 + s.rng.IntN(2) {
				i, j := s.rng.IntN(n), s.rng.IntN(n)
				if i != j {
					s.net.cut[i][j] = true
				}
			}
			s.fault("partition-one-way")
		case 2: // the leader alone
			l := pick(true)
			if l == nil {
				return
			}
			for j := range n {
				if j != l.idx {
					s.net.cut[l.idx][j], s.net.cut[j][l.idx] = true, true
				}
			}
			s.fault("partition-isolate-leader", l.id)
		default: // a bridge: two halves that only one node connects
			b := s.rng.IntN(n)
			side := make([]bool, n)
			for i := range side {
				side[i] = s.rng.IntN(2) == 0
			}
			for i := range n {
				for j := range n {
					if i != b && j != b && side[i] != side[j] {
						s.net.cut[i][j] = true
					}
				}
			}
			s.fault("partition-bridge", uint64(b+1))
		}
		s.schedule(s.now+500*simMs+s.rng.Int64N(6*simSec), &simEvent{kind: evHeal, gen: s.net.gen})
	case r < 50:
		s.net.heal()
		s.net.dropPPM, s.net.dupPPM, s.net.spikePPM = 0, 0, 0
		s.fault("heal")
	case r < 64: // crash and restart
		if !mayTakeDown {
			return
		}
		sn := pick(s.rng.IntN(2) == 0)
		if sn == nil {
			return
		}
		switch s.rng.IntN(5) {
		case 0:
			// Torn: the node dies inside its next save.
			sn.disk.crashNext = true
			s.fault("crash-in-save", sn.id)
		case 1:
			// The node dies right after it acknowledges entries, before
			// it learns that they are committed.
			sn.crashAfterAck = true
			s.fault("crash-after-ack", sn.id)
		case 4:
			// Between the file of its next snapshot and the WAL record.
			sn.crashAfterSnapFile = true
			s.fault("crash-after-snap-file", sn.id)
		default:
			s.fault("crash", sn.id)
			s.crash(sn)
		}
	case r < 78: // pauses, some longer than a session TTL
		if !mayTakeDown {
			return
		}
		sn := pick(s.rng.IntN(2) == 0)
		if sn == nil {
			return
		}
		if s.rng.IntN(2) == 0 {
			d := s.maxTTL + 500*simMs + s.rng.Int64N(s.maxTTL)
			s.fault("pause-long", sn.id, uint64(d))
			s.pause(sn, d)
		} else {
			d := 50*simMs + s.rng.Int64N(1500*simMs)
			s.fault("pause", sn.id, uint64(d))
			s.pause(sn, d)
		}
	case r < 84: // leader transfer
		l := s.leader()
		if l == nil || l.pausedUntil != 0 {
			return
		}
		t := s.nodes[s.rng.IntN(n)]
		if t == l {
			return
		}
		s.fault("transfer-leader", l.id, t.id)
		s.iterate(l, input{transfer: t.id}, nil)
	case r < 94: // a client host crashes, preferably one whose clients hold and wait for the same lock
		h := s.hosts[s.rng.IntN(len(s.hosts))]
		if s.rng.IntN(4) != 0 {
			for _, o := range s.hosts {
				if o.holdsAndWaits() {
					h = o
					break
				}
			}
		}
		s.fault("client-host-crash", uint64(h.id))
		h.crash()
	case r < 97: // the wall clock of a node (preferably the leader) steps an hour
		sn := pick(s.rng.IntN(4) != 0)
		if sn == nil {
			return
		}
		step := int64(time.Hour)
		if s.rng.IntN(2) == 0 {
			step = -step
		}
		sn.offset += step
		s.fault("clock-step", sn.id, uint64(step))
	default: // quiet
		s.note("quiet")
	}
}

// finish stops every fault, restarts and resumes every node, and checks
// that the cluster then commits a new proposal within 10 election timeouts
// and that every node applies it.
func (s *sim) finish() {
	s.calm = true
	s.note("calm")
	s.net.heal()
	s.net.dropPPM, s.net.dupPPM, s.net.spikePPM = 0, 0, 0
	s.net.delayMin, s.net.delayMax = 100, 2*simMs
	for _, sn := range s.nodes {
		sn.disk.crashNext = false
		sn.crashAfterAck = false
		sn.crashAfterSnapFile = false
		if s.opt.membership && !s.chk.isMember(sn.id) {
			// Removed: it stays down, or it runs until it learns.
			if sn.n != nil && sn.pausedUntil != 0 {
				s.resume(sn)
			}
			continue
		}
		if sn.n == nil {
			s.boot(sn)
		} else if sn.pausedUntil != 0 {
			s.resume(sn)
		}
		if s.failure != nil {
			return
		}
	}
	healed := s.now
	s.probe.started = s.now
	s.schedule(s.now, &simEvent{kind: evProbe})
	deadline := healed + 10*simElection
	for s.failure == nil && !s.probe.done && len(s.events) > 0 && s.now <= deadline {
		s.step()
	}
	if s.failure != nil {
		return
	}
	if !s.probe.done {
		s.fail("liveness", "no proposal committed within 10 election timeouts after every fault stopped")
		return
	}
	s.stats.healToCommit = s.probe.committedAt - healed
	deadline = s.now + 10*simElection
	for s.failure == nil && len(s.events) > 0 && s.now <= deadline {
		if s.allApplied(s.probe.index) {
			break
		}
		s.step()
	}
	if s.failure == nil && !s.allApplied(s.probe.index) {
		var b strings.Builder
		for _, sn := range s.nodes {
			if s.opt.membership && !s.chk.isMember(sn.id) {
				continue
			}
			if sn.n == nil {
				fmt.Fprintf(&b, " node %d down;", sn.id)
				continue
			}
			fmt.Fprintf(&b, " node %d applied %d;", sn.id, sn.n.applied)
		}
		s.fail("liveness", "not every node applied index %d within 10 election timeouts of its commit:%s", s.probe.index, b.String())
	}
	if s.failure == nil && s.opt.membership {
		for _, sn := range s.nodes {
			if s.chk.isMember(sn.id) && s.stuckByKnownBug(sn) {
				s.stats.members["known-bug:stuck-at-end"]++
			}
		}
		s.removedStopped()
	}
	s.chk.finalAcks()
}

func (s *sim) allApplied(idx uint64) bool {
	for _, sn := range s.nodes {
		if s.opt.membership && (!s.chk.isMember(sn.id) || s.stuckByKnownBug(sn)) {
			continue
		}
		if sn.n == nil || sn.n.applied < idx {
			return false
		}
	}
	return true
}
