package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// Restoring a backup (raftlockd --restore-from, as etcdutl snapshot
// restore) makes the data dir of one member of a NEW cluster from a
// snapshot file (api.WriteSnapshot's format, GET /v1/snapshot). Every
// member of the new cluster is restored from the same file, with the same
// Peers and ClusterToken, and then started as usual: its WAL already holds
// a snapshot, so New does not bootstrap it, and the members elect a leader
// among themselves.
//
// The data dir is what New would have written had the cluster lived
// through the snapshot's log:
//
//   - WAL metadata {"id","peers","cluster_id"} as New writes it, with
//     cluster_id = ClusterIDFor(ClusterToken, Peers): the old cluster's
//     members refuse the new one's messages, and the reverse;
//   - a snapshot at index S, the state's applied index, and term T, the
//     term of the last clocked command of the state (at least 1), whose
//     ConfState has the new Peers as voters, and whose data is the state
//     after lock.Machine.ForNewCluster (the old cluster's members, removed
//     IDs, cluster version and alarms forgotten);
//   - a HardState {Term: T, Commit: S}.
//
// So the new log continues after S (fencing tokens and session IDs keep
// increasing: every token of the old cluster is at most S), and its first
// leader's term exceeds T: its first clocked command extends every
// session's deadline to at least its clock + TTL (lock.Machine.Apply), so
// no restored session expires because the restore took time.

// RestoreConfig configures RestoreDataDir.
type RestoreConfig struct {
	// DataDir is the new member's data dir. It must hold no WAL and no
	// snap file; it is created (0700) if missing. Required.
	DataDir string
	// ID is this member's ID in the new cluster: non-zero, one of Peers.
	ID uint64
	// Peers are the new cluster's members, ID → peer URL, this one
	// included: the same on every member. Required.
	Peers map[uint64]string
	// ClusterToken goes into the new cluster's ID (ClusterIDFor), as
	// Config.ClusterToken does for a new cluster. Give the restored
	// cluster a token the old one did not have, or other Peers: with the
	// old cluster's Peers and token the two clusters would have the same
	// ID, and members of the old one could talk to the new one.
	ClusterToken string
	// Snapshot is the snapshot file, read to its end. Required.
	Snapshot io.Reader
	// BumpIndex moves the new log's start this far above the snapshot's
	// index, as etcdutl's --bump-revision: the fencing tokens of the new
	// cluster then start above every token the old cluster granted after
	// the backup (if it kept running), up to BumpIndex of them. 0: the new
	// log continues right after the snapshot.
	BumpIndex uint64
	// SnapshotName names the snapshot in errors and logs (its path).
	// Default "the snapshot".
	SnapshotName string
	// Logger receives an Info line when the data dir is made. Nil
	// discards it.
	Logger *slog.Logger
}

// RestoreInfo describes a restored data dir.
type RestoreInfo struct {
	// Snapshot is the snapshot file that was restored.
	Snapshot api.SnapshotInfo
	// Index and Term are those of the data dir's raft snapshot: the new
	// log continues after Index, and its first leader's term is above
	// Term.
	Index, Term uint64
	// ClusterID is the new cluster's ID.
	ClusterID uint64
}

// ErrDataDirInUse is wrapped by RestoreDataDir's error when the data dir
// already holds a WAL or snap files: a restore never overwrites a member's
// data.
var ErrDataDirInUse = errors.New("raftnode: data dir in use")

