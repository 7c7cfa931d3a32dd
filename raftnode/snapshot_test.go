package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// hookDurable is a *wal.Log whose snapshot methods the test intercepts. It
// reports the Durable contract's violations: Close while a
// SaveSnapshotFile runs, a method called after Close, a record without a
// file, a second file write while one runs.
type hookDurable struct {
	*wal.Log
	t *testing.T
	// onFile runs at the start of SaveSnapshotFile, on the snapshot
	// goroutine; a non-nil error is returned instead of writing.
	onFile func(s *raftpb.Snapshot) error
	// onRecord runs at the start of SaveSnapshotRecord, on the loop; a
	// non-nil error is returned instead of recording.
	onRecord func(s *raftpb.Snapshot) error

	fileActive atomic.Bool
	closed     atomic.Bool
	mu         sync.Mutex
	written    map[uint64]bool // snapshot index → SaveSnapshotFile returned nil
	records    []uint64
}

func (d *hookDurable) SaveSnapshotFile(s *raftpb.Snapshot) error {
	if d.closed.Load() {
		d.t.Errorf("SaveSnapshotFile(%d) after Close", s.GetMetadata().GetIndex())
	}
	if !d.fileActive.CompareAndSwap(false, true) {
		d.t.Errorf("SaveSnapshotFile(%d) while another one runs", s.GetMetadata().GetIndex())
	}
	defer d.fileActive.Store(false)
	if d.onFile != nil {
		if err := d.onFile(s); err != nil {
			return err
		}
	}
	if err := d.Log.SaveSnapshotFile(s); err != nil {
		return err
	}
	d.mu.Lock()
	d.written[s.GetMetadata().GetIndex()] = true
	d.mu.Unlock()
	return nil
}

func (d *hookDurable) SaveSnapshotRecord(s *raftpb.Snapshot) error {
	idx := s.GetMetadata().GetIndex()
	if d.closed.Load() {
		d.t.Errorf("SaveSnapshotRecord(%d) after Close", idx)
	}
	d.mu.Lock()
	if !d.written[idx] {
		d.t.Errorf("SaveSnapshotRecord(%d) before its file was written", idx)
	}
	d.mu.Unlock()
	if d.onRecord != nil {
		if err := d.onRecord(s); err != nil {
			return err
		}
	}
	if err := d.Log.SaveSnapshotRecord(s); err != nil {
		return err
	}
	d.mu.Lock()
	d.records = append(d.records, idx)
	d.mu.Unlock()
	return nil
}

func (d *hookDurable) Close() error {
	if d.fileActive.Load() {
		d.t.Errorf("Close while SaveSnapshotFile runs")
	}
	d.closed.Store(true)
	return d.Log.Close()
}

// logSignal is a slog.Handler that closes a channel when a record with a
// given message is logged.
type logSignal struct {
	msg  string
	once sync.Once
	c    chan struct{}
}

func newLogSignal(msg string) *logSignal { return &logSignal{msg: msg, c: make(chan struct{})} }

func (h *logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.c) })
	}
	return nil
}
func (h *logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logSignal) WithGroup(string) slog.Handler      { return h }

// snapNode is a single-voter node on a real WAL in dir with SnapshotEvery
// 20 (and the default SnapshotLogRatio: a small state snapshots every 20
// entries).
type snapNode struct {
	n      *Node
	d      *hookDurable // nil without hooks
	cancel context.CancelFunc
	errC   chan error
}

func startSnapNode(t *testing.T, dir string, lg *slog.Logger, hook func(*hookDurable)) *snapNode {
	t.Helper()
	return startSnapNodeWith(t, dir, lg, hook, nil)
}

// startSnapNodeWith is startSnapNode with mutate, when not nil, applied to
// the node's Config last.
func startSnapNodeWith(t *testing.T, dir string, lg *slog.Logger, hook func(*hookDurable), mutate func(*Config)) *snapNode {
	t.Helper()
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	cfg := DefaultConfig()
	cfg.ID = 1
	cfg.DataDir = dir
	cfg.Peers = map[uint64]string{1: "mem://1"}
	cfg.ClientURL = "http://client-1"
	cfg.SnapshotEvery = 20
	cfg.SnapshotCatchUp = 5
	cfg.Tick = make(chan struct{}) // no ticks: no expiry, no elections
	cfg.Now = time.Now
	cfg.Logger = lg
	if mutate != nil {
		mutate(&cfg)
	}
	meta, err := json.Marshal(metadata{ID: cfg.ID, Peers: cfg.Peers})
	if err != nil {
		t.Fatal(err)
	}
	w, st, err := wal.Open(context.Background(), wal.Config{Dir: dir, Metadata: meta, Logger: lg})
	if err != nil {
		t.Fatalf("open wal: %v", err)
	}
	sn := &snapNode{errC: make(chan error, 1)}
	var d Durable = w
	if hook != nil {
		sn.d = &hookDurable{Log: w, t: t, written: map[uint64]bool{}}
		hook(sn.d)
		d = sn.d
	}
	n, err := newNode(cfg, d, st)
	if err != nil {
		_ = w.Close()
		t.Fatalf("new node: %v", err)
	}
	sn.n = n
	ctx, cancel := context.WithCancel(context.Background())
	sn.cancel = cancel
	go func() { sn.errC <- n.Run(ctx, benchTransport{}) }()
	t.Cleanup(func() { sn.stop(t) })
	return sn
}

