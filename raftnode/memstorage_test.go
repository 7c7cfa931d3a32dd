package raftnode

import (
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memStorage hands out its snapshot's data without copying it (the data of
// a large snapshot is tens of MiB: a copy on the loop stalled it), and
// otherwise behaves as raft.MemoryStorage: the right snapshot, with its
// metadata, after CreateSnapshot and ApplySnapshot.
func TestMemStorageSharesSnapshotData(t *testing.T) {
	s := newMemStorage()
	ents := []*raftpb.Entry{}
	for i := uint64(1); i <= 10; i++ {
		ents = append(ents, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1)})
	}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	conf := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	data := []byte("the state at 5")
	created, err := s.CreateSnapshot(5, conf, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for what, snap := range map[string]*raftpb.Snapshot{"CreateSnapshot": created, "Snapshot": got} {
		if len(snap.GetData()) == 0 || &snap.GetData()[0] != &data[0] {
			t.Fatalf("%s returned a copy of the data (or none): %q", what, snap.GetData())
		}
		if m := snap.GetMetadata(); m.GetIndex() != 5 || m.GetTerm() != 1 || !slices.Equal(m.GetConfState().GetVoters(), conf.GetVoters()) {
			t.Fatalf("%s returned metadata %v", what, m)
		}
	}
	if err := s.Compact(5); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 6 {
		t.Fatalf("first index %d after compacting to 5, want 6", first)
	}

	// A snapshot from the leader replaces everything, and its data is kept
	// by reference too.
	recv := []byte("the leader's state at 20")
	if err := s.ApplySnapshot(&raftpb.Snapshot{Data: recv, Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(20), Term: proto.Uint64(2), ConfState: conf}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if m := got.GetMetadata(); m.GetIndex() != 20 || m.GetTerm() != 2 || &got.GetData()[0] != &recv[0] {
		t.Fatalf("after ApplySnapshot: index %d term %d data %q (shared: %v)", m.GetIndex(), m.GetTerm(), got.GetData(), &got.GetData()[0] == &recv[0])
	}
	if last, _ := s.LastIndex(); last != 20 {
		t.Fatalf("last index %d after a snapshot at 20", last)
	}
	// An older snapshot is refused, as MemoryStorage refuses it, and leaves
	// the data alone.
	if err := s.ApplySnapshot(&raftpb.Snapshot{Data: []byte("old"), Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(7), Term: proto.Uint64(1), ConfState: conf}}); err == nil {
		t.Fatal("an older snapshot was applied")
	}
	if got, _ = s.Snapshot(); string(got.GetData()) != string(recv) {
		t.Fatalf("data %q after a refused snapshot", got.GetData())
	}
}

// BenchmarkInstallSnapshot32MiB is what the loop does with a 32 MiB
// snapshot of its own once the file is written: CreateSnapshot, then the
// Snapshot that the next one reads first. memStorage against raft's
// MemoryStorage, which clones the data each time (compare B/op).
func BenchmarkInstallSnapshot32MiB(b *testing.B) {
	data := make([]byte, 32<<20)
	conf := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, c := range []struct {
		name string
		new  func() raftStorage
	}{
		{"memStorage", func() raftStorage { return newMemStorage() }},
		{"MemoryStorage", func() raftStorage { return raft.NewMemoryStorage() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := c.new()
			b.ReportAllocs()
			for i := range b.N {
				idx := uint64(i + 1)
				if err := s.Append([]*raftpb.Entry{{Index: proto.Uint64(idx), Term: proto.Uint64(1)}}); err != nil {
					b.Fatal(err)
				}
				if _, err := s.CreateSnapshot(idx, conf, data); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Snapshot(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// raftStorage is what BenchmarkInstallSnapshot32MiB uses of a storage.
type raftStorage interface {
	Append([]*raftpb.Entry) error
	CreateSnapshot(uint64, *raftpb.ConfState, []byte) (*raftpb.Snapshot, error)
	Snapshot() (*raftpb.Snapshot, error)
}