// RestoreDataDir makes cfg.DataDir the data dir of member cfg.ID of a new
// cluster of cfg.Peers whose state is the snapshot file cfg.Snapshot (see
// above for what it writes). It reads and verifies the whole file first:
// a damaged, truncated or foreign file, or a state that does not decode
// or that disagrees with the file's header, is refused with an error that
// names the file and says why (wrapping api.ErrSnapshotInvalid for the
// file's own checks, lock.ErrCorrupt or lock.ErrUnknownVersion for the
// state's), and nothing is written. A data dir that holds a WAL or snap
// files is refused (ErrDataDirInUse).
//
// The WAL and snap files are written and fsynced in a temporary directory
// next to DataDir, and moved into DataDir last, the WAL directory after
// the snap directory: a crash leaves either no WAL in DataDir, or the
// whole restored one (and perhaps a leftover temporary directory, named
// DataDir.restore-*, to remove). The state is held in memory twice (as
// read, and re-encoded).
func RestoreDataDir(ctx context.Context, cfg RestoreConfig) (RestoreInfo, error) {
	var out RestoreInfo
	name := cfg.SnapshotName
	if name == "" {
		name = "the snapshot"
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("raftnode: restore: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return out, err
	}
	if err := checkEmptyDataDir(cfg.DataDir); err != nil {
		return out, err
	}

	info, state, err := api.ReadSnapshot(cfg.Snapshot)
	out.Snapshot = info
	if err != nil {
		return out, fmt.Errorf("raftnode: restore from %s: %w", name, err)
	}
	if info.Index == 0 {
		return out, fmt.Errorf("raftnode: restore from %s: %w: the state is at index 0 (a cluster that never started): start a new cluster instead", name, api.ErrSnapshotInvalid)
	}
	m := lock.New()
	if err := m.Restore(state); err != nil {
		return out, fmt.Errorf("raftnode: restore from %s (its checksum is right: was it written by a newer raftlock?): %w", name, err)
	}
	if m.AppliedIndex() != info.Index || m.Term() != info.Term {
		return out, fmt.Errorf("raftnode: restore from %s: %w: its header says index %d term %d, but its state is at index %d term %d",
			name, api.ErrSnapshotInvalid, info.Index, info.Term, m.AppliedIndex(), m.Term())
	}
	state = nil
	m.ForNewCluster()
	if cfg.BumpIndex > math.MaxUint64/2-info.Index {
		return out, fmt.Errorf("raftnode: restore from %s: bump index %d is too large", name, cfg.BumpIndex)
	}
	m.SkipTo(info.Index + cfg.BumpIndex)
	data := m.Snapshot()

	out.Index = info.Index + cfg.BumpIndex
	out.Term = max(info.Term, 1)
	out.ClusterID = ClusterIDFor(cfg.ClusterToken, cfg.Peers)
	if strconv.FormatUint(out.ClusterID, 16) == info.ClusterID {
		return out, fmt.Errorf("raftnode: restore from %s: the new cluster would have the ID of the cluster the snapshot comes from (%s), and that cluster's members could talk to it: give it a cluster token that cluster did not have (--initial-cluster-token)",
			name, info.ClusterID)
	}
	meta, err := json.Marshal(metadata{ID: cfg.ID, Peers: cfg.Peers, ClusterID: out.ClusterID})
	if err != nil {
		return out, fmt.Errorf("raftnode: restore: encode metadata: %w", err)
	}
	voters := make([]uint64, 0, len(cfg.Peers))
	for id := range cfg.Peers {
		voters = append(voters, id)
	}
	slices.Sort(voters)
	snap := &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(out.Index),
			Term:      proto.Uint64(out.Term),
			ConfState: &raftpb.ConfState{Voters: voters},
		},
	}
	hs := &raftpb.HardState{Term: proto.Uint64(out.Term), Commit: proto.Uint64(out.Index)}
	if err := writeRestored(ctx, cfg.DataDir, meta, snap, hs, lg); err != nil {
		return out, err
	}
	lg.Info("restored a data dir for a new cluster", "data_dir", cfg.DataDir, "snapshot", name,
		"node_id", cfg.ID, "index", out.Index, "term", out.Term, "members", len(cfg.Peers),
		"cluster_id", fmt.Sprintf("%x", out.ClusterID), "sessions", m.SessionCount(), "locks", m.LockCount(), "elections", m.ElectionCount())
	return out, nil
}

func (cfg RestoreConfig) validate() error {
	switch {
	case cfg.DataDir == "":
		return errors.New("raftnode: restore: data dir is required")
	case cfg.ID == 0:
		return errors.New("raftnode: restore: member ID 0 is not allowed")
	case cfg.Snapshot == nil:
		return errors.New("raftnode: restore: no snapshot to read")
	case cfg.Peers[cfg.ID] == "":
		return fmt.Errorf("raftnode: restore: member %d is not one of the new cluster's members %v", cfg.ID, cfg.Peers)
	}
	for id, u := range cfg.Peers {
		if id == 0 {
			return errors.New("raftnode: restore: member ID 0 is not allowed")
		}
		if u == "" {
			return fmt.Errorf("raftnode: restore: member %d has no peer URL", id)
		}
	}
	return nil
}

// checkEmptyDataDir refuses a data dir that holds a WAL or snap files.
func checkEmptyDataDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "wal")); err == nil {
		return fmt.Errorf("%w: %s already holds a WAL: a restore makes a new member's data dir and never overwrites one (give an empty or missing data dir; to restart a restored member, start it without the restore)", ErrDataDirInUse, dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "snap")); err == nil && len(ents) > 0 {
		return fmt.Errorf("%w: %s holds snap files (in %s): a restore never overwrites a member's data; give an empty or missing data dir", ErrDataDirInUse, dir, filepath.Join(dir, "snap"))
	}
	return nil
}

// writeRestored writes the WAL (metadata, snapshot record, hard state) and
// the snap file in a temporary directory beside dir, then moves them into
// dir: snap first, wal last, each rename fsynced.
func writeRestored(ctx context.Context, dir string, meta []byte, snap *raftpb.Snapshot, hs *raftpb.HardState, lg *slog.Logger) (err error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("raftnode: restore: create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(filepath.Clean(dir))+".restore-*")
	if err != nil {
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("raftnode: restore: remove %s: %w", tmp, rerr)
		}
	}()
	l, st, err := wal.Open(ctx, wal.Config{Dir: tmp, Metadata: meta, Logger: lg})
	if err != nil {
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if !st.Created {
		_ = l.Close()
		return fmt.Errorf("raftnode: restore: %s: a WAL appeared in the new temporary directory", tmp)
	}
	if err := l.SaveSnapshot(snap); err != nil {
		_ = l.Close()
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if err := l.Save(hs, nil); err != nil {
		_ = l.Close()
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("raftnode: restore: %w", err)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("raftnode: restore: create data dir: %w", err)
	}
	// The checks again, right before the moves: nothing may have
	// appeared meanwhile.
	if err := checkEmptyDataDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(dir, "snap")); err != nil { // empty, if there
		return fmt.Errorf("raftnode: restore: %w", err)
	}
	for _, sub := range []string{"snap", "wal"} {
		if err := os.Rename(filepath.Join(tmp, sub), filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("raftnode: restore: move the %s directory into the data dir: %w", sub, err)
		}
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("raftnode: restore: %w", err)
		}
	}
	return nil
}

// syncDir fsyncs a directory, so that the renames in it are durable.
func syncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
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
