package raftnode

import (
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/wal"
)

// Durable is where a node persists its Raft state. *wal.Log is the product's
// implementation; simulation tests use an in-memory one in which a crash
// loses what was not saved.
//
// Contract: when Save or SaveSnapshot returns nil, what it was given is
// durable (fsynced) and survives a crash; an error stops the node.
type Durable interface {
	// Save persists the hard state (nil: unchanged) and the entries, which
	// may overwrite a suffix of earlier ones.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry) error
	// SaveSnapshot persists a snapshot; older log entries may be released.
	SaveSnapshot(s *raftpb.Snapshot) error
	// Close releases the storage.
	Close() error
}

var _ Durable = (*wal.Log)(nil)
