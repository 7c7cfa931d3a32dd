package raftnode

import (
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/wal"
)

// Durable is where a node persists its Raft state. *wal.Log is the product's
// implementation; simulation tests use an in-memory one in which a crash
// loses what was not saved.
//
// Contract: when a method returns nil, what it was given is durable
// (fsynced) and survives a crash. Any error stops the node (Run returns
// it). The node's loop goroutine calls every method, except that
// SaveSnapshotFile of the node's own snapshots runs on a goroutine of its
// own, concurrently with the loop's Save and SaveSnapshotRecord calls; the
// loop never starts a second SaveSnapshotFile before the first returned,
// and calls Close only after it returned.
type Durable interface {
	// Save persists the hard state (nil: unchanged) and the entries, which
	// may overwrite a suffix of earlier ones.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry) error
	// SaveSnapshotFile persists s, data included, where a later
	// SaveSnapshotRecord(s) can refer to it. Until that record is saved,
	// a restart must ignore it and recover as if it was never written.
	// It must be safe to call concurrently with Save and
	// SaveSnapshotRecord. An error should name the file.
	SaveSnapshotFile(s *raftpb.Snapshot) error
	// SaveSnapshotRecord records s as the snapshot a restart recovers
	// from (once its index is committed); older log entries may be
	// released. The node calls it only after SaveSnapshotFile(s) returned
	// nil, and in increasing index order. s.Data may be ignored.
	SaveSnapshotRecord(s *raftpb.Snapshot) error
	// Close releases the storage. No other method is called after it.
	Close() error
}

var _ Durable = (*wal.Log)(nil)
