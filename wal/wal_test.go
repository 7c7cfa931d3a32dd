package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ---- helpers ----

func openLog(t *testing.T, cfg Config) (*Log, *State) {
	t.Helper()
	l, st, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, st
}

func mustClose(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

// entries returns entries lo..hi (inclusive) of the given term, each with
// size bytes of non-zero data.
func entries(term, lo, hi uint64, size int) []*raftpb.Entry {
	var ents []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		ents = append(ents, &raftpb.Entry{
			Term:  proto.Uint64(term),
			Index: proto.Uint64(i),
			Type:  raftpb.EntryNormal.Enum(),
			Data:  bytes.Repeat([]byte{byte('a' + i%26)}, size),
		})
	}
	return ents
}

// saveEach saves each entry with its own Save call, so each is one record
// (and may cut a segment).
func saveEach(t *testing.T, l *Log, ents []*raftpb.Entry) {
	t.Helper()
	for _, e := range ents {
		if err := l.Save(nil, []*raftpb.Entry{e}); err != nil {
			t.Fatalf("Save entry %d: %v", e.GetIndex(), err)
		}
	}
}

func wantEntries(t *testing.T, got []*raftpb.Entry, want []*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries (%s), want %d (%s)", len(got), span(got), len(want), span(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func span(ents []*raftpb.Entry) string {
	if len(ents) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", ents[0].GetIndex(), ents[len(ents)-1].GetIndex())
}

func segmentPaths(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := segmentNames(filepath.Join(dir, walSubdir))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range segs {
		paths = append(paths, filepath.Join(dir, walSubdir, s.name))
	}
	return paths
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	p := segmentPaths(t, dir)
	if len(p) == 0 {
		t.Fatal("no wal segments")
	}
	return p[len(p)-1]
}

// frame is one record of a segment file: [start, end) including the 8-byte
// length field and padding.
type frame struct{ start, end int64 }

// frames parses the record framing of an etcd WAL segment (little-endian
// int64 length, low 56 bits = record bytes, MSb set = padding in bits 56-58)
// up to the first zero length.
func frames(t *testing.T, path string) []frame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fs []frame
	var off int64
	for off+8 <= int64(len(b)) {
		l := int64(binary.LittleEndian.Uint64(b[off:]))
		if l == 0 {
			break
		}
		rec := int64(uint64(l) & ^(uint64(0xff) << 56))
		var pad int64
		if l < 0 {
			pad = int64((uint64(l) >> 56) & 0x7)
		}
		end := off + 8 + rec + pad
		if end > int64(len(b)) {
			break
		}
		fs = append(fs, frame{off, end})
		off = end
	}
	return fs
}

// lockedBuffer is an io.Writer for a slog handler that tests can read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func wantCorrupt(t *testing.T, err error, mustContain ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Open succeeded, want a corruption error")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("error does not wrap ErrCorrupt: %v", err)
	}
	for _, s := range mustContain {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if !strings.Contains(err.Error(), "backup") {
		t.Errorf("error %q does not tell what to do", err)
	}
}

// ---- tests ----

func TestCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, st := openLog(t, Config{Dir: dir, Metadata: []byte("node-1")})
	if !st.Created || string(st.Metadata) != "node-1" || st.HardState != nil || st.Snapshot != nil || len(st.Entries) != 0 {
		t.Fatalf("new state = %+v", st)
	}
	mustClose(t, l)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, snapSubdir)); err != nil {
		t.Errorf("snap dir: %v", err)
	}

	l, st = openLog(t, Config{Dir: dir, Metadata: []byte("ignored")})
	defer mustClose(t, l)
	if st.Created || string(st.Metadata) != "node-1" {
		t.Fatalf("reopened state = %+v, want Created false and the original metadata", st)
	}
}

func TestOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	mustClose(t, l)
	l, _ = openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if _, _, err := Open(context.Background(), Config{Dir: dir}); err == nil {
		t.Fatal("second Open of a WAL in use succeeded")
	} else if errors.Is(err, ErrCorrupt) {
		t.Fatalf("in-use WAL reported as corrupt: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir, Metadata: []byte("m")})
	if err := l.Save(hardState(1, 1, 0), entries(1, 1, 3, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(nil, entries(1, 4, 5, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(hardState(2, 2, 4), entries(2, 6, 10, 10)); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites 9 and 10.
	if err := l.Save(hardState(3, 3, 8), entries(3, 9, 10, 20)); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(&raftpb.HardState{}, nil); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)

	want := append(append(entries(1, 1, 5, 10), entries(2, 6, 8, 10)...), entries(3, 9, 10, 20)...)
	for range 2 { // reopening must not change anything
		l, st := openLog(t, Config{Dir: dir})
		if st.Created || st.Repaired || st.Snapshot != nil || string(st.Metadata) != "m" {
			t.Fatalf("state = %+v", st)
		}
		if !proto.Equal(st.HardState, hardState(3, 3, 8)) {
			t.Fatalf("hard state = %v, want term 3 vote 3 commit 8", st.HardState)
		}
		wantEntries(t, st.Entries, want)
		mustClose(t, l)
	}
}

func TestTornTail(t *testing.T) {
	const n = 20
	// Cut points relative to the frames of the last (k=1) and second to
	// last (k=2) record, and how many of the n entries survive.
	cases := []struct {
		name     string
		k        int // which record from the end
		cut      func(f frame) int64
		want     uint64
		repaired bool
	}{
		{"inside length field", 1, func(f frame) int64 { return f.start + 3 }, n - 1, true},
		{"after length field", 1, func(f frame) int64 { return f.start + 8 }, n - 1, true},
		{"first data byte", 1, func(f frame) int64 { return f.start + 9 }, n - 1, true},
		{"middle", 1, func(f frame) int64 { return (f.start + f.end) / 2 }, n - 1, true},
		{"last byte missing", 1, func(f frame) int64 { return f.end - 1 }, n - 1, true},
		{"middle of second to last", 2, func(f frame) int64 { return (f.start + f.end) / 2 }, n - 2, true},
		{"record boundary", 1, func(f frame) int64 { return f.start }, n - 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, Config{Dir: dir})
			if err := l.Save(hardState(1, 1, 0), nil); err != nil {
				t.Fatal(err)
			}
			saveEach(t, l, entries(1, 1, n, 300))
			mustClose(t, l)

			seg := lastSegment(t, dir)
			fs := frames(t, seg)
			if len(fs) < 3 {
				t.Fatalf("only %d records in %s", len(fs), seg)
			}
			if err := os.Truncate(seg, tc.cut(fs[len(fs)-tc.k])); err != nil {
				t.Fatal(err)
			}

			logs := &lockedBuffer{}
			lg := slog.New(slog.NewTextHandler(logs, nil))
			l, st := openLog(t, Config{Dir: dir, Logger: lg})
			if st.Repaired != tc.repaired {
				t.Errorf("Repaired = %v, want %v", st.Repaired, tc.repaired)
			}
			if tc.repaired && !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("no warning logged for the repair; log:\n%s", logs)
			}
			wantEntries(t, st.Entries, entries(1, 1, tc.want, 300))
			if !proto.Equal(st.HardState, hardState(1, 1, 0)) {
				t.Errorf("hard state = %v", st.HardState)
			}

			// The log works after the repair, and stays repaired.
			if err := l.Save(hardState(1, 1, 2), entries(1, tc.want+1, tc.want+2, 300)); err != nil {
				t.Fatal(err)
			}
			mustClose(t, l)
			l, st = openLog(t, Config{Dir: dir})
			defer mustClose(t, l)
			if st.Repaired {
				t.Error("Repaired again on the second reopen")
			}
			wantEntries(t, st.Entries, entries(1, 1, tc.want+2, 300))
			if st.HardState.GetCommit() != 2 {
				t.Errorf("commit = %d, want 2", st.HardState.GetCommit())
			}
		})
	}
}

func TestZeroFilledTail(t *testing.T) {
	const n = 10
	cases := []struct {
		name     string
		damage   func(t *testing.T, seg string, last frame)
		want     uint64
		repaired bool
	}{
		{
			// Zeros after the valid data: the end of the log (etcd
			// preallocates segments with zeros).
			"zeros appended", func(t *testing.T, seg string, last frame) {
				if err := os.Truncate(seg, last.end); err != nil {
					t.Fatal(err)
				}
				appendZeros(t, seg, 8192)
			}, n, false,
		},
		{
			// The last record's data ends in zeroed sectors: a torn write,
			// cut off.
			"last record tail zeroed", func(t *testing.T, seg string, last frame) {
				zeroRange(t, seg, last.start+8+(last.end-last.start)/2, last.end)
			}, n - 1, true,
		},
		{
			// The whole last record (length field included) is zero: it
			// reads as the end of the log.
			"last record zeroed", func(t *testing.T, seg string, last frame) {
				zeroRange(t, seg, last.start, last.end)
			}, n - 1, false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openLog(t, Config{Dir: dir})
			if err := l.Save(hardState(1, 1, 0), nil); err != nil {
				t.Fatal(err)
			}
			// 2000-byte entries span several 512-byte sectors.
			saveEach(t, l, entries(1, 1, n, 2000))
			mustClose(t, l)

			seg := lastSegment(t, dir)
			fs := frames(t, seg)
			tc.damage(t, seg, fs[len(fs)-1])

			l, st := openLog(t, Config{Dir: dir})
			if st.Repaired != tc.repaired {
				t.Errorf("Repaired = %v, want %v", st.Repaired, tc.repaired)
			}
			wantEntries(t, st.Entries, entries(1, 1, tc.want, 2000))
			if err := l.Save(nil, entries(1, tc.want+1, tc.want+1, 2000)); err != nil {
				t.Fatal(err)
			}
			mustClose(t, l)

			l, st = openLog(t, Config{Dir: dir})
			defer mustClose(t, l)
			if st.Repaired {
				t.Error("Repaired again on the second reopen")
			}
			wantEntries(t, st.Entries, entries(1, 1, tc.want+1, 2000))
		})
	}
}

