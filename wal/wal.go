package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// DefaultKeepSnapshots is the number of snapshot files kept when
// Config.KeepSnapshots is zero.
const DefaultKeepSnapshots = 3

const (
	walSubdir  = "wal"
	snapSubdir = "snap"

	// remedy is appended to every corruption error: Open never skips damaged
	// data, so an operator has to act.
	remedy = "restore the data dir from a backup, or remove this member from the cluster and re-add it with an empty data dir"
)

var (
	// ErrCorrupt is wrapped by every error Open returns because the data on
	// disk is damaged or incomplete (other than a torn final record, which
	// Open repairs). The message names the damaged file or directory.
	ErrCorrupt = errors.New("wal: corrupt data")

	// ErrClosed is returned by Save and the SaveSnapshot methods after
	// Close.
	ErrClosed = errors.New("wal: closed")
)

// Config configures Open.
type Config struct {
	// Dir is the member's data directory. Open creates it (mode 0700) if
	// needed, and keeps the WAL in Dir/wal and snapshot files in Dir/snap.
	// Required.
	Dir string
	// Metadata is recorded in a newly created WAL and returned by every later
	// Open. It is ignored when the WAL already exists.
	Metadata []byte
	// KeepSnapshots is how many snapshot files SaveSnapshot keeps, counting
	// the newest one. Zero or negative means DefaultKeepSnapshots.
	KeepSnapshots int
	// Logger receives this package's log output and that of etcd's wal and
	// snap packages. Nil discards it.
	Logger *slog.Logger
}

// State is what Open found on disk.
type State struct {
	// Created reports that no WAL existed and Open created a new, empty one.
	Created bool
	// Metadata is the metadata recorded when the WAL was created.
	Metadata []byte
	// HardState is the last hard state saved, or nil when none was saved.
	HardState *raftpb.HardState
	// Snapshot is the newest snapshot that the WAL recorded and whose index
	// is committed, or nil when there is none.
	Snapshot *raftpb.Snapshot
	// Entries are the saved entries after Snapshot (all entries when
	// Snapshot is nil), in index order, with entries overwritten by a later
	// Save already dropped. Entries beyond HardState.Commit may still be
	// replaced by raft.
	Entries []*raftpb.Entry
	// Repaired reports that the last WAL segment ended in a torn record (a
	// write that never completed) and Open cut it off. Only unacknowledged
	// data is lost that way; Open logs a warning.
	Repaired bool
}

// Log is a member's durable raft storage: the WAL plus the snapshot files.
//
// A Log is owned by one goroutine (the raft Ready loop), which calls Save,
// SaveSnapshot, SaveSnapshotRecord and Close in turn. The one exception is
// SaveSnapshotFile, which another goroutine may run concurrently with Save
// and SaveSnapshotRecord (see its contract), so that writing a large
// snapshot does not stall the owner. After Save, SaveSnapshot or
// SaveSnapshotRecord has failed, the state on disk is unknown; the owner
// must stop and Close the Log, and may Open it again.
type Log struct {
	lg      *slog.Logger
	zl      *zap.Logger
	walDir  string
	snapDir string
	keep    int

	w  *etcdwal.WAL
	ss *snap.Snapshotter

	// commit is the highest commit index of a hard state written to the WAL.
	commit uint64
	// pendingRelease is the index of a saved snapshot whose clean-up
	// (releasing old WAL segments and old snap files) waits until a hard
	// state with commit >= it is durable; 0 means none. Until then a restart
	// would ignore that snapshot and need the older one and its segments.
	pendingRelease uint64
	// closed is set by Close; SaveSnapshotFile, which may run on another
	// goroutine, reads it instead of w.
	closed atomic.Bool
	// removing counts the removals of released files in flight (see
	// release); removeMu runs them one at a time.
	removing sync.WaitGroup
	removeMu sync.Mutex
}

