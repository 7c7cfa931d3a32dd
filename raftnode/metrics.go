package raftnode

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlock/raftlock/lock"
)

// nodeMetrics are the node's monitoring counters. The loop updates them
// with O(1) atomic operations (or histogram observations, which are atomic
// too); Collector reads them, and Status, at scrape time. Counters count
// since the process started: entries replayed from the WAL at a restart
// are applied, and counted, again.
type nodeMetrics struct {
	leaderChanges atomic.Uint64 // a new leader became known (not "no leader")
	committed     atomic.Uint64 // entries raft handed over as committed
	applied       atomic.Uint64 // entries applied to the state machine
	failed        atomic.Uint64 // proposals of this node answered with an error by the loop
	pending       atomic.Int64  // proposals of this node waiting to be applied

	grants   atomic.Uint64 // lock_granted events applied
	expiries atomic.Uint64 // session_expired events applied
	elected  atomic.Uint64 // elected events applied

	sessions, locks, elections, semaphores atomic.Int64 // state machine counts, published with the status
	waiters                                atomic.Int64

	snapshotBytes    atomic.Int64 // size of the last snapshot this node saved
	walSave          prometheus.Histogram
	snapshotDuration prometheus.Histogram
	lockWait         prometheus.Histogram
	lockHold         prometheus.Histogram
	// peerRTT is the round trip of the transport's probe of each peer
	// (label peer: its member ID; a removed member's series is deleted).
	peerRTT *prometheus.HistogramVec
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		walSave: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "raftlock_wal_save_duration_seconds",
			Help: "Time to write a Ready's hard state and entries to the WAL and fsync them.",
			// 1 ms … 8 s, as etcd's wal_fsync_duration_seconds.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		snapshotDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "raftlock_snapshot_duration_seconds",
			Help: "Time to take a snapshot of this node's state: capture, encode, write and fsync the snap file, record it in the WAL.",
			// 1 ms … 16 s.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "raftlock_lock_wait_seconds",
			Help: "Time from a session's acquire to its grant, by the state machine's clock (0 for a free lock), for the grants this node applied since it started.",
			// 1 ms … about 1 h.
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}),
		lockHold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "raftlock_lock_hold_seconds",
			Help:    "Time from a lock's grant to its release (by the holder, a close, an expiry or an admin), by the state machine's clock, for the releases this node applied since it started.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}),
		peerRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "raftlock_peer_round_trip_seconds",
			Help: "Round trip of an HTTP request to each peer's peer port (the transport's probe, every 2 s), by peer member ID.",
			// 0.1 ms … 3.3 s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"peer"}),
	}
}

// observeEvents counts the events of one applied entry. It costs what
// publishing them costs already: O(events).
func (m *nodeMetrics) observeEvents(evs []lock.Event) {
	for _, ev := range evs {
		switch ev.Type {
		case lock.EventLockGranted:
			m.grants.Add(1)
			m.lockWait.Observe(float64(max(0, ev.Time-ev.Since)) / 1e9)
		case lock.EventLockReleased:
			m.lockHold.Observe(float64(max(0, ev.Time-ev.Since)) / 1e9)
		case lock.EventSessionExpired:
			m.expiries.Add(1)
		case lock.EventElected:
			m.elected.Add(1)
		}
	}
}

// observeState publishes the state machine's counts (O(1) each) and the
// proposals in flight. The loop calls it with publishStatus.
func (n *Node) observeState() {
	m := n.metrics
	m.sessions.Store(int64(n.machine.SessionCount()))
	m.locks.Store(int64(n.machine.LockCount()))
	m.semaphores.Store(int64(n.machine.SemaphoreCount()))
	m.waiters.Store(int64(n.machine.WaiterCount()))
	m.elections.Store(int64(n.machine.ElectionCount()))
	m.pending.Store(int64(len(n.waiters) + len(n.propBatch) + len(n.deferred) + len(n.kaBatch)))
}

// observeSnapshot records a snapshot this node saved.
func (m *nodeMetrics) observeSnapshot(d time.Duration, size int) {
	m.snapshotDuration.Observe(d.Seconds())
	m.snapshotBytes.Store(int64(size))
}

