package raftnode

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/lock"
)

// savedSnap is what a "snapshot saved" log record says.
type savedSnap struct {
	index, bytes, logBytes uint64
}

// snapRecorder is a slog.Handler that keeps one node's "snapshot saved"
// records and the indexes of its "restored snapshot from leader" records.
type snapRecorder struct {
	mu       sync.Mutex
	saved    []savedSnap
	restored []uint64
}

func (r *snapRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *snapRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *snapRecorder) WithGroup(string) slog.Handler            { return r }

func (r *snapRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "snapshot saved" && rec.Message != "restored snapshot from leader" {
		return nil
	}
	f := map[string]uint64{}
	rec.Attrs(func(a slog.Attr) bool {
		switch v := a.Value.Resolve(); v.Kind() {
		case slog.KindUint64:
			f[a.Key] = v.Uint64()
		case slog.KindInt64:
			f[a.Key] = uint64(v.Int64())
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Message == "snapshot saved" {
		r.saved = append(r.saved, savedSnap{index: f["index"], bytes: f["bytes"], logBytes: f["log_bytes"]})
	} else {
		r.restored = append(r.restored, f["index"])
	}
	return nil
}

// snapshots returns a copy of the snapshots saved so far.
func (r *snapRecorder) snapshots() []savedSnap {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]savedSnap(nil), r.saved...)
}

func (r *snapRecorder) restoredIndexes() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.restored...)
}

// checkSnapshotRule fails the test unless every snapshot of saved after the
// first kept both rules: SnapshotEvery entries since the previous one, and
// log bytes since it of at least ratio × its size. It returns the total
// bytes of the snapshots and of the log between them.
func checkSnapshotRule(t *testing.T, saved []savedSnap, every uint64, ratio float64) (snapBytes, logBytes uint64) {
	t.Helper()
	for i, s := range saved {
		snapBytes += s.bytes
		if i == 0 {
			continue
		}
		prev := saved[i-1]
		logBytes += s.logBytes
		if s.index-prev.index < every {
			t.Errorf("snapshot at %d only %d entries after the one at %d", s.index, s.index-prev.index, prev.index)
		}
		if float64(s.logBytes) < ratio*float64(prev.bytes) {
			t.Errorf("snapshot at %d after %d bytes of log, less than %v × %d (the one at %d)", s.index, s.logBytes, ratio, prev.bytes, prev.index)
		}
	}
	return snapBytes, logBytes
}

// growState opens a session and acquires n new locks on sn, one entry each:
// a state that grows with its log.
func growState(t *testing.T, sn *snapNode, prefix string, n int) {
	t.Helper()
	res, _ := sn.propose(t, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	for i := range n {
		if r, _ := sn.propose(t, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: fmt.Sprintf("%s/%04d", prefix, i)}); r.Code != lock.CodeOK {
			t.Fatalf("acquire %d: %v", i, r.Code)
		}
	}
}

// A state that grows with its log is snapshotted at growing intervals:
// the log between two snapshots is at least half the older one, so their
// number grows with the logarithm of the state's size and their total size
// stays within a constant factor of the log (linear); snapshotting every
// SnapshotEvery entries (ratio 0) takes one per SnapshotEvery entries,
// and writes in all the square of the state over SnapshotEvery.
func TestSnapshotIntervalsGrowWithTheState(t *testing.T) {
	const entries, every = 1000, 20
	type outcome struct {
		saved               []savedSnap
		snapBytes, logBytes uint64
	}
	run := func(ratio float64) outcome {
		rec := &snapRecorder{}
		sn := startSnapNodeWith(t, t.TempDir(), slog.New(rec), nil, func(cfg *Config) {
			cfg.SnapshotEvery = every
			cfg.SnapshotLogRatio = ratio
		})
		growState(t, sn, "grow", entries)
		if err := sn.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		saved := rec.snapshots()
		snapBytes, logBytes := checkSnapshotRule(t, saved, every, ratio)
		t.Logf("ratio %v: %d snapshots for %d entries, %d bytes written for %d bytes of log between them", ratio, len(saved), entries, snapBytes, logBytes)
		return outcome{saved, snapBytes, logBytes}
	}
	old, got := run(0), run(DefaultSnapshotLogRatio)

	// The test's premise: every SnapshotEvery entries, about entries/every
	// snapshots (fewer when one is in flight at its turn).
	if len(old.saved) < entries/every*3/4 {
		t.Fatalf("ratio 0: %d snapshots for %d entries, want about %d", len(old.saved), entries, entries/every)
	}
	// Expected here: about 4 while the state is small, then one per 30%
	// or so of growth (a lock in the snapshot is about 60% of the entry
	// that took it): about 14 in all.
	if len(got.saved) < 5 || len(got.saved) > 22 {
		t.Errorf("%d snapshots for %d entries, want 5 to 22", len(got.saved), entries)
	}
	last := got.saved[len(got.saved)-1]
	if gap := last.index - got.saved[len(got.saved)-2].index; gap < 5*every {
		t.Errorf("the last snapshot came %d entries after the one before, want at least %d: the interval does not grow", gap, 5*every)
	}
	// Linear: each byte of log between two snapshots pays for at most
	// 1/ratio bytes of the older snapshot.
	if float64(got.snapBytes) > float64(got.logBytes)/DefaultSnapshotLogRatio+float64(last.bytes) {
		t.Errorf("%d bytes of snapshots for %d bytes of log: more than the log / %v + the last snapshot (%d)", got.snapBytes, got.logBytes, DefaultSnapshotLogRatio, last.bytes)
	}
	if got.snapBytes*3 > old.snapBytes {
		t.Errorf("%d bytes of snapshots, against %d every %d entries: want at most a third", got.snapBytes, old.snapBytes, every)
	}
}