// Open opens the storage in cfg.Dir, creating it when Dir/wal does not
// exist, and returns what it recovered. The returned Log is ready for Save.
//
// A torn final record in the last WAL segment is cut off (State.Repaired).
// Any other damage — a checksum mismatch before the end, a missing segment,
// a missing or unreadable snapshot file that the WAL refers to — makes Open
// fail with an error that wraps ErrCorrupt and names the file; Open never
// falls back to older data silently. Open also fails if another process
// holds the WAL open, or if ctx is done before it starts.
func Open(ctx context.Context, cfg Config) (*Log, *State, error) {
	if cfg.Dir == "" {
		return nil, nil, errors.New("open wal: empty Dir")
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("open wal: %w", err)
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	lg = lg.With("component", "wal", "dir", cfg.Dir)
	keep := cfg.KeepSnapshots
	if keep <= 0 {
		keep = DefaultKeepSnapshots
	}
	zl := NewZapLogger(lg)
	l := &Log{
		lg:      lg,
		zl:      zl,
		walDir:  filepath.Join(cfg.Dir, walSubdir),
		snapDir: filepath.Join(cfg.Dir, snapSubdir),
		keep:    keep,
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("open wal: create data dir: %w", err)
	}
	if err := os.MkdirAll(l.snapDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("open wal: create snap dir: %w", err)
	}
	l.ss = snap.New(zl, l.snapDir)

	var (
		st  *State
		err error
	)
	if etcdwal.Exist(l.walDir) {
		st, err = l.recover(ctx)
	} else {
		st, err = l.create(cfg.Metadata)
	}
	if err != nil {
		return nil, nil, err
	}
	return l, st, nil
}

// create makes a new WAL. It refuses when leftovers show that a WAL existed:
// creating an empty one then would make this member forget what it
// acknowledged.
func (l *Log) create(md []byte) (*State, error) {
	if fi, err := os.Stat(l.walDir); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%w: wal dir %s exists but holds no wal segments; %s", ErrCorrupt, l.walDir, remedy)
	}
	if snaps, err := listSnapFiles(l.snapDir); err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	} else if len(snaps) > 0 {
		return nil, fmt.Errorf("%w: snap dir %s holds snapshot files but the wal dir %s is missing; %s",
			ErrCorrupt, l.snapDir, l.walDir, remedy)
	}
	w, err := etcdwal.Create(l.zl, l.walDir, md)
	if err != nil {
		return nil, fmt.Errorf("create wal %s: %w", l.walDir, err)
	}
	l.w = w
	l.lg.Info("created wal")
	return &State{Created: true, Metadata: append([]byte(nil), md...)}, nil
}

