package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// backupOf takes a snapshot file of tn's state as GET /v1/snapshot does:
// the capture on the loop, the encoding off it.
func backupOf(t *testing.T, tn *testNode) ([]byte, api.SnapshotInfo) {
	t.Helper()
	var c *lock.SnapshotCapture
	if err := tn.n.Read(context.Background(), true, func(m *lock.Machine) { c = m.CaptureSnapshot() }); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	info, err := api.WriteSnapshot(&b, api.SnapshotHeader{ClusterID: tn.n.ClusterID(), Index: c.AppliedIndex(), Term: c.Term()}, c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), info
}

// restoredCluster makes the data dirs of a new cluster of size members
// from file (every member from the same file, with token), on a network of
// its own, with clock. It starts no node.
func restoredCluster(t *testing.T, size int, file []byte, token string, clock *fakeClock) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nw: NewMemNetwork(2), clock: clock, peers: map[uint64]string{}, dirs: map[uint64]string{}, nodes: map[uint64]*testNode{}}
	for id := uint64(1); id <= uint64(size); id++ {
		c.peers[id] = fmt.Sprintf("mem://new-%d", id)
		c.dirs[id] = filepath.Join(t.TempDir(), "data")
	}
	for id := range c.peers {
		if _, err := RestoreDataDir(context.Background(), RestoreConfig{DataDir: c.dirs[id], ID: id, Peers: c.peers,
			ClusterToken: token, Snapshot: bytes.NewReader(file), SnapshotName: "backup.snap"}); err != nil {
			t.Fatalf("restore member %d: %v", id, err)
		}
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	return c
}

// A cluster restored from a backup has the old one's sessions, holders,
// waiters and elections, a cluster ID of its own, and none of the old
// membership; a session whose deadline passed while the cluster was down
// survives (the new term extends it); new tokens are above every old one.
func TestBackupRestoreNewCluster(t *testing.T) {
	old := newTestCluster(t, 3, nil)
	lead := old.leader()
	ttl := int64(10 * time.Second)
	a, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: ttl, Owner: "a"})
	b, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: ttl, Owner: "b"})
	e, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: ttl, Owner: "e"})
	held, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "jobs/nightly"})
	if r, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: b.Session, Name: "jobs/nightly", Wait: true}); r.Code != lock.CodeQueued {
		t.Fatalf("b's acquire: %+v, want queued", r)
	}
	won, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpCampaign, Session: e.Session, Name: "scheduler", Value: "host-e"})
	if held.Code != lock.CodeOK || won.Code != lock.CodeOK {
		t.Fatalf("acquire %+v, campaign %+v", held, won)
	}
	old.converged()
	file, info := backupOf(t, lead)
	oldState, _ := snapshotOf(t, lead)
	oldID := lead.n.ClusterID()
	for id := range old.nodes {
		old.stop(id)
	}

	// The restore takes a while: every deadline passes on the wall clock.
	old.clock.Advance(time.Minute)
	c := restoredCluster(t, 3, file, "restored-1", old.clock)

	// What is on disk is what New writes, and a snapshot at the backup's
	// index.
	for id, dir := range c.dirs {
		checkRestoredDir(t, dir, id, c.peers, "restored-1", info)
	}
	for id := range c.peers {
		c.start(id)
	}

	nl := c.leader()
	if got, want := nl.n.ClusterID(), ClusterIDFor("restored-1", c.peers); got != want || got == oldID {
		t.Errorf("cluster ID %x, want %x (the old one was %x)", got, want, oldID)
	}
	c.ticks(30) // three election timeouts in which an expiry could happen
	var sa lock.SessionInfo
	var okA, okB bool
	var l lock.LockInfo
	var el lock.ElectionInfo
	var members []lock.Member
	if err := nl.n.Read(context.Background(), false, func(m *lock.Machine) {
		sa, okA = m.Session(a.Session)
		_, okB = m.Session(b.Session)
		l, _ = m.Lock("jobs/nightly")
		el, _ = m.Election("scheduler")
		members = m.Members()
	}); err != nil {
		t.Fatal(err)
	}
	if !okA || !okB || sa.Deadline <= old.clock.Now().UnixNano() {
		t.Fatalf("restored sessions: a %v (deadline %d), b %v; the clock is at %d", okA, sa.Deadline, okB, old.clock.Now().UnixNano())
	}
	if l.Holder == nil || l.Holder.Session != a.Session || l.Holder.Token != held.Token || len(l.Waiters) != 1 || l.Waiters[0].Session != b.Session {
		t.Errorf("restored lock: %+v, want held by %d with token %d, %d waiting", l, a.Session, held.Token, b.Session)
	}
	if el.Leader == nil || el.Leader.Session != e.Session || el.Leader.Term != won.Token {
		t.Errorf("restored election: %+v", el)
	}
	for _, m := range members {
		if !strings.HasPrefix(m.PeerURL, "mem://new-") {
			t.Errorf("member %+v of the old cluster in the new one", m)
		}
	}

	// The log continues above the backup's index: new tokens are larger
	// than every token of the old cluster.
	rel, _ := c.mustPropose(nl, &lock.Command{Op: lock.OpRelease, Session: a.Session, Name: "jobs/nightly", Token: held.Token})
	if rel.Code != lock.CodeOK {
		t.Fatalf("release: %+v", rel)
	}
	var next lock.LockInfo
	_ = nl.n.Read(context.Background(), true, func(m *lock.Machine) { next, _ = m.Lock("jobs/nightly") })
	if next.Holder == nil || next.Holder.Session != b.Session || next.Holder.Token <= info.Index {
		t.Errorf("after the release: %+v, want b to hold it with a token above %d", next.Holder, info.Index)
	}
	fresh, idx := c.mustPropose(nl, &lock.Command{Op: lock.OpOpenSession, TTL: ttl})
	if fresh.Session <= info.Index || idx <= info.Index {
		t.Errorf("a new session %d at index %d, not above the backup's %d", fresh.Session, idx, info.Index)
	}
	c.converged()
	if st, _ := snapshotOf(t, nl); bytes.Equal(st, oldState) {
		t.Error("the new cluster's state did not move on")
	}
}