func appendZeros(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

func zeroRange(t *testing.T, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, to-from), from); err != nil {
		t.Fatal(err)
	}
}

func flipBit(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFlippedBitInMiddleFails(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 20, 200))
	mustClose(t, l)

	seg := lastSegment(t, dir)
	fs := frames(t, seg)
	mid := fs[len(fs)/2]
	before, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	flipBit(t, seg, (mid.start+mid.end)/2)

	_, _, err = Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, seg)
	t.Logf("error: %v", err)

	// Nothing was repaired or renamed: the data is left for the operator.
	after, rerr := os.ReadFile(seg)
	if rerr != nil {
		t.Fatal(rerr)
	}
	before[(mid.start+mid.end)/2] ^= 0x10
	if !bytes.Equal(before, after) {
		t.Error("the corrupt segment was modified")
	}
	if _, serr := os.Stat(seg + ".broken"); serr == nil {
		t.Error("a repair was attempted on a corrupt segment")
	}
}

func TestFlippedBitInOlderSegmentFails(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 400, 2000))
	mustClose(t, l)

	segs := segmentPaths(t, dir)
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	seg := segs[1]
	fs := frames(t, seg)
	mid := fs[len(fs)/2]
	flipBit(t, seg, (mid.start+mid.end)/2)

	_, _, err := Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, seg)
}

func testSnapshot(index, term uint64, data string) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data: []byte(data),
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(index),
			Term:      proto.Uint64(term),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
}

func TestRestartAfterSnapshot(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(2, 1, 100), entries(2, 1, 100, 50)); err != nil {
		t.Fatal(err)
	}
	snapshot := testSnapshot(50, 2, "state at 50")
	if err := l.SaveSnapshot(snapshot); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(hardState(3, 2, 105), entries(3, 101, 110, 50)); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)

	for range 2 {
		l, st := openLog(t, Config{Dir: dir})
		if st.Snapshot == nil {
			t.Fatal("no snapshot recovered")
		}
		if !proto.Equal(st.Snapshot, snapshot) {
			t.Fatalf("snapshot = %v, want %v", st.Snapshot, snapshot)
		}
		wantEntries(t, st.Entries, append(entries(2, 51, 100, 50), entries(3, 101, 110, 50)...))
		if !proto.Equal(st.HardState, hardState(3, 2, 105)) {
			t.Fatalf("hard state = %v", st.HardState)
		}
		mustClose(t, l)
	}
}

func TestSaveSnapshotRejectsEmpty(t *testing.T) {
	l, _ := openLog(t, Config{Dir: t.TempDir()})
	defer mustClose(t, l)
	if err := l.SaveSnapshot(&raftpb.Snapshot{}); err == nil {
		t.Error("SaveSnapshot accepted a snapshot with index 0")
	}
	s := testSnapshot(5, 1, "x")
	s.Metadata.ConfState = nil
	if err := l.SaveSnapshot(s); err == nil {
		t.Error("SaveSnapshot accepted a snapshot without conf state")
	}
}