// recover opens an existing WAL at its newest valid snapshot and reads it.
func (l *Log) recover(ctx context.Context) (*State, error) {
	names, err := segmentNames(l.walDir)
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: wal dir %s holds no segment; %s", ErrCorrupt, l.walDir, remedy)
	}
	for i := 1; i < len(names); i++ {
		if names[i].seq != names[i-1].seq+1 {
			return nil, fmt.Errorf("%w: wal dir %s: segment sequence jumps from %s to %s (a segment is missing); %s",
				ErrCorrupt, l.walDir, names[i-1].name, names[i].name, remedy)
		}
	}

	// Before etcd reads (and, in write mode, zeroes everything after the
	// last record it could decode): an apparent end of the log in the last
	// segment, clean or torn, may hide damage with fsynced records after
	// it, for example a zeroed or flipped length word.
	lastSeg := filepath.Join(l.walDir, names[len(names)-1].name)
	if _, detail := checkSegment(lastSeg, false, 0, true, false); detail != nil {
		return nil, fmt.Errorf("%w: wal segment %s: %v; %s", ErrCorrupt, lastSeg, detail, remedy)
	}

	walSnaps, err := etcdwal.ValidSnapshotEntries(l.zl, l.walDir)
	if err != nil {
		return nil, l.corruptWAL(names, fmt.Errorf("scan snapshot records: %w", err))
	}
	if len(walSnaps) == 0 {
		return nil, fmt.Errorf("%w: wal dir %s: no usable snapshot record (first segment %s missing or damaged, or no committed hard state); %s",
			ErrCorrupt, l.walDir, filepath.Join(l.walDir, names[0].name), remedy)
	}
	newest := walSnaps[len(walSnaps)-1]

	var snapshot *raftpb.Snapshot
	if newest.GetIndex() > 0 {
		if snapshot, err = l.loadSnap(newest); err != nil {
			return nil, err
		}
	}
	l.warnUnknownSnaps(newest.GetIndex())
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}

	start := &walpb.Snapshot{Index: proto.Uint64(newest.GetIndex()), Term: proto.Uint64(newest.GetTerm())}
	md, hs, ents, err := l.openAndRead(names, start)
	repaired := false
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// etcd's decoder reports a torn record, but so it does for a
		// damaged length word anywhere: repair only a true torn tail, where
		// nothing valid follows in the last segment (checked above) and all
		// else is sound.
		if path, detail := locateCorruption(names, l.walDir); path != "" {
			return nil, fmt.Errorf("%w: wal segment %s: %v (%w); %s", ErrCorrupt, path, detail, err, remedy)
		}
		l.lg.Warn("wal ends in a torn record, cutting it off", "segment", lastSeg, "error", err)
		if !etcdwal.Repair(l.zl, l.walDir) {
			return nil, l.corruptWAL(names, fmt.Errorf("repair torn tail: %w", err))
		}
		repaired = true
		md, hs, ents, err = l.openAndRead(names, start)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = l.corruptWAL(names, fmt.Errorf("read after repairing the tail: %w", err))
		}
	}
	if err != nil {
		return nil, err
	}
	l.commit = hs.GetCommit()
	if !raft.IsEmptyHardState(hs) {
		// Record the hard state again at the tail. etcd's WAL repeats its
		// last saved hard state at the head of every new segment, but only
		// one saved through this handle; without this, releasing old
		// segments after a snapshot could drop the last hard state record.
		if err := l.w.Save(hs, nil); err != nil {
			_ = l.w.Close()
			l.w = nil
			return nil, fmt.Errorf("open wal: save hard state: %w", err)
		}
	} else {
		hs = nil
	}
	if repaired {
		l.lg.Warn("wal repaired", "last_index", lastIndex(newest.GetIndex(), ents))
	}
	l.lg.Info("opened wal",
		"snapshot_index", newest.GetIndex(), "entries", len(ents),
		"term", hs.GetTerm(), "commit", hs.GetCommit())
	return &State{
		Metadata:  md,
		HardState: hs,
		Snapshot:  snapshot,
		Entries:   ents,
		Repaired:  repaired,
	}, nil
}

// openAndRead opens the WAL at start and reads it to the end. On success l.w
// is set and ready for appending. A read error wrapping io.ErrUnexpectedEOF
// (a torn tail) is returned as is, so that the caller may repair; every other
// error is already a corruption (or lock) error.
func (l *Log) openAndRead(names []segment, start *walpb.Snapshot) ([]byte, *raftpb.HardState, []*raftpb.Entry, error) {
	w, err := etcdwal.Open(l.zl, l.walDir, start)
	if err != nil {
		if errors.Is(err, fileutil.ErrLocked) {
			return nil, nil, nil, fmt.Errorf("open wal: %s is in use by another process: %w", l.walDir, err)
		}
		return nil, nil, nil, l.corruptWAL(names, fmt.Errorf("open at snapshot index %d: %w", start.GetIndex(), err))
	}
	md, hs, ents, err := w.ReadAll()
	if err != nil {
		_ = w.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, nil, err
		}
		return nil, nil, nil, l.corruptWAL(names, fmt.Errorf("read: %w", err))
	}
	l.w = w
	return md, hs, ents, nil
}