// checkRestoredDir opens a restored data dir as New does and checks it.
func checkRestoredDir(t *testing.T, dir string, id uint64, peers map[uint64]string, token string, info api.SnapshotInfo) {
	t.Helper()
	l, st, err := wal.Open(context.Background(), wal.Config{Dir: dir})
	if err != nil {
		t.Fatalf("open the restored %s: %v", dir, err)
	}
	defer l.Close()
	var md metadata
	if err := json.Unmarshal(st.Metadata, &md); err != nil {
		t.Fatal(err)
	}
	if want := (metadata{ID: id, Peers: peers, ClusterID: ClusterIDFor(token, peers)}); !reflect.DeepEqual(md, want) {
		t.Errorf("metadata %+v, want %+v", md, want)
	}
	sm := st.Snapshot.GetMetadata()
	if sm.GetIndex() != info.Index || sm.GetTerm() != info.Term || !reflect.DeepEqual(sm.GetConfState().GetVoters(), []uint64{1, 2, 3}) {
		t.Errorf("snapshot index %d term %d voters %v, want %d %d [1 2 3]", sm.GetIndex(), sm.GetTerm(), sm.GetConfState().GetVoters(), info.Index, info.Term)
	}
	if hs := st.HardState; hs.GetTerm() != info.Term || hs.GetCommit() != info.Index || hs.GetVote() != 0 || len(st.Entries) != 0 {
		t.Errorf("hard state %v and %d entries, want term %d commit %d and none", hs, len(st.Entries), info.Term, info.Index)
	}
	m := lock.New()
	if err := m.Restore(st.Snapshot.GetData()); err != nil {
		t.Fatal(err)
	}
	if len(m.Members()) != 0 || len(m.RemovedMembers()) != 0 || m.MemberSeq() != 0 {
		t.Errorf("the old membership was restored: %+v, removed %v", m.Members(), m.RemovedMembers())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*.restore-*")); len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}

// A damaged, truncated or foreign file, a state that disagrees with its
// header, a data dir in use and a member outside the cluster are refused
// with a message that says so, and nothing is written.
func TestBackupRestoreRefusals(t *testing.T) {
	m := lock.New()
	m.Apply(1, 2, &lock.Command{Op: lock.OpOpenSession, Now: 1, TTL: int64(time.Minute)})
	m.Apply(2, 2, &lock.Command{Op: lock.OpAcquire, Now: 2, Session: 1, Name: "x"})
	var good bytes.Buffer
	if _, err := api.WriteSnapshot(&good, api.SnapshotHeader{ClusterID: 0xabc, Index: m.AppliedIndex(), Term: m.Term()}, m.Snapshot()); err != nil {
		t.Fatal(err)
	}
	file := func(index, term uint64, state []byte) []byte {
		var b bytes.Buffer
		_, _ = api.WriteSnapshot(&b, api.SnapshotHeader{Index: index, Term: term}, state)
		return b.Bytes()
	}
	peers := map[uint64]string{1: "mem://1", 2: "mem://2"}
	var sameID bytes.Buffer // from a cluster of the same peers without a token
	_, _ = api.WriteSnapshot(&sameID, api.SnapshotHeader{ClusterID: ClusterIDFor("", peers), Index: 2, Term: 2}, m.Snapshot())
	flipped := bytes.Clone(good.Bytes())
	flipped[len(flipped)/2] ^= 1

	inUse := t.TempDir()
	if err := os.Mkdir(filepath.Join(inUse, "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what  string
		cfg   RestoreConfig
		want  string
		match error
	}{
		{"truncated", RestoreConfig{Snapshot: bytes.NewReader(good.Bytes()[:good.Len()-10])}, "backup.snap: api: invalid snapshot file: truncated", api.ErrSnapshotInvalid},
		{"a flipped byte", RestoreConfig{Snapshot: bytes.NewReader(flipped)}, "backup.snap: api: invalid snapshot file: checksum mismatch", api.ErrSnapshotInvalid},
		{"not a snapshot", RestoreConfig{Snapshot: strings.NewReader("{}\n")}, "not a raftlock snapshot", api.ErrSnapshotInvalid},
		{"header and state disagree", RestoreConfig{Snapshot: bytes.NewReader(file(3, 2, m.Snapshot()))}, "header says index 3 term 2, but its state is at index 2 term 2", api.ErrSnapshotInvalid},
		{"a state that does not decode", RestoreConfig{Snapshot: bytes.NewReader(file(2, 2, []byte{2, 1}))}, "its checksum is right", lock.ErrCorrupt},
		{"index 0", RestoreConfig{Snapshot: bytes.NewReader(file(0, 0, lock.New().Snapshot()))}, "index 0", api.ErrSnapshotInvalid},
		{"a data dir with a WAL", RestoreConfig{DataDir: inUse, Snapshot: bytes.NewReader(good.Bytes())}, "already holds a WAL", ErrDataDirInUse},
		{"the old cluster's ID", RestoreConfig{Snapshot: bytes.NewReader(sameID.Bytes())}, "the new cluster would have the ID of the cluster the snapshot comes from", nil},
		{"a member outside the cluster", RestoreConfig{ID: 3, Snapshot: bytes.NewReader(good.Bytes())}, "member 3 is not one of", nil},
	} {
		cfg := tc.cfg
		if cfg.DataDir == "" {
			cfg.DataDir = filepath.Join(t.TempDir(), "data")
		}
		if cfg.ID == 0 {
			cfg.ID = 1
		}
		cfg.Peers = peers
		cfg.SnapshotName = "backup.snap"
		_, err := RestoreDataDir(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.match != nil && !errors.Is(err, tc.match)) {
			t.Errorf("%s: %v, want %q", tc.what, err, tc.want)
		}
		if cfg.DataDir != inUse {
			if _, serr := os.Stat(cfg.DataDir); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("%s: the data dir was created (%v)", tc.what, serr)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.DataDir), "*.restore-*")); len(left) != 0 {
			t.Errorf("%s: temporary directories left: %v", tc.what, left)
		}
	}

	// An empty data dir that exists (a mounted volume) is fine, and a
	// second restore into it is refused.
	dir := t.TempDir()
	if _, err := RestoreDataDir(context.Background(), RestoreConfig{DataDir: dir, ID: 2, Peers: peers, Snapshot: bytes.NewReader(good.Bytes())}); err != nil {
		t.Fatal(err)
	}
	_, err := RestoreDataDir(context.Background(), RestoreConfig{DataDir: dir, ID: 2, Peers: peers, Snapshot: bytes.NewReader(good.Bytes())})
	if !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("second restore: %v", err)
	}
}