func TestSnapshotReleasesSegments(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 600, 2000))
	if err := l.Save(hardState(1, 1, 500), nil); err != nil {
		t.Fatal(err)
	}
	before := segmentPaths(t, dir)
	if len(before) < 4 {
		t.Fatalf("only %d segments, want several", len(before))
	}

	// A snapshot beyond the durable commit releases nothing yet: a restart
	// would still need the older state.
	if err := l.SaveSnapshot(testSnapshot(550, 1, "at 550")); err != nil {
		t.Fatal(err)
	}
	if got := segmentPaths(t, dir); len(got) != len(before) {
		t.Fatalf("segments released before the snapshot index was committed: %d -> %d", len(before), len(got))
	}
	// Committing it releases (the files go on another goroutine).
	if err := l.Save(hardState(1, 1, 600), nil); err != nil {
		t.Fatal(err)
	}
	l.awaitRemovals()
	after := segmentPaths(t, dir)
	if len(after) >= len(before) {
		t.Fatalf("no segment removed: %d -> %d", len(before), len(after))
	}
	segs, err := segmentNames(filepath.Join(dir, walSubdir))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) > 1 && segs[1].index < 550 {
		t.Fatalf("segment %s starts before the snapshot but a newer one also does; it should be gone", segs[0].name)
	}
	if segs[0].index > 550 {
		t.Fatalf("first segment %s starts after the snapshot index: too much removed", segs[0].name)
	}
	for _, p := range before[:len(before)-len(after)] {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("old segment %s still there: %v", p, err)
		}
	}
	saveEach(t, l, entries(1, 601, 610, 2000))
	mustClose(t, l)

	l, st := openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if st.Snapshot.GetMetadata().GetIndex() != 550 {
		t.Fatalf("snapshot index = %d, want 550", st.Snapshot.GetMetadata().GetIndex())
	}
	wantEntries(t, st.Entries, entries(1, 551, 610, 2000))
	if st.HardState.GetCommit() != 600 {
		t.Fatalf("commit = %d, want 600", st.HardState.GetCommit())
	}
}

// Releasing works on a reopened WAL (whose etcd handle locks only some of
// the segments), and what is left recovers.
func TestReleaseAfterReopen(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 500, 2000))
	if err := l.Save(hardState(1, 1, 500), nil); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshot(testSnapshot(100, 1, "at 100")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	before := segmentPaths(t, dir)

	l, st := openLog(t, Config{Dir: dir})
	if st.Snapshot.GetMetadata().GetIndex() != 100 {
		t.Fatalf("snapshot index %d, want 100", st.Snapshot.GetMetadata().GetIndex())
	}
	if err := l.SaveSnapshot(testSnapshot(450, 1, "at 450")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if after := segmentPaths(t, dir); len(after) >= len(before) {
		t.Fatalf("no segment removed: %d -> %d", len(before), len(after))
	}

	l, st = openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if string(st.Snapshot.GetData()) != "at 450" {
		t.Fatalf("snapshot data %q, want %q", st.Snapshot.GetData(), "at 450")
	}
	if !proto.Equal(st.HardState, hardState(1, 1, 500)) {
		t.Fatalf("hard state = %v", st.HardState)
	}
	wantEntries(t, st.Entries, entries(1, 451, 500, 2000))
}

func TestSnapFilesPurged(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir, KeepSnapshots: 2})
	if err := l.Save(hardState(1, 1, 40), entries(1, 1, 40, 10)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{10, 20, 30, 40} {
		if err := l.SaveSnapshot(testSnapshot(i, 1, fmt.Sprint("at ", i))); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, l)
	files, err := listSnapFiles(filepath.Join(dir, snapSubdir))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, f := range files {
		got = append(got, f.index)
	}
	if fmt.Sprint(got) != "[40 30]" {
		t.Fatalf("snap files at %v, want [40 30]", got)
	}
	l, st := openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if string(st.Snapshot.GetData()) != "at 40" {
		t.Fatalf("snapshot data %q", st.Snapshot.GetData())
	}
}