// loadSnap reads the snapshot file that the WAL record s refers to. Unlike
// snap.Snapshotter.LoadNewestAvailable it never falls back to an older file:
// the WAL before s may already be gone, so falling back could lose data.
func (l *Log) loadSnap(s *walpb.Snapshot) (*raftpb.Snapshot, error) {
	path := filepath.Join(l.snapDir, snapName(s.GetTerm(), s.GetIndex()))
	snapshot, err := snap.Read(l.zl, path)
	if err != nil {
		what := "unreadable"
		if errors.Is(err, os.ErrNotExist) {
			what = "missing"
		}
		return nil, fmt.Errorf("%w: snap file %s (index %d, term %d, recorded in the wal) is %s: %w; %s",
			ErrCorrupt, path, s.GetIndex(), s.GetTerm(), what, err, remedy)
	}
	m := snapshot.GetMetadata()
	if m.GetIndex() != s.GetIndex() || m.GetTerm() != s.GetTerm() {
		return nil, fmt.Errorf("%w: snap file %s holds index %d term %d, want index %d term %d; %s",
			ErrCorrupt, path, m.GetIndex(), m.GetTerm(), s.GetIndex(), s.GetTerm(), remedy)
	}
	return snapshot, nil
}

// warnUnknownSnaps logs snap files newer than the snapshot in use. They come
// from a SaveSnapshotFile whose SaveSnapshotRecord never ran (a crash or a
// stop in between), or from a snapshot whose record's index was not yet
// committed, and are ignored: never trusted without a committed record.
// They are left in place: once a later snapshot is recorded they are older
// than it, and its clean-up purges them like any old snap file.
func (l *Log) warnUnknownSnaps(index uint64) {
	files, err := listSnapFiles(l.snapDir)
	if err != nil {
		l.lg.Warn("list snap files", "error", err)
		return
	}
	for _, f := range files {
		if f.index > index {
			l.lg.Warn("ignoring snap file unknown to the wal", "path", filepath.Join(l.snapDir, f.name), "index", f.index)
		}
	}
}

// corruptWAL wraps err as a corruption of the WAL, naming the damaged
// segment when it can be located.
func (l *Log) corruptWAL(names []segment, err error) error {
	if path, detail := locateCorruption(names, l.walDir); path != "" {
		return fmt.Errorf("%w: wal segment %s: %v (%w); %s", ErrCorrupt, path, detail, err, remedy)
	}
	return fmt.Errorf("%w: wal dir %s: %w; %s", ErrCorrupt, l.walDir, err, remedy)
}

// Save appends ents and then hs (which may be nil or empty: nothing is
// recorded for it) to the WAL. It fsyncs when raft.MustSync requires it
// (new entries, or a changed term or vote), so on return those are durable.
// A change of commit index alone is written but not fsynced.
//
// Save must be called before the entries are handed to raft's
// MemoryStorage. If Save fails, the Log must not be used further except for
// Close.
func (l *Log) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if l.w == nil {
		return ErrClosed
	}
	if err := l.w.Save(hs, ents); err != nil {
		return fmt.Errorf("save wal: %w", err)
	}
	if !raft.IsEmptyHardState(hs) && hs.GetCommit() > l.commit {
		l.commit = hs.GetCommit()
	}
	if l.pendingRelease != 0 && l.commit >= l.pendingRelease {
		// Make the commit durable before dropping what a restart without it
		// would need.
		if err := l.w.Sync(); err != nil {
			return fmt.Errorf("save wal: sync: %w", err)
		}
		index := l.pendingRelease
		l.pendingRelease = 0
		if err := l.release(index); err != nil {
			return fmt.Errorf("save wal: %w", err)
		}
	}
	return nil
}

