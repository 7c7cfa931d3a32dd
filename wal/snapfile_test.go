package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// writeSnapFile writes the bytes etcd's Snapshotter.SaveSnap writes, for
// data of every size around the fsync slice and for every part of the
// metadata, and Snapshotter's reader gets the snapshot back.
func TestWriteSnapFileMatchesSnapshotter(t *testing.T) {
	big := make([]byte, 3*snapSyncEvery+17)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	conf := &raftpb.ConfState{
		Voters: []uint64{1, 2, 3}, Learners: []uint64{9},
		VotersOutgoing: []uint64{1, 2, 4}, LearnersNext: []uint64{4}, AutoLeave: proto.Bool(true),
	}
	cases := map[string]*raftpb.Snapshot{
		"small":      testSnapshot(7, 2, "state at 7"),
		"empty data": {Data: []byte{}, Metadata: testSnapshot(8, 2, "").Metadata},
		"no data":    {Metadata: testSnapshot(9, 2, "").Metadata},
		"one slice":  {Data: big[:snapSyncEvery], Metadata: testSnapshot(10, 3, "").Metadata},
		"slices and more": {Data: big, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(1 << 40), Term: proto.Uint64(1 << 33), ConfState: conf}},
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			theirs, ours := t.TempDir(), t.TempDir()
			if err := snap.New(zap.NewNop(), theirs).SaveSnap(s); err != nil {
				t.Fatal(err)
			}
			file := snapName(s.GetMetadata().GetTerm(), s.GetMetadata().GetIndex())
			if err := writeSnapFile(filepath.Join(ours, file), s); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(theirs, file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(ours, file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				n := 0
				for n < min(len(got), len(want)) && got[n] == want[n] {
					n++
				}
				t.Fatalf("file differs from SaveSnap's at byte %d (lengths %d, %d)", n, len(got), len(want))
			}
			back, err := snap.Read(zap.NewNop(), filepath.Join(ours, file))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, s) {
				t.Fatalf("read back %v, want %v", back.GetMetadata(), s.GetMetadata())
			}
		})
	}
}

// writeSnapFile refuses what it cannot write as SaveSnap would, and a
// refused or failed write leaves no file behind.
func TestWriteSnapFileRefusesWhatItCannotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.snap")
	s := testSnapshot(7, 2, "state")
	s.ProtoReflect().SetUnknown([]byte{0xf8, 0x01, 0x01}) // field 31, varint 1
	if err := writeSnapFile(path, s); err == nil {
		t.Fatal("a snapshot with unknown fields was written")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("stat after a refused write: %v, want no file", err)
	}
	if err := writeSnapFile(filepath.Join(t.TempDir(), "missing", "x.snap"), testSnapshot(7, 2, "state")); err == nil {
		t.Fatal("a file in a missing directory was written")
	}
}

// BenchmarkSnapFile32MiB writes a 32 MiB snapshot's file, fsyncs
// included: writeSnapFile (what SaveSnapshotFile uses) against etcd's
// Snapshotter.SaveSnap, which first builds the file in memory (compare
// their B/op).
func BenchmarkSnapFile32MiB(b *testing.B) {
	data := make([]byte, 32<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	s := &raftpb.Snapshot{Data: data, Metadata: testSnapshot(100, 2, "").Metadata}
	file := snapName(2, 100)
	b.Run("writeSnapFile", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for range b.N {
			if err := writeSnapFile(filepath.Join(dir, file), s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SaveSnap", func(b *testing.B) {
		ss := snap.New(zap.NewNop(), b.TempDir())
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for range b.N {
			if err := ss.SaveSnap(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
