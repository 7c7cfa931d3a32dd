// Package wal is raftlock's durable raft storage: a write-ahead log of raft
// hard states and entries plus snapshot files, built on etcd's storage/wal
// and etcdserver/api/snap packages.
//
// A data directory holds two subdirectories:
//
//	Dir/wal   WAL segments (etcd format, fsynced as raft.MustSync requires)
//	Dir/snap  snapshot files, one per SaveSnapshot, named term-index.snap
//
// Open creates a fresh directory or recovers an existing one. Recovery is
// strict: the only damage it mends by itself is a torn final record in the
// last WAL segment (a write that was never acknowledged because the process
// or machine died before fsync returned). Every other problem — a checksum
// mismatch before the tail, a missing segment, an unreadable snapshot that
// the WAL refers to — makes Open fail with an error that wraps ErrCorrupt,
// names the file and tells the operator what to do. Nothing is skipped
// silently, because a member that forgets acknowledged raft state can break
// the safety of the whole cluster.
//
// Ordering contract for the caller (raftnode's Ready loop):
//
//  1. SaveSnapshot(rd.Snapshot) when the Ready carries a snapshot; it writes
//     the snap file (fsynced) before the WAL snapshot record;
//  2. Save(rd.HardState, rd.Entries);
//  3. only then apply the snapshot and entries to raft's MemoryStorage.
//
// A snapshot of the caller's own state is saved in two steps, so that the
// large write happens off the loop: SaveSnapshotFile (on any goroutine,
// concurrently with Save), then, once it returned nil, SaveSnapshotRecord
// on the loop. A crash between the two leaves a snap file that no record
// refers to; Open ignores it (and logs it) and recovers from the previous
// snapshot.
//
// A Log is owned by one goroutine; none of its methods may be called
// concurrently, except SaveSnapshotFile as its contract says.
//
// zap, which etcd's packages require, is confined to this package: their
// log output is bridged to the slog.Logger in Config.
package wal