// A state that does not grow still snapshots every SnapshotEvery entries:
// its log soon outweighs it.
func TestSmallStateSnapshotsEverySnapshotEvery(t *testing.T) {
	const cycles, every = 200, 20
	rec := &snapRecorder{}
	sn := startSnapNodeWith(t, t.TempDir(), slog.New(rec), nil, func(cfg *Config) { cfg.SnapshotEvery = every })
	res, _ := sn.propose(t, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	for range cycles {
		r, _ := sn.propose(t, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: "same"})
		if r.Code != lock.CodeOK {
			t.Fatalf("acquire: %v", r.Code)
		}
		sn.propose(t, &lock.Command{Op: lock.OpRelease, Session: res.Session, Name: "same", Token: r.Token})
	}
	if err := sn.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	saved := rec.snapshots()
	checkSnapshotRule(t, saved, every, DefaultSnapshotLogRatio)
	// 2·cycles entries: one snapshot per every, but for those whose turn
	// came while the one before was still being written.
	if want := 2 * cycles / every / 2; len(saved) < want {
		t.Fatalf("%d snapshots for %d entries, want at least %d (SnapshotEvery %d)", len(saved), 2*cycles, want, every)
	}
	t.Logf("%d snapshots for %d entries", len(saved), 2*cycles)
}

// After a restart the size of the snapshot loaded from the data dir
// counts: the next snapshot waits for half of it in log (the entries
// replayed from the WAL count).
func TestSnapshotPolicyAfterRestart(t *testing.T) {
	const every = 20
	dir := t.TempDir()
	mutate := func(cfg *Config) { cfg.SnapshotEvery = every }
	rec := &snapRecorder{}
	sn := startSnapNodeWith(t, dir, slog.New(rec), nil, mutate)
	growState(t, sn, "before", 400)
	want, _ := sn.read(t)
	if err := sn.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	before := rec.snapshots()
	if len(before) == 0 {
		t.Fatal("no snapshot before the restart")
	}

	again := &snapRecorder{}
	sn = startSnapNodeWith(t, dir, slog.New(again), nil, mutate)
	loadedIndex := sn.n.Status().SnapshotIndex
	var loaded savedSnap
	for _, s := range before {
		if s.index == loadedIndex {
			loaded = s
		}
	}
	if loaded.index == 0 {
		t.Fatalf("restarted from snapshot %d, which was not saved (saved: %+v)", loadedIndex, before)
	}
	got, _ := sn.read(t)
	keptLocks(t, got, want)
	res, _ := sn.propose(t, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	for i := 0; len(again.snapshots()) == 0; i++ {
		if i == 1000 {
			t.Fatal("no snapshot after the restart")
		}
		sn.propose(t, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: fmt.Sprintf("after/%04d", i)})
	}
	first := again.snapshots()[0]
	checkSnapshotRule(t, []savedSnap{loaded, first}, every, DefaultSnapshotLogRatio)
	t.Logf("restarted from the snapshot at %d (%d bytes); the next at %d after %d bytes of log", loaded.index, loaded.bytes, first.index, first.logBytes)
}