// SaveSnapshot makes s durable: SaveSnapshotFile(s), then
// SaveSnapshotRecord(s). It is for callers that have the snapshot's data in
// hand on the owning goroutine (a snapshot received from the leader); see
// those two methods for the contract.
func (l *Log) SaveSnapshot(s *raftpb.Snapshot) error {
	if err := l.SaveSnapshotFile(s); err != nil {
		return err
	}
	return l.SaveSnapshotRecord(s)
}

// SaveSnapshotFile writes s, data included, to its snap file in Dir/snap
// (named term-index.snap, replacing a file of that name) and fsyncs the
// file and the directory. It does not touch the WAL: until
// SaveSnapshotRecord(s) has returned nil the file is unknown to the log,
// and a restart ignores it (Open logs it and recovers from the previous
// snapshot). s must have a non-zero index and a ConfState.
//
// Unlike the other methods, SaveSnapshotFile may be called from any
// goroutine, concurrently with Save and SaveSnapshotRecord (not with Close,
// nor with another SaveSnapshotFile): it only writes its own file. The
// clean-up after a later record removes only snap files older than that
// record, so the caller must not record a snapshot newer than one whose
// file is still being written. It returns ErrClosed after Close. An error
// names the file; the file may then be missing or torn, which is harmless
// as no record refers to it, and the Log remains usable.
func (l *Log) SaveSnapshotFile(s *raftpb.Snapshot) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if raft.IsEmptySnap(s) {
		return errors.New("save snapshot file: snapshot has index 0")
	}
	m := s.GetMetadata()
	if m.GetConfState() == nil {
		return fmt.Errorf("save snapshot file: index %d: missing conf state", m.GetIndex())
	}
	path := filepath.Join(l.snapDir, snapName(m.GetTerm(), m.GetIndex()))
	if err := writeSnapFile(path, s); err != nil {
		return fmt.Errorf("save snapshot file %s: %w", path, err)
	}
	if err := fsyncDir(l.snapDir); err != nil {
		return fmt.Errorf("save snapshot file %s: %w", path, err)
	}
	return nil
}

// SaveSnapshotRecord appends the WAL snapshot record {Index, Term,
// ConfState} of s and fsyncs the WAL: from then on a restart recovers from
// s's snap file (once s's index is committed), so that file must already be
// durable. SaveSnapshotRecord checks that it exists and refuses otherwise;
// call SaveSnapshotFile(s) first and wait for it. s.Data is not used.
// Records must come in increasing index order.
//
// Once a hard state with commit >= s's index has been saved (already, or by
// a later Save), the Log removes WAL segments that hold only entries before
// s, and all but the newest KeepSnapshots snap files older than s. A
// restart before that point still recovers from the previous snapshot.
//
// Call it on the owning goroutine, before Save for the same Ready. If
// SaveSnapshotRecord fails, the Log must not be used further except for
// Close.
func (l *Log) SaveSnapshotRecord(s *raftpb.Snapshot) error {
	if l.w == nil {
		return ErrClosed
	}
	if raft.IsEmptySnap(s) {
		return errors.New("save snapshot record: snapshot has index 0")
	}
	m := s.GetMetadata()
	if m.GetConfState() == nil {
		return fmt.Errorf("save snapshot record: index %d: missing conf state", m.GetIndex())
	}
	path := filepath.Join(l.snapDir, snapName(m.GetTerm(), m.GetIndex()))
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("save snapshot record: index %d: snap file not written (SaveSnapshotFile first): %w", m.GetIndex(), err)
	}
	rec := &walpb.Snapshot{
		Index:     proto.Uint64(m.GetIndex()),
		Term:      proto.Uint64(m.GetTerm()),
		ConfState: proto.Clone(m.GetConfState()).(*raftpb.ConfState),
	}
	if err := l.w.SaveSnapshot(rec); err != nil {
		return fmt.Errorf("save snapshot record: index %d: %w", m.GetIndex(), err)
	}
	l.lg.Info("saved snapshot", "index", m.GetIndex(), "term", m.GetTerm())
	// wal.SaveSnapshot fsynced everything written before it, so a commit
	// already saved is durable now.
	if l.commit >= m.GetIndex() {
		if err := l.release(m.GetIndex()); err != nil {
			return fmt.Errorf("save snapshot record: %w", err)
		}
		return nil
	}
	l.pendingRelease = max(l.pendingRelease, m.GetIndex())
	return nil
}