// With BumpIndex the restored cluster's log, and so its tokens, start that
// far above the backup's index; the state is the backup's.
func TestBackupRestoreBumpIndex(t *testing.T) {
	old := newTestCluster(t, 1, nil)
	lead := old.leader()
	a, _ := old.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute), Owner: "a"})
	old.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "held"})
	file, info := backupOf(t, lead)
	old.stop(lead.n.ID())

	c := &testCluster{t: t, nw: NewMemNetwork(3), clock: old.clock, peers: map[uint64]string{1: "mem://bumped-1"},
		dirs: map[uint64]string{1: filepath.Join(t.TempDir(), "data")}, nodes: map[uint64]*testNode{}}
	const bump = 1_000_000
	out, err := RestoreDataDir(context.Background(), RestoreConfig{DataDir: c.dirs[1], ID: 1, Peers: c.peers,
		ClusterToken: "bumped", Snapshot: bytes.NewReader(file), BumpIndex: bump})
	if err != nil {
		t.Fatal(err)
	}
	if out.Index != info.Index+bump {
		t.Fatalf("restored at index %d, want %d", out.Index, info.Index+bump)
	}
	t.Cleanup(func() { c.stop(1) })
	c.start(1)
	nl := c.leader()
	r, idx := c.mustPropose(nl, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "new"})
	if r.Code != lock.CodeOK || r.Token != idx || r.Token <= info.Index+bump {
		t.Fatalf("a new grant after a bumped restore: %+v at %d, want a token above %d", r, idx, info.Index+bump)
	}
	if r, _ := c.mustPropose(nl, &lock.Command{Op: lock.OpAcquire, Session: a.Session, Name: "held"}); r.Code != lock.CodeOK || r.Token > info.Index {
		t.Fatalf("the restored hold: %+v, want its old token", r)
	}
}