// After a snapshot from the leader the size of that snapshot counts: the
// follower's own next snapshot waits for its ratio of it in log.
func TestSnapshotPolicyAfterLeaderSnapshot(t *testing.T) {
	const every = 20
	var mu sync.Mutex
	recs := map[uint64]*snapRecorder{}
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotEvery = every
		cfg.SnapshotCatchUp = 5
		mu.Lock()
		defer mu.Unlock()
		if recs[cfg.ID] == nil {
			recs[cfg.ID] = &snapRecorder{}
		}
		cfg.Logger = slog.New(recs[cfg.ID])
	})
	lead := c.leader()
	lag := c.follower().n.ID()
	c.stop(lag)
	sres, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	for i := range 300 {
		c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: fmt.Sprintf("n%04d", i)})
	}
	c.tickUntil("the leader's snapshot", 500, func() bool { return lead.n.Status().SnapshotIndex != 0 })
	c.start(lag)
	c.converged()
	mu.Lock()
	lagRec, leadRec := recs[lag], recs[lead.n.ID()]
	mu.Unlock()
	restored := lagRec.restoredIndexes()
	if len(restored) != 1 {
		t.Fatalf("the lagging node restored snapshots %v, want one", restored)
	}
	var fromLeader savedSnap
	for _, s := range leadRec.snapshots() {
		if s.index == restored[0] {
			fromLeader = s
		}
	}
	if fromLeader.index == 0 {
		t.Fatalf("the lagging node restored a snapshot at %d, which the leader did not save", restored[0])
	}
	// The lagging node's own ratio (members stagger theirs, the leader's
	// the largest, see snapshotRatio): its first snapshot may come before any entry after
	// the leader's, if the log the leader kept beyond its snapshot already
	// outweighs it, and never earlier.
	rank := 0 // the leader ranks last
	for id := range c.peers {
		if id < lag && id != lead.n.ID() {
			rank++
		}
	}
	ratio := DefaultSnapshotLogRatio * (1 + float64(rank)/float64(len(c.peers)))
	for i := 0; len(lagRec.snapshots()) == 0; i++ {
		if i == 1000 {
			t.Fatal("no snapshot of the lagging node")
		}
		c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: sres.Session, Name: fmt.Sprintf("m%04d", i)})
	}
	own := lagRec.snapshots()[0]
	checkSnapshotRule(t, []savedSnap{fromLeader, own}, every, ratio)
	t.Logf("restored the leader's snapshot at %d (%d bytes); its own next at %d after %d bytes of log", fromLeader.index, fromLeader.bytes, own.index, own.logBytes)
}

func TestConfigSnapshotLogRatio(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	if cfg.SnapshotLogRatio != DefaultSnapshotLogRatio {
		t.Fatalf("default ratio %v", cfg.SnapshotLogRatio)
	}
	for _, r := range []float64{0, 0.5, 4} {
		cfg.SnapshotLogRatio = r
		if err := cfg.Validate(); err != nil {
			t.Errorf("ratio %v: %v", r, err)
		}
	}
	for _, r := range []float64{-0.1, nan(), inf()} {
		cfg.SnapshotLogRatio = r
		if err := cfg.Validate(); err == nil {
			t.Errorf("ratio %v accepted", r)
		}
	}
}

func nan() float64 { z := 0.0; return z / z }
func inf() float64 { z := 0.0; return 1 / z }

// The members of a cluster wait for different ratios, so that they do not
// all encode and write the same state at the same index.
func TestSnapshotRatioDiffersBetweenMembers(t *testing.T) {
	node := func(id uint64, voters, learners []uint64) *Node {
		return &Node{id: id, cfg: Config{SnapshotLogRatio: 0.6}, confState: &raftpb.ConfState{Voters: voters, Learners: learners}}
	}
	three := []uint64{7, 3, 12}
	got := []float64{node(3, three, nil).snapshotRatio(), node(7, three, nil).snapshotRatio(), node(12, three, nil).snapshotRatio()}
	want := []float64{0.6, 0.8, 1.0}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("members 3, 7, 12: ratios %v, want %v", got, want)
			break
		}
	}
	// The leader waits longest; the others spread below it.
	led := func(id uint64) float64 { n := node(id, three, nil); n.lead = 3; return n.snapshotRatio() }
	got = []float64{led(3), led(7), led(12)}
	want = []float64{1.0, 0.6, 0.8}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("members 3 (leading), 7, 12: ratios %v, want %v", got, want)
			break
		}
	}
	if r := node(1, []uint64{1}, nil).snapshotRatio(); r != 0.6 {
		t.Errorf("single node: ratio %v, want the configured 0.6", r)
	}
	if r := node(9, []uint64{1, 2}, []uint64{9}).snapshotRatio(); math.Abs(r-0.6*(1+2.0/3)) > 1e-9 {
		t.Errorf("learner 9 beside voters 1, 2: ratio %v, want %v", r, 0.6*(1+2.0/3))
	}
	if r := node(5, []uint64{1, 2, 3}, nil).snapshotRatio(); r != 0.6 {
		t.Errorf("a node not in the configuration: ratio %v, want the configured 0.6", r)
	}
	// Two members that applied the same log of a growing state snapshot at
	// different indexes.
	points := func(ratio float64) []int {
		var l snapLog
		var at []int
		size := uint64(0)
		for i := 1; i <= 20000; i++ {
			l.count(&raftpb.Entry{Data: make([]byte, 50)})
			size += 30 // the state grows with the log
			if l.due(ratio) {
				at = append(at, i)
				l.atSnap, l.lastSize = l.applied, size
			}
		}
		return at
	}
	a, b := points(node(3, three, nil).snapshotRatio()), points(node(7, three, nil).snapshotRatio())
	common := 0
	for _, i := range a {
		if i >= 100 && slices.Contains(b, i) { // (the first few, small, may meet)
			common++
		}
	}
	if common > 0 || len(a) == len(b) {
		t.Errorf("members 3 and 7 snapshot at %v and %v: %d common points of a large state", a, b, common)
	}
}