func desc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

var (
	descTerm          = desc("raftlock_raft_term", "The Raft term this node is in.")
	descIsLeader      = desc("raftlock_raft_is_leader", "1 while this node is the Raft leader, 0 otherwise.")
	descHasLeader     = desc("raftlock_raft_has_leader", "1 while this node knows a Raft leader, 0 otherwise.")
	descLeaderChanges = desc("raftlock_raft_leader_changes_total", "Times this node saw a new Raft leader since it started.")
	descCommitted     = desc("raftlock_raft_proposals_committed_total", "Raft entries this node saw committed since it started (every member's proposals, and raft's own entries).")
	descApplied       = desc("raftlock_raft_proposals_applied_total", "Raft entries this node applied to its state machine since it started.")
	descFailed        = desc("raftlock_raft_proposals_failed_total", "Proposals of this node that failed: dropped by raft, or whose outcome became unknown (leadership lost, node stopped).")
	descPending       = desc("raftlock_raft_proposals_pending", "Proposals of this node waiting to be committed and applied.")
	descCommitIndex   = desc("raftlock_raft_commit_index", "The highest Raft log index this node knows to be committed.")
	descAppliedIndex  = desc("raftlock_raft_applied_index", "The Raft log index of the last entry this node applied.")
	descApplyLag      = desc("raftlock_raft_apply_lag", "Committed entries this node has not applied yet (commit index minus applied index).")
	descSnapIndex     = desc("raftlock_raft_snapshot_index", "The Raft log index of the newest snapshot this node saved or received.")
	descSnapBytes     = desc("raftlock_snapshot_size_bytes", "Size of the last snapshot this node saved, in bytes (0 before the first).")
	descDropped       = desc("raftlock_raft_dropped_peer_messages_total", "Inbound Raft messages dropped because they were not from a member or not to this node.")

	descSessions                             = desc("raftlock_sessions_open", "Sessions open in the state this node applied.")
	descLocks                                = desc("raftlock_locks_held", "Locks held in the state this node applied.")
	descWaiters                              = desc("raftlock_lock_waiters", "Places in lock and semaphore queues (sessions waiting for a lock or a permit), in the state this node applied.")
	descSemaphores                           = desc("raftlock_semaphores_held", "Semaphores with a permit held in the state this node applied.")
	descElections                            = desc("raftlock_elections", "Elections that have a leader in the state this node applied.")
	descGrants                               = desc("raftlock_lock_grants_total", "Lock grants this node applied since it started.")
	descExpiries                             = desc("raftlock_session_expiries_total", "Sessions ended by expiry that this node applied since it started.")
	descElected                              = desc("raftlock_election_leader_changes_total", "Election leaders elected (campaign won, or a candidate promoted) that this node applied since it started.")
	descNoSpace                              = desc("raftlock_nospace_alarms", "Members that raise the nospace alarm (disk nearly full; the cluster refuses new sessions and acquires while any does).")
	descAuthEnabled                          = desc("raftlock_auth_enabled", "1 when authentication is enabled in the cluster, 0 otherwise.")
	descClusterVersion                       = desc("raftlock_cluster_version", "The newest log command format every member reads (the cluster version).")
	descMembers                              = prometheus.NewDesc("raftlock_raft_members", "Members of the configuration this node applied, by role (voter, learner).", []string{"role"}, nil)
	descMemberBehind                         = prometheus.NewDesc("raftlock_raft_member_behind_entries", "On the leader: how many log entries each member lacks (the leader's last index minus the member's match index), by member ID.", []string{"member"}, nil)
	descMemberReachable                      = prometheus.NewDesc("raftlock_raft_member_reachable", "On the leader: 1 when it heard from the member within the election timeout, by member ID.", []string{"member"}, nil)
	descPeerReachable                        = prometheus.NewDesc("raftlock_peer_reachable", "1 when this node's last probe of the peer's peer port was answered, by peer member ID.", []string{"peer"}, nil)
	nodeConstDescs                           = []*prometheus.Desc{descTerm, descIsLeader, descHasLeader, descLeaderChanges, descCommitted, descApplied, descFailed, descPending, descCommitIndex, descAppliedIndex, descApplyLag, descSnapIndex, descSnapBytes, descDropped, descSessions, descLocks, descSemaphores, descWaiters, descElections, descGrants, descExpiries, descElected, descNoSpace, descAuthEnabled, descClusterVersion, descMembers, descMemberBehind, descMemberReachable, descPeerReachable}
	_                   prometheus.Collector = (*nodeCollector)(nil)
)

