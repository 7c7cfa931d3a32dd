package raftnode

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftlock/raftlock/lock"
)

// gather scrapes reg and returns each family by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value is the value of the family's only series (a histogram's count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf, ok := fams[name]
	if !ok || len(mf.GetMetric()) != 1 {
		t.Fatalf("family %s: missing or not one series: %v", name, mf)
	}
	m := mf.GetMetric()[0]
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("family %s: unexpected type %v", name, mf.GetType())
	return 0
}

// TestNodeMetrics: the node's collector exports every family with help
// text, and its counters and gauges follow what the node applies: sessions,
// locks, grants, expiries, proposals, WAL saves and snapshots.
func TestNodeMetrics(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.SnapshotEvery = 10 })
	lead := c.leader()
	reg := prometheus.NewRegistry()
	reg.MustRegister(lead.n.Collector())

	fams := gather(t, reg)
	for name, mf := range fams {
		if !strings.HasPrefix(name, "raftlock_") || mf.GetHelp() == "" {
			t.Errorf("family %s: want the raftlock_ prefix and help text, help %q", name, mf.GetHelp())
		}
	}
	// Every constant family but the peers' (the in-memory network has no
	// prober), and the histograms but the peers' round trips.
	if want := len(nodeConstDescs) - 1 + 4; len(fams) != want {
		t.Errorf("%d families, want %d", len(fams), want)
	}
	if v := value(t, fams, "raftlock_raft_is_leader"); v != 1 {
		t.Errorf("is_leader %v, want 1", v)
	}
	if v := value(t, fams, "raftlock_raft_leader_changes_total"); v != 1 {
		t.Errorf("leader_changes_total %v, want 1", v)
	}
	if v := value(t, fams, "raftlock_raft_term"); v < 1 {
		t.Errorf("term %v, want >= 1", v)
	}
	applied0 := value(t, fams, "raftlock_raft_proposals_applied_total")

	a, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(5 * time.Second)})
	b, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})
	c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "m"})
	c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: b.Session, Name: "m", Wait: true})
	c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: b.Session, Name: "other"})
	c.mustPropose(lead, &lock.Command{Op: lock.OpSemAcquire, Session: b.Session, Name: "pool", Limit: 2})
	// The gauges are published at the end of the loop's iteration, a
	// moment after the proposer's answer.
	c.tickUntil("two sessions, two locks", 100, func() bool {
		f := gather(t, reg)
		return value(t, f, "raftlock_sessions_open") == 2 && value(t, f, "raftlock_locks_held") == 2
	})
	fams = gather(t, reg)
	if v := value(t, fams, "raftlock_semaphores_held"); v != 1 {
		t.Errorf("semaphores_held %v, want 1", v)
	}
	if v := value(t, fams, "raftlock_lock_grants_total"); v != 2 {
		t.Errorf("grants_total %v, want 2", v)
	}
	if v := value(t, fams, "raftlock_lock_wait_seconds"); v != 2 {
		t.Errorf("lock waits observed %v, want 2 (one per grant)", v)
	}
	if v := value(t, fams, "raftlock_cluster_version"); v != lock.MaxCommandVersion {
		t.Errorf("cluster version %v, want %d (a single member raises it)", v, lock.MaxCommandVersion)
	}
	if v := value(t, fams, "raftlock_raft_proposals_applied_total"); v < applied0+6 {
		t.Errorf("applied_total %v, want >= %v", v, applied0+6)
	}
	if v, w := value(t, fams, "raftlock_raft_proposals_committed_total"), value(t, fams, "raftlock_raft_proposals_applied_total"); v != w {
		t.Errorf("committed_total %v, applied_total %v: want equal on a settled single node", v, w)
	}
	if v := value(t, fams, "raftlock_raft_apply_lag"); v != 0 {
		t.Errorf("apply_lag %v, want 0", v)
	}
	if v, w := value(t, fams, "raftlock_raft_applied_index"), float64(lead.n.Status().Applied); v != w {
		t.Errorf("applied_index %v, want %v", v, w)
	}
	if v := value(t, fams, "raftlock_wal_save_duration_seconds"); v < 5 {
		t.Errorf("wal saves observed %v, want >= 5", v)
	}
	if v := value(t, fams, "raftlock_raft_proposals_pending"); v != 0 {
		t.Errorf("pending %v, want 0", v)
	}

	// a expires: its lock goes to b, in the same entry.
	c.clock.Advance(6 * time.Second)
	c.tickUntil("a expires", 500, func() bool {
		f := gather(t, reg)
		return value(t, f, "raftlock_session_expiries_total") == 1 && value(t, f, "raftlock_sessions_open") == 1
	})
	fams = gather(t, reg)
	if v := value(t, fams, "raftlock_lock_grants_total"); v != 3 {
		t.Errorf("grants_total after expiry %v, want 3", v)
	}
	if v := value(t, fams, "raftlock_locks_held"); v != 2 {
		t.Errorf("locks_held after expiry %v, want 2 (m passed to b)", v)
	}
	// m was held 6 s by a, and b waited 6 s for it, by the leader's clock.
	for _, name := range []string{"raftlock_lock_hold_seconds", "raftlock_lock_wait_seconds"} {
		h := fams[name].GetMetric()[0].GetHistogram()
		want := 1
		if name == "raftlock_lock_wait_seconds" {
			want = 3
		}
		if int(h.GetSampleCount()) != want || h.GetSampleSum() < 5.9 || h.GetSampleSum() > 7 {
			t.Errorf("%s: %d observations summing to %vs, want %d summing to about 6s", name, h.GetSampleCount(), h.GetSampleSum(), want)
		}
	}

	// Enough entries for a snapshot.
	for range 10 {
		c.mustPropose(lead, &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{b.Session}})
	}
	c.tickUntil("a snapshot", 500, func() bool {
		return value(t, gather(t, reg), "raftlock_snapshot_duration_seconds") >= 1
	})
	fams = gather(t, reg)
	if v := value(t, fams, "raftlock_snapshot_size_bytes"); v <= 0 {
		t.Errorf("snapshot_size_bytes %v, want > 0", v)
	}
	if v := value(t, fams, "raftlock_raft_snapshot_index"); v == 0 {
		t.Errorf("snapshot_index %v, want > 0", v)
	}
	if v := value(t, fams, "raftlock_nospace_alarms"); v != 0 {
		t.Errorf("nospace_alarms %v, want 0", v)
	}
	if v := value(t, fams, "raftlock_auth_enabled"); v != 0 {
		t.Errorf("auth_enabled %v, want 0", v)
	}
}

// TestNodeMetricsCountFailedProposals: a node that stops fails the
// proposals it has in flight (failAll), and counts them.
func TestNodeMetricsCountFailedProposals(t *testing.T) {
	n := &Node{metrics: newNodeMetrics(), waiters: map[uint64]*waiter{}}
	for i := range uint64(3) {
		n.waiters[i] = &waiter{single: &proposal{resC: make(chan proposalResult, 1)}}
	}
	n.failAll(ErrStopped)
	if got := n.metrics.failed.Load(); got != 3 {
		t.Fatalf("failed %d, want 3", got)
	}
}