// stop stops the node (once) and returns what Run returned.
func (sn *snapNode) stop(t *testing.T) error {
	t.Helper()
	if sn.cancel == nil {
		return nil
	}
	sn.cancel()
	sn.cancel = nil
	select {
	case err := <-sn.errC:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// propose proposes cmd and fails the test unless it is applied within
// 10 s.
func (sn *snapNode) propose(t *testing.T, cmd *lock.Command) (lock.Result, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, idx, err := sn.n.Propose(ctx, cmd)
	if err != nil {
		t.Fatalf("propose %v: %v", cmd.Op, err)
	}
	return res, idx
}

// read runs a linearizable read and returns the state and the applied
// index it saw.
func (sn *snapNode) read(t *testing.T) ([]byte, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b []byte
	var applied uint64
	if err := sn.n.Read(ctx, false, func(m *lock.Machine) { b, applied = m.Snapshot(), m.AppliedIndex() }); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b, applied
}

// acquireUntil opens a session and acquires locks until done is closed (or
// receives), at most max of them; it returns the session.
func (sn *snapNode) acquireUntil(t *testing.T, done <-chan struct{}, max int) uint64 {
	t.Helper()
	res, _ := sn.propose(t, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	for i := range max {
		select {
		case <-done:
			return res.Session
		default:
		}
		sn.propose(t, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: fmt.Sprintf("a/%03d", i)})
	}
	t.Fatalf("no snapshot started after %d entries", max)
	return 0
}

// sameLocks fails the test unless the states got and want (Snapshot bytes)
// hold the same locks, holders and tokens. A restarted node's state differs
// in its applied index and deadlines: its first term proposes a tick.
func sameLocks(t *testing.T, got, want []byte) {
	t.Helper()
	var gm, wm lock.Machine
	if err := gm.Restore(got); err != nil {
		t.Fatal(err)
	}
	if err := wm.Restore(want); err != nil {
		t.Fatal(err)
	}
	if g, w := gm.Locks(""), wm.Locks(""); !reflect.DeepEqual(g, w) {
		t.Fatalf("locks differ: %d locks at index %d, want %d at %d", len(g), gm.AppliedIndex(), len(w), wm.AppliedIndex())
	}
}

// keptLocks fails the test unless the state got (Snapshot bytes) holds
// every lock of want with the same holder and token. got may hold more: an
// entry applied just before the node stopped, which the test did not see.
func keptLocks(t *testing.T, got, want []byte) {
	t.Helper()
	var gm, wm lock.Machine
	if err := gm.Restore(got); err != nil {
		t.Fatal(err)
	}
	if err := wm.Restore(want); err != nil {
		t.Fatal(err)
	}
	for _, w := range wm.Locks("") {
		if g, ok := gm.Lock(w.Name); !ok || !reflect.DeepEqual(g, w) {
			t.Fatalf("lock %s: %+v after the restart, %+v before", w.Name, g.Holder, w.Holder)
		}
	}
}

func snapFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// While a snapshot's encoding and file write are blocked, the loop keeps
// serving: proposals commit, linearizable reads answer, and no second
// snapshot starts. Once the write completes, the loop records it.
func TestSnapshotWriteDoesNotBlockLoop(t *testing.T) {
	dir := t.TempDir()
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var fileIndex atomic.Uint64
	recorded := make(chan uint64, 10)
	sn := startSnapNode(t, dir, nil, func(d *hookDurable) {
		d.onFile = func(s *raftpb.Snapshot) error {
			if fileIndex.CompareAndSwap(0, s.GetMetadata().GetIndex()) {
				close(entered)
				<-release
			}
			return nil
		}
		d.onRecord = func(s *raftpb.Snapshot) error {
			recorded <- s.GetMetadata().GetIndex()
			return nil
		}
	})
	t.Cleanup(unblock) // after startSnapNode's: runs before the node's stop
	session := sn.acquireUntil(t, entered, 100)
	// The snapshot goroutine is now blocked in SaveSnapshotFile. More than
	// SnapshotEvery entries, and reads, must still go through.
	for i := range 30 {
		res, _ := sn.propose(t, &lock.Command{Op: lock.OpAcquire, Session: session, Name: fmt.Sprintf("b/%03d", i)})
		if res.Code != lock.CodeOK {
			t.Fatalf("acquire b/%03d: %v", i, res.Code)
		}
	}
	state, applied := sn.read(t)
	var m lock.Machine
	if err := m.Restore(state); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lock("b/029"); !ok {
		t.Fatal("the read does not see the last lock")
	}
	if st := sn.n.Status(); st.SnapshotIndex != 0 {
		t.Fatalf("snapshot index %d while its file is still being written", st.SnapshotIndex)
	}
	select {
	case idx := <-recorded:
		t.Fatalf("snapshot %d recorded while its file is being written", idx)
	default:
	}
	t.Logf("applied %d while the snapshot at %d was being written", applied, fileIndex.Load())

	unblock()
	if idx := <-recorded; idx != fileIndex.Load() {
		t.Fatalf("recorded snapshot %d, want %d", idx, fileIndex.Load())
	}
	sn.read(t) // the loop has published its status since
	if st := sn.n.Status(); st.SnapshotIndex != fileIndex.Load() {
		t.Fatalf("snapshot index %d, want %d", st.SnapshotIndex, fileIndex.Load())
	}
	// The entries applied meanwhile start the next snapshot.
	sn.propose(t, &lock.Command{Op: lock.OpAcquire, Session: session, Name: "c"})
	if idx := <-recorded; idx <= fileIndex.Load() {
		t.Fatalf("second snapshot at %d, not after %d", idx, fileIndex.Load())
	}
	want, _ := sn.read(t)
	if err := sn.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A restart recovers the same state.
	again := startSnapNode(t, dir, nil, nil)
	got, _ := again.read(t)
	sameLocks(t, got, want)
}

// Run waits for a snapshot being written before it closes the WAL, and does
// not record it; the restart ignores its file.
func TestSnapshotInFlightAtShutdown(t *testing.T) {
	dir := t.TempDir()
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	stopping := newLogSignal("stopping")
	var fileIndex atomic.Uint64
	sn := startSnapNode(t, dir, slog.New(stopping), func(d *hookDurable) {
		d.onFile = func(s *raftpb.Snapshot) error {
			fileIndex.Store(s.GetMetadata().GetIndex())
			close(entered)
			<-release
			return nil
		}
		d.onRecord = func(s *raftpb.Snapshot) error {
			t.Errorf("snapshot %d recorded although the node was stopping", s.GetMetadata().GetIndex())
			return nil
		}
	})
	t.Cleanup(unblock) // after startSnapNode's: runs before the node's stop
	sn.acquireUntil(t, entered, 100)
	want, applied := sn.read(t)

	sn.cancel()
	sn.cancel = nil
	<-stopping.c
	select {
	case err := <-sn.errC:
		t.Fatalf("Run returned (%v) while its snapshot goroutine was still writing", err)
	default:
	}
	unblock()
	if err := <-sn.errC; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if files := snapFiles(t, dir); len(files) != 1 {
		t.Fatalf("snap files %v, want the unrecorded one", files)
	}

	again := startSnapNode(t, dir, nil, nil)
	if st := again.n.Status(); st.SnapshotIndex != 0 {
		t.Fatalf("restarted from snapshot %d, which was never recorded", st.SnapshotIndex)
	}
	got, gotApplied := again.read(t)
	sameLocks(t, got, want)
	t.Logf("snapshot file at %d ignored on restart; state at %d recovered (now %d)", fileIndex.Load(), applied, gotApplied)
}

var errInjectedCrash = errors.New("injected crash")

// A crash after the snap file is durable and before its WAL record leaves a
// node that restarts from the previous snapshot, with every entry, and that
// goes on snapshotting.
func TestRestartAfterCrashBetweenSnapFileAndRecord(t *testing.T) {
	dir := t.TempDir()
	var records atomic.Int32
	sn := startSnapNode(t, dir, nil, func(d *hookDurable) {
		d.onRecord = func(s *raftpb.Snapshot) error {
			if records.Add(1) == 2 {
				return errInjectedCrash // the process dies here
			}
			return nil
		}
	})
	res, _ := sn.propose(t, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	var first uint64
	var want []byte
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("no second snapshot after 200 entries")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, _, err := sn.n.Propose(ctx, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: fmt.Sprintf("a/%03d", i)})
		cancel()
		if err != nil {
			break // the node stopped at the second record
		}
		if r.Code != lock.CodeOK {
			t.Fatalf("acquire: %v", r.Code)
		}
		if first == 0 {
			first = sn.n.Status().SnapshotIndex
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		err = sn.n.Read(ctx, true, func(m *lock.Machine) { want = m.Snapshot() })
		cancel()
		if err != nil {
			break
		}
	}
	err := sn.stop(t)
	if !errors.Is(err, errInjectedCrash) {
		t.Fatalf("Run returned %v, want the injected crash", err)
	}
	if first == 0 {
		t.Fatal("the first snapshot was not recorded")
	}
	if !strings.Contains(err.Error(), "snapshot record") {
		t.Errorf("error %q does not say what failed", err)
	}
	files := snapFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("snap files %v, want the recorded one and the orphan", files)
	}

	recorded := make(chan uint64, 10)
	again := startSnapNode(t, dir, nil, func(d *hookDurable) {
		d.onRecord = func(s *raftpb.Snapshot) error {
			recorded <- s.GetMetadata().GetIndex()
			return nil
		}
	})
	if st := again.n.Status(); st.SnapshotIndex != first {
		t.Fatalf("restarted from snapshot %d, want the recorded one at %d", st.SnapshotIndex, first)
	}
	got, applied := again.read(t)
	keptLocks(t, got, want)
	// It snapshots again, past the orphan.
	for i := 0; ; i++ {
		again.propose(t, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: fmt.Sprintf("b/%03d", i)})
		select {
		case idx := <-recorded:
			if idx <= first {
				t.Fatalf("new snapshot at %d, not after %d", idx, first)
			}
			t.Logf("restarted at snapshot %d (applied %d), then snapshotted at %d", first, applied, idx)
			return
		default:
		}
		if i == 200 {
			t.Fatal("no snapshot after the restart")
		}
	}
}