// Collector returns a prometheus.Collector of the node's metrics (Raft,
// WAL, snapshots and the state machine's counts, all named raftlock_*).
// Collect reads Status and atomic counters: a scrape never waits for the
// loop. Register it with a registry of your own; each call returns a new
// collector over the same counters.
func (n *Node) Collector() prometheus.Collector { return &nodeCollector{n: n} }

type nodeCollector struct{ n *Node }

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range nodeConstDescs {
		ch <- d
	}
	c.n.metrics.walSave.Describe(ch)
	c.n.metrics.snapshotDuration.Describe(ch)
	c.n.metrics.lockWait.Describe(ch)
	c.n.metrics.lockHold.Describe(ch)
	c.n.metrics.peerRTT.Describe(ch)
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n, m := c.n, c.n.metrics
	st := n.Status()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge(descTerm, float64(st.Term))
	gauge(descIsLeader, b(st.IsLeader))
	gauge(descHasLeader, b(st.Leader != 0))
	counter(descLeaderChanges, m.leaderChanges.Load())
	counter(descCommitted, m.committed.Load())
	counter(descApplied, m.applied.Load())
	counter(descFailed, m.failed.Load())
	gauge(descPending, float64(m.pending.Load()))
	gauge(descCommitIndex, float64(st.Commit))
	gauge(descAppliedIndex, float64(st.Applied))
	var lag uint64
	if st.Commit > st.Applied {
		lag = st.Commit - st.Applied
	}
	gauge(descApplyLag, float64(lag))
	gauge(descSnapIndex, float64(st.SnapshotIndex))
	gauge(descSnapBytes, float64(m.snapshotBytes.Load()))
	counter(descDropped, st.DroppedPeerMessages)
	gauge(descSessions, float64(m.sessions.Load()))
	gauge(descLocks, float64(m.locks.Load()))
	gauge(descSemaphores, float64(m.semaphores.Load()))
	gauge(descWaiters, float64(m.waiters.Load()))
	gauge(descElections, float64(m.elections.Load()))
	counter(descGrants, m.grants.Load())
	counter(descExpiries, m.expiries.Load())
	counter(descElected, m.elected.Load())
	var nospace int
	for _, a := range st.Alarms {
		if a.Kind == lock.AlarmNoSpace {
			nospace++
		}
	}
	gauge(descNoSpace, float64(nospace))
	gauge(descAuthEnabled, b(n.Auth().Enabled()))
	gauge(descClusterVersion, float64(st.ClusterVersion))
	var voters, learners int
	for _, mb := range st.Members {
		if mb.Learner {
			learners++
		} else {
			voters++
		}
		if p := mb.Progress; p != nil {
			id := strconv.FormatUint(mb.ID, 10)
			ch <- prometheus.MustNewConstMetric(descMemberBehind, prometheus.GaugeValue, float64(p.Behind), id)
			ch <- prometheus.MustNewConstMetric(descMemberReachable, prometheus.GaugeValue, b(p.Reachable), id)
		}
	}
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(voters), "voter")
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(learners), "learner")
	for id, up := range n.peerReachability() {
		ch <- prometheus.MustNewConstMetric(descPeerReachable, prometheus.GaugeValue, b(up), strconv.FormatUint(id, 10))
	}
	m.walSave.Collect(ch)
	m.snapshotDuration.Collect(ch)
	m.lockWait.Collect(ch)
	m.lockHold.Collect(ch)
	m.peerRTT.Collect(ch)
}