// release drops what the durable, committed snapshot at index makes
// unnecessary: WAL segments whose entries all precede index, and snap files
// older than the newest keep ones.
//
// The WAL lets go of the segments at once; removing their files (and the
// old snap files) happens on another goroutine, so that the owner's
// goroutine (the Raft loop) does not stall on the unlinks and the
// directory fsync: with a large state the log between two snapshots spans
// several 64 MiB segments, whose removal took 150 ms. A removal that
// fails is logged and left for the next release (which removes whatever
// is older than its index); a crash before it leaves files that the next
// release removes. Close waits for the removals in flight.
func (l *Log) release(index uint64) error {
	if err := l.w.ReleaseLockTo(index); err != nil {
		return fmt.Errorf("release wal segments: %w", err)
	}
	l.removing.Add(1)
	go func() {
		defer l.removing.Done()
		l.removeMu.Lock()
		defer l.removeMu.Unlock()
		if err := l.removeReleased(index); err != nil {
			l.lg.Warn("removing released files failed; the next snapshot retries", "index", index, "error", err)
		}
	}()
	return nil
}

// awaitRemovals waits until the removals of released files in flight are
// done.
func (l *Log) awaitRemovals() { l.removing.Wait() }

// removeReleased removes the WAL segments whose entries all precede index
// and the snap files that release lets go.
func (l *Log) removeReleased(index uint64) error {
	names, err := segmentNames(l.walDir)
	if err != nil {
		return fmt.Errorf("release wal segments: %w", err)
	}
	// Segment i holds entries from names[i].index up to
	// names[i+1].index-1. Like wal.ReleaseLockTo, keep the last segment
	// that starts before index and everything after it.
	removed := 0
	for i := 0; i+1 < len(names) && names[i+1].index < index; i++ {
		path := filepath.Join(l.walDir, names[i].name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove wal segment: %w", err)
		}
		l.lg.Debug("removed wal segment", "path", path)
		removed++
	}
	if removed > 0 {
		if err := fsyncDir(l.walDir); err != nil {
			return fmt.Errorf("release wal segments: %w", err)
		}
		l.lg.Info("released wal segments", "index", index, "removed", removed)
	}
	return l.purgeSnaps(index)
}

// purgeSnaps removes snap files older than index beyond the newest l.keep
// (counting the one at index). Files newer than index are left alone.
func (l *Log) purgeSnaps(index uint64) error {
	files, err := listSnapFiles(l.snapDir)
	if err != nil {
		return fmt.Errorf("purge snap files: %w", err)
	}
	// files is newest first; the file at index counts as the first kept.
	kept := 1
	for _, f := range files {
		if f.index >= index {
			continue
		}
		if kept < l.keep {
			kept++
			continue
		}
		path := filepath.Join(l.snapDir, f.name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("purge snap files: %w", err)
		}
		l.lg.Debug("removed snap file", "path", path)
	}
	return nil
}

// Close flushes and fsyncs the WAL and releases its files and locks. It is
// safe to call more than once; later calls return nil.
func (l *Log) Close() error {
	if l.w == nil {
		return nil
	}
	l.closed.Store(true)
	l.awaitRemovals()
	err := l.w.Close()
	l.w = nil
	if err != nil {
		return fmt.Errorf("close wal: %w", err)
	}
	return nil
}

func lastIndex(snapIndex uint64, ents []*raftpb.Entry) uint64 {
	if len(ents) == 0 {
		return snapIndex
	}
	return ents[len(ents)-1].GetIndex()
}

func fsyncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	err = fileutil.Fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