// An error of the snapshot goroutine stops the node, with an error that
// names the snap file; the node restarts from its WAL.
func TestSnapshotFileErrorStopsNode(t *testing.T) {
	dir := t.TempDir()
	sn := startSnapNode(t, dir, nil, nil)
	snapDir := filepath.Join(dir, "snap")
	// Make the snap dir unusable: a file where the directory was.
	if err := os.RemoveAll(snapDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snapDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, _ := sn.propose(t, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Hour)})
	var want []byte
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := sn.n.Propose(ctx, &lock.Command{Op: lock.OpAcquire, Session: res.Session, Name: fmt.Sprintf("a/%03d", i)})
		cancel()
		if err != nil {
			break
		}
		_ = sn.n.Read(context.Background(), true, func(m *lock.Machine) { want = m.Snapshot() })
	}
	select {
	case <-sn.n.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not stop on the snapshot error")
	}
	err := sn.stop(t)
	if err == nil || !strings.Contains(err.Error(), "save snapshot at") || !strings.Contains(err.Error(), snapDir+string(filepath.Separator)) {
		t.Fatalf("Run returned %v, want a snapshot error naming the file in %s", err, snapDir)
	}
	t.Logf("error: %v", err)

	if err := os.Remove(snapDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(snapDir, 0o700); err != nil {
		t.Fatal(err)
	}
	again := startSnapNode(t, dir, nil, nil)
	got, _ := again.read(t)
	keptLocks(t, got, want)
}

