package raftnode

import (
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// memStorage is the raft.Storage of a node: a raft.MemoryStorage whose
// snapshot holds only the metadata, with the snapshot's data kept beside
// it and attached, not copied, when raft or the node asks for the
// snapshot.
//
// raft.MemoryStorage clones its whole snapshot, data included, in
// CreateSnapshot, ApplySnapshot and every Snapshot call. On the loop, with
// a large state, that is tens of MiB allocated and copied at once (35 MiB
// at a million locks), and the allocation is charged to the loop in GC
// mark assists: the leader's loop stalled for up to 300 to 450 ms after
// recording each of its large snapshots. The data of a snapshot is never
// changed once encoded (or received), so sharing it is safe: every
// snapshot memStorage returns shares it, and callers must not modify it.
//
// Safe for concurrent use, like MemoryStorage.
type memStorage struct {
	*raft.MemoryStorage

	mu    sync.Mutex // held across each call to MemoryStorage's snapshot methods
	data  []byte     // the data of the snapshot at index
	index uint64
}

func newMemStorage() *memStorage { return &memStorage{MemoryStorage: raft.NewMemoryStorage()} }

// Snapshot returns the latest snapshot with its data (shared, not copied).
func (s *memStorage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.MemoryStorage.Snapshot()
	if err != nil {
		return nil, err
	}
	s.attach(snap)
	return snap, nil
}

// CreateSnapshot is MemoryStorage.CreateSnapshot, keeping data by
// reference.
func (s *memStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.MemoryStorage.CreateSnapshot(i, cs, nil)
	if err != nil {
		return nil, err
	}
	s.data, s.index = data, i
	s.attach(snap)
	return snap, nil
}

// ApplySnapshot is MemoryStorage.ApplySnapshot, keeping snap's data by
// reference.
func (s *memStorage) ApplySnapshot(snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	meta := &raftpb.Snapshot{Metadata: snap.GetMetadata()} // cloned by MemoryStorage
	if err := s.MemoryStorage.ApplySnapshot(meta); err != nil {
		return err
	}
	s.data, s.index = snap.GetData(), snap.GetMetadata().GetIndex()
	return nil
}

// attach sets snap's data to the kept data when it is of snap's index.
func (s *memStorage) attach(snap *raftpb.Snapshot) {
	if i := snap.GetMetadata().GetIndex(); i != 0 && i == s.index {
		snap.Data = s.data
	}
}