func snapshotDir(t *testing.T) (dir, newest string) {
	t.Helper()
	dir = t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 20), entries(1, 1, 20, 10)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{10, 15} {
		if err := l.SaveSnapshot(testSnapshot(i, 1, strings.Repeat("snapshot data ", 20))); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, l)
	return dir, filepath.Join(dir, snapSubdir, snapName(1, 15))
}

func TestCorruptNewestSnapshotFails(t *testing.T) {
	dir, newest := snapshotDir(t)
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	flipBit(t, newest, fi.Size()/2)

	_, _, err = Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, newest)
	t.Logf("error: %v", err)
	if _, serr := os.Stat(newest); serr != nil {
		t.Errorf("the corrupt snap file was moved away: %v", serr)
	}
	if _, serr := os.Stat(newest + ".broken"); serr == nil {
		t.Error("the corrupt snap file was renamed to .broken")
	}
}

func TestMissingNewestSnapshotFails(t *testing.T) {
	dir, newest := snapshotDir(t)
	if err := os.Remove(newest); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, newest, "missing")
}

// A snap file written by a SaveSnapshot that died before its WAL record was
// written (possibly torn) is ignored.
func TestSnapFileUnknownToWALIgnored(t *testing.T) {
	dir, _ := snapshotDir(t)
	stray := filepath.Join(dir, snapSubdir, snapName(1, 18))
	if err := os.WriteFile(stray, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, st := openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if st.Snapshot.GetMetadata().GetIndex() != 15 {
		t.Fatalf("snapshot index %d, want 15", st.Snapshot.GetMetadata().GetIndex())
	}
	wantEntries(t, st.Entries, entries(1, 16, 20, 10))
}

func TestMissingMiddleSegmentFails(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 500, 2000))
	mustClose(t, l)

	segs := segmentPaths(t, dir)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	if err := os.Remove(segs[2]); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, filepath.Join(dir, walSubdir), "missing", filepath.Base(segs[1]), filepath.Base(segs[3]))
	t.Logf("error: %v", err)
}

func TestReplacedMiddleSegmentFails(t *testing.T) {
	// A segment removed and the later ones renamed down, so the sequence
	// numbers stay continuous: only the checksum chain shows the gap.
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 500, 2000))
	mustClose(t, l)

	segs := segmentPaths(t, dir)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	if err := os.Remove(segs[2]); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < len(segs); i++ {
		if err := os.Rename(segs[i], segs[i-1]); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, filepath.Join(dir, walSubdir))
	t.Logf("error: %v", err)
}

func TestSnapshotWithoutWALRefused(t *testing.T) {
	dir, _ := snapshotDir(t)
	if err := os.RemoveAll(filepath.Join(dir, walSubdir)); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, filepath.Join(dir, snapSubdir))
}

func TestEmptyWALDirRefused(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	mustClose(t, l)
	for _, p := range segmentPaths(t, dir) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := Open(context.Background(), Config{Dir: dir})
	wantCorrupt(t, err, filepath.Join(dir, walSubdir))
}

func TestOpenCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Open(ctx, Config{Dir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestClosed(t *testing.T) {
	l, _ := openLog(t, Config{Dir: t.TempDir()})
	mustClose(t, l)
	mustClose(t, l)
	if err := l.Save(hardState(1, 1, 0), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
	if err := l.SaveSnapshot(testSnapshot(1, 1, "x")); !errors.Is(err, ErrClosed) {
		t.Errorf("SaveSnapshot after Close: %v", err)
	}
	if err := l.SaveSnapshotFile(testSnapshot(1, 1, "x")); !errors.Is(err, ErrClosed) {
		t.Errorf("SaveSnapshotFile after Close: %v", err)
	}
	if err := l.SaveSnapshotRecord(testSnapshot(1, 1, "x")); !errors.Is(err, ErrClosed) {
		t.Errorf("SaveSnapshotRecord after Close: %v", err)
	}
}

// A snap file written by SaveSnapshotFile whose SaveSnapshotRecord never ran
// (the process stopped in between) is ignored: the restart recovers from
// the previous snapshot and the WAL after it, and a later snapshot's
// clean-up removes the orphan.
func TestSnapshotFileWithoutRecordIgnored(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir, KeepSnapshots: 1})
	if err := l.Save(hardState(1, 1, 30), entries(1, 1, 30, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshot(testSnapshot(10, 1, "at 10")); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveSnapshotFile(testSnapshot(20, 1, "at 20, never recorded")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	orphan := filepath.Join(dir, snapSubdir, snapName(1, 20))
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("the file of SaveSnapshotFile is missing: %v", err)
	}

	l, st := openLog(t, Config{Dir: dir, KeepSnapshots: 1})
	if string(st.Snapshot.GetData()) != "at 10" {
		t.Fatalf("recovered snapshot %q, want the recorded one at 10", st.Snapshot.GetData())
	}
	wantEntries(t, st.Entries, entries(1, 11, 30, 10))
	// A later snapshot purges it.
	if err := l.SaveSnapshot(testSnapshot(25, 1, "at 25")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan snap file not purged after a newer snapshot: %v", err)
	}
	l, st = openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if string(st.Snapshot.GetData()) != "at 25" {
		t.Fatalf("recovered snapshot %q, want the one at 25", st.Snapshot.GetData())
	}
	wantEntries(t, st.Entries, entries(1, 26, 30, 10))
}

// SaveSnapshotRecord refuses a snapshot whose file was not written: the WAL
// never points to a missing file.
func TestSaveSnapshotRecordRequiresFile(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	if err := l.Save(hardState(1, 1, 30), entries(1, 1, 30, 10)); err != nil {
		t.Fatal(err)
	}
	err := l.SaveSnapshotRecord(testSnapshot(20, 1, "at 20"))
	if err == nil || !strings.Contains(err.Error(), "SaveSnapshotFile first") {
		t.Fatalf("SaveSnapshotRecord without a file: %v", err)
	}
	mustClose(t, l)
	l, st := openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if st.Snapshot != nil {
		t.Fatalf("recovered a snapshot at %d", st.Snapshot.GetMetadata().GetIndex())
	}
	wantEntries(t, st.Entries, entries(1, 1, 30, 10))
}

// A failed SaveSnapshotFile names the file, and leaves the Log usable.
func TestSaveSnapshotFileErrorNamesFile(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if err := l.Save(hardState(1, 1, 30), entries(1, 1, 30, 10)); err != nil {
		t.Fatal(err)
	}
	snapDir := filepath.Join(dir, snapSubdir)
	if err := os.RemoveAll(snapDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snapDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := l.SaveSnapshotFile(testSnapshot(20, 1, "at 20"))
	if want := filepath.Join(snapDir, snapName(1, 20)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("SaveSnapshotFile into a broken snap dir: %v, want an error naming %s", err, want)
	}
	if err := l.Save(hardState(1, 1, 31), entries(1, 31, 31, 10)); err != nil {
		t.Fatalf("Save after a failed SaveSnapshotFile: %v", err)
	}
}

// SaveSnapshotFile runs on another goroutine while the owner goes on
// saving entries (the race detector checks the Log's state); the record
// comes after, and a restart recovers the snapshot and every entry.
func TestSaveSnapshotFileConcurrentWithSave(t *testing.T) {
	dir := t.TempDir()
	l, _ := openLog(t, Config{Dir: dir, KeepSnapshots: 1})
	if err := l.Save(hardState(1, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	saveEach(t, l, entries(1, 1, 100, 2000))
	if err := l.Save(hardState(1, 1, 100), nil); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		idx := uint64(100 * (round + 1))
		snapshot := testSnapshot(idx, 1, strings.Repeat(fmt.Sprint("at ", idx, " "), 50_000))
		done := make(chan error, 1)
		go func() { done <- l.SaveSnapshotFile(snapshot) }()
		from := idx + 1
		saveEach(t, l, entries(1, from, from+99, 2000))
		if err := l.Save(hardState(1, 1, from+99), nil); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := l.SaveSnapshotRecord(snapshot); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, l)
	l, st := openLog(t, Config{Dir: dir})
	defer mustClose(t, l)
	if got := st.Snapshot.GetMetadata().GetIndex(); got != 300 {
		t.Fatalf("recovered snapshot at %d, want 300", got)
	}
	wantEntries(t, st.Entries, entries(1, 301, 400, 2000))
	files, err := listSnapFiles(filepath.Join(dir, snapSubdir))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d snap files kept, want 1", len(files))
	}
}