// A MsgSnap to a member that its snapshot's configuration does not list
// leaves the Ready's messages: the loop only captures the state, with the
// current index and configuration, and the driver encodes the capture
// (off the loop) before it sends the message. Encoding on the loop
// stalled it for hundreds of milliseconds at a million locks.
func TestFreshSnapshotIsEncodedOffTheLoop(t *testing.T) {
	n := idleNode(t)
	old := &raftpb.ConfState{Voters: []uint64{1, 2}}
	snapTo := func(to uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), To: proto.Uint64(to), Snapshot: &raftpb.Snapshot{
			Data: []byte("old state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1), Term: proto.Uint64(1), ConfState: old}}}
	}
	heartbeat := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(2)}
	listed, added := snapTo(2), snapTo(4)
	got := n.freshenSnapshots([]*raftpb.Message{heartbeat, added, listed})
	if len(got) != 2 || got[0] != heartbeat || got[1] != listed {
		t.Fatalf("messages left to send now: %v, want the heartbeat and the snapshot to a listed member", got)
	}
	fresh := n.takeFreshSnaps()
	if len(fresh) != 1 || fresh[0].msg != added {
		t.Fatalf("fresh snapshots: %v, want the one to member 4", fresh)
	}
	if added.Snapshot.Data != nil {
		t.Fatal("the loop encoded the fresh snapshot")
	}
	if m := added.Snapshot.GetMetadata(); m.GetIndex() != n.applied || !proto.Equal(m.GetConfState(), n.confState) {
		t.Fatalf("fresh snapshot at %d with %v, want %d with %v", m.GetIndex(), m.GetConfState(), n.applied, n.confState)
	}
	fresh[0].encode()
	if want := n.machine.Snapshot(); !bytes.Equal(added.Snapshot.Data, want) {
		t.Fatal("the encoded fresh snapshot is not the state at its index")
	}
	if more := n.takeFreshSnaps(); len(more) != 0 {
		t.Fatalf("%d fresh snapshots taken twice", len(more))
	}
}
