package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The WAL fault matrix: one WAL image is written once (every entry with its
// own fsynced Save), then copied into a fresh directory for every fault, and
// Open must either recover exactly the longest intact prefix (a torn tail)
// or refuse with an ErrCorrupt error that names the segment (damage before
// the tail). It must never return fewer entries than were intact and
// fsynced, and never an entry that was not written.

// walImage is the bytes of a closed data directory.
type walImage struct {
	files map[string][]byte // path relative to the data dir → contents
	segs  []string          // relative paths of the WAL segments, in order
	ents  []*raftpb.Entry   // every entry saved, in order
}

// buildImage writes hard state (1,1,0) and then n entries of size bytes, one
// Save each, and reads the resulting data dir back into memory.
func buildImage(t testing.TB, n, size int) *walImage {
	t.Helper()
	dir := t.TempDir()
	l, _, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Save(hardState(1, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	ents := entries(1, 1, uint64(n), size)
	for _, e := range ents {
		if err := l.Save(nil, []*raftpb.Entry{e}); err != nil {
			t.Fatalf("Save entry %d: %v", e.GetIndex(), err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	img := &walImage{files: map[string][]byte{}, ents: ents}
	for _, sub := range []string{walSubdir, snapSubdir} {
		des, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if !de.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, sub, de.Name()))
			if err != nil {
				t.Fatal(err)
			}
			img.files[filepath.Join(sub, de.Name())] = b
		}
	}
	segs, err := segmentNames(filepath.Join(dir, walSubdir))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		img.segs = append(img.segs, filepath.Join(walSubdir, s.name))
	}
	return img
}

// write copies the image into a new directory under base, applying mod to
// the files first (mod may change, add or delete entries of the map it is
// given, which is a copy).
func (img *walImage) write(t testing.TB, base string, mod func(files map[string][]byte)) string {
	t.Helper()
	files := make(map[string][]byte, len(img.files))
	for k, v := range img.files {
		files[k] = v
	}
	if mod != nil {
		mod(files)
	}
	dir, err := os.MkdirTemp(base, "case")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{walSubdir, snapSubdir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// caseBase returns a directory for the damaged copies of one test: in
// memory (/dev/shm) when there is one, since every Open fsyncs, else under
// t.TempDir.
func caseBase(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "raftlock-wal-faults"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// entryFrames returns the frames of the entry records of segment b, in
// order, checking that they decode as entries (the first records of a
// segment are crc, metadata, snapshot and state records).
func entryFrames(t testing.TB, b []byte) []frame {
	t.Helper()
	var out []frame
	for _, f := range parseFrames(b) {
		recLen := int64(uint64(le64(b[f.start:])) & ^(uint64(0xff) << 56))
		rec := &walpb.Record{}
		if err := proto.Unmarshal(b[f.start+8:f.start+8+recLen], rec); err != nil {
			t.Fatalf("frame at %d: %v", f.start, err)
		}
		if rec.GetType() == etcdwal.EntryType {
			out = append(out, f)
		}
	}
	return out
}

func le64(b []byte) int64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return int64(v)
}

// parseFrames is frames (wal_test.go) over bytes in memory.
func parseFrames(b []byte) []frame {
	var fs []frame
	var off int64
	for off+8 <= int64(len(b)) {
		l := le64(b[off:])
		if l == 0 {
			break
		}
		rec := int64(uint64(l) & ^(uint64(0xff) << 56))
		var pad int64
		if l < 0 {
			pad = int64((uint64(l) >> 56) & 0x7)
		}
		end := off + 8 + rec + pad
		if end > int64(len(b)) || rec < 0 {
			break
		}
		fs = append(fs, frame{off, end})
		off = end
	}
	return fs
}

// outcome is what one Open of a damaged copy gave.
type outcome struct {
	err      error
	ents     []*raftpb.Entry
	repaired bool
}

func openCopy(t testing.TB, dir string) outcome {
	t.Helper()
	l, st, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		return outcome{err: err}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return outcome{ents: st.Entries, repaired: st.Repaired}
}

// prefixOf checks that got is exactly the first n entries of want.
func prefixOf(got, want []*raftpb.Entry, n int) bool {
	if len(got) != n {
		return false
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return false
		}
	}
	return true
}

// namesSegment reports whether err is a corruption error that names path.
func namesSegment(err error, path string) bool {
	return err != nil && errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), path)
}

const (
	faultEntries   = 12
	faultEntrySize = 40 // small: ~80-byte records, so every offset is cheap
	sectorSize     = 512
)

// TestFaultTruncateTail truncates the last segment at every byte offset
// within its last 3 records: Open must succeed, report Repaired exactly when
// the cut is inside a record, and return exactly the entries whose records
// lie wholly before the cut.
func TestFaultTruncateTail(t *testing.T) {
	img := buildImage(t, faultEntries, faultEntrySize)
	seg := img.segs[len(img.segs)-1]
	efs := entryFrames(t, img.files[seg])
	if len(efs) != faultEntries {
		t.Fatalf("%d entry records in %s, want %d", len(efs), seg, faultEntries)
	}
	first := len(efs) - 3
	base := caseBase(t)
	cases := 0
	for cut := efs[first].start; cut <= efs[len(efs)-1].end; cut++ {
		kept := 0 // entries whose record ends at or before the cut
		boundary := false
		for i, f := range efs {
			if f.end <= cut {
				kept = i + 1
			}
			if f.start == cut || f.end == cut {
				boundary = true
			}
		}
		dir := img.write(t, base, func(files map[string][]byte) {
			files[seg] = files[seg][:cut]
		})
		o := openCopy(t, dir)
		cases++
		switch {
		case o.err != nil:
			t.Errorf("cut at %d: Open failed: %v", cut, o.err)
		case !prefixOf(o.ents, img.ents, kept):
			t.Errorf("cut at %d: got %d entries (%s), want exactly the first %d", cut, len(o.ents), span(o.ents), kept)
		case o.repaired == boundary:
			t.Errorf("cut at %d: Repaired = %v, want %v", cut, o.repaired, !boundary)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("truncate: %d offsets over the last 3 records, all recovered the longest prefix", cases)
}

// TestFaultZeroTail zero-fills the last segment from every offset within its
// last 3 records to the end of the (preallocated) file.
//
// etcd's decoder treats a record as torn (and Open repairs it) when its
// length word reads zero (the end of the log), when its length word is cut
// short, or when one 512-byte sector's share of the record is all zeros — the
// traces of a write that did not reach the disk, since sectors are written
// whole. A zero-fill that starts in the middle of a sector's share of a
// record's data leaves a sector that no disk writes partly: that record fails
// its checksum and Open refuses it as corruption, naming the segment. Both
// outcomes are safe; the test requires the one the model predicts and, on
// success, exactly the longest prefix of intact entries.
func TestFaultZeroTail(t *testing.T) {
	img := buildImage(t, faultEntries, faultEntrySize)
	seg := img.segs[len(img.segs)-1]
	orig := img.files[seg]
	efs := entryFrames(t, orig)
	first := len(efs) - 3
	base := caseBase(t)
	var recovered, refused, cases int
	for off := efs[first].start; off <= efs[len(efs)-1].end; off++ {
		zeroed := append([]byte(nil), orig...)
		clear(zeroed[off:])
		// The first entry record the fill changes, and what the decoder
		// makes of it.
		k := len(efs)
		for i, f := range efs {
			if !bytes.Equal(zeroed[f.start:f.end], orig[f.start:f.end]) {
				k = i
				break
			}
		}
		wantRepaired, wantRefused := false, false
		if k < len(efs) {
			f := efs[k]
			switch {
			case le64(zeroed[f.start:]) == 0:
				// Reads as the end of the log.
			case off < f.start+8:
				// Length word cut short: all data zero, torn.
				wantRepaired = true
			case zeroSectorChunk(zeroed, f):
				wantRepaired = true
			default:
				wantRefused = true
			}
		}
		dir := img.write(t, base, func(files map[string][]byte) { files[seg] = zeroed })
		o := openCopy(t, dir)
		cases++
		if wantRefused {
			refused++
			if o.err == nil {
				// Acceptable only with exactly the intact prefix.
				if !prefixOf(o.ents, img.ents, k) {
					t.Errorf("zero from %d: got %d entries (%s), want the first %d", off, len(o.ents), span(o.ents), k)
				}
			} else if !namesSegment(o.err, filepath.Join(dir, seg)) {
				t.Errorf("zero from %d: error does not wrap ErrCorrupt or name the segment: %v", off, o.err)
			}
		} else {
			recovered++
			switch {
			case o.err != nil:
				t.Errorf("zero from %d: Open failed: %v", off, o.err)
			case !prefixOf(o.ents, img.ents, k):
				t.Errorf("zero from %d: got %d entries (%s), want exactly the first %d", off, len(o.ents), span(o.ents), k)
			case o.repaired != wantRepaired:
				t.Errorf("zero from %d: Repaired = %v, want %v", off, o.repaired, wantRepaired)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("zero-fill: %d offsets: %d recovered the longest prefix, %d (fill starting mid-sector inside a record's data) refused as corruption naming the segment", cases, recovered, refused)
}

// zeroSectorChunk mirrors etcd's decoder.isTornEntry: the record's data
// (with padding) split at 512-byte file boundaries has an all-zero chunk.
func zeroSectorChunk(b []byte, f frame) bool {
	for off := f.start + 8; off < f.end; {
		end := min((off/sectorSize+1)*sectorSize, f.end)
		allZero := true
		for _, c := range b[off:end] {
			if c != 0 {
				allZero = false
				break
			}
		}
		if allZero {
			return true
		}
		off = end
	}
	return false
}

// flipCase is one bit flip and what Open made of it.
type flipCase struct {
	off int64
	bit uint
	o   outcome
}

// flipResult sorts the outcomes of bit flips. Safe outcomes are an
// ErrCorrupt error naming the segment, or success with every entry (a flip
// in bits the decoder ignores).
type flipResult struct {
	cases   int
	failed  int        // refused with ErrCorrupt naming the segment
	ignored int        // succeeded with every entry
	lost    []flipCase // succeeded with entries missing: silent loss
	unclear []flipCase // failed without ErrCorrupt or without the segment path
}

// flip flips bit of byte off of segment seg in a copy of img and opens it.
func (r *flipResult) flip(t *testing.T, img *walImage, base, seg string, off int64, bit uint) {
	t.Helper()
	dir := img.write(t, base, func(files map[string][]byte) {
		b := append([]byte(nil), files[seg]...)
		b[off] ^= 1 << bit
		files[seg] = b
	})
	o := openCopy(t, dir)
	r.cases++
	c := flipCase{off, bit, o}
	switch {
	case o.err == nil && prefixOf(o.ents, img.ents, len(img.ents)):
		r.ignored++
	case o.err == nil:
		r.lost = append(r.lost, c)
	case namesSegment(o.err, filepath.Join(dir, seg)):
		r.failed++
	default:
		r.unclear = append(r.unclear, c)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
}

func (r *flipResult) String() string {
	return fmt.Sprintf("%d cases: %d refused naming the segment, %d harmless (all entries back), %d lost entries silently, %d refused without naming the segment",
		r.cases, r.failed, r.ignored, len(r.lost), len(r.unclear))
}

func describeFlips(cs []flipCase) string {
	var sb strings.Builder
	for i, c := range cs {
		if i == 4 {
			fmt.Fprintf(&sb, " … (%d more)", len(cs)-i)
			break
		}
		if c.o.err != nil {
			fmt.Fprintf(&sb, " [byte %d bit %d: %v]", c.off, c.bit, c.o.err)
		} else {
			fmt.Fprintf(&sb, " [byte %d bit %d: %d of %d entries, Repaired=%v]", c.off, c.bit, len(c.o.ents), faultEntries, c.o.repaired)
		}
	}
	return sb.String()
}

// TestFaultFlipMiddleRecord flips every bit of a record in the middle of the
// last segment, its length word included, one at a time.
func TestFaultFlipMiddleRecord(t *testing.T) {
	img := buildImage(t, faultEntries, faultEntrySize)
	seg := img.segs[len(img.segs)-1]
	efs := entryFrames(t, img.files[seg])
	mid := efs[len(efs)/2]
	base := caseBase(t)
	var r flipResult
	for off := mid.start; off < mid.end; off++ {
		for bit := range uint(8) {
			r.flip(t, img, base, seg, off, bit)
		}
	}
	t.Logf("flip (last segment, entry record %d of %d at bytes %d..%d): %v", len(efs)/2+1, len(efs), mid.start, mid.end, &r)
	// A flipped length word makes etcd's decoder report a torn record;
	// it must not be repaired away (the records after it were fsynced).
	if len(r.lost) > 0 {
		t.Errorf("fsynced entries lost silently (%d of %d cases):%s", len(r.lost), r.cases, describeFlips(r.lost))
	}
	// A flipped type field is not covered by the record's checksum.
	if len(r.unclear) > 0 {
		t.Errorf("refused without naming the segment (%d of %d cases):%s", len(r.unclear), r.cases, describeFlips(r.unclear))
	}
}

// TestFaultFlipOlderSegment flips bits of a record in the middle of a
// segment that is not the last one: one bit of each byte of the length word
// and of every 64th byte of the rest of the 4 KB record.
func TestFaultFlipOlderSegment(t *testing.T) {
	img := buildImage(t, 140, 4000) // 3 segments of 256 KiB
	if len(img.segs) < 3 {
		t.Fatalf("only %d segments", len(img.segs))
	}
	seg := img.segs[1]
	efs := entryFrames(t, img.files[seg])
	mid := efs[len(efs)/2]
	base := caseBase(t)
	var r flipResult
	for off := mid.start; off < mid.end; off++ {
		if off-mid.start >= 16 && (off-mid.start)%64 != 0 {
			continue
		}
		r.flip(t, img, base, seg, off, uint(off-mid.start)%8)
	}
	t.Logf("flip (segment 2 of %d, bytes %d..%d): %v", len(img.segs), mid.start, mid.end, &r)
	if len(r.lost) > 0 {
		t.Errorf("flips in an older segment lost entries silently:%s", describeFlips(r.lost))
	}
	if len(r.unclear) > 0 {
		t.Errorf("refused without naming the segment (%d of %d cases):%s", len(r.unclear), r.cases, describeFlips(r.unclear))
	}
}

// TestFaultRemoveSegment removes each middle segment of a multi-segment WAL:
// Open must refuse, naming the gap.
func TestFaultRemoveSegment(t *testing.T) {
	img := buildImage(t, 140, 4000)
	if len(img.segs) < 3 {
		t.Fatalf("only %d segments", len(img.segs))
	}
	base := caseBase(t)
	cases := 0
	for i := 1; i < len(img.segs)-1; i++ {
		dir := img.write(t, base, func(files map[string][]byte) { delete(files, img.segs[i]) })
		o := openCopy(t, dir)
		cases++
		switch {
		case o.err == nil:
			t.Errorf("segment %s removed: Open succeeded with %d entries", img.segs[i], len(o.ents))
		case !errors.Is(o.err, ErrCorrupt) || !strings.Contains(o.err.Error(), "missing") ||
			!strings.Contains(o.err.Error(), filepath.Base(img.segs[i-1])) || !strings.Contains(o.err.Error(), "backup"):
			t.Errorf("segment %s removed: unclear error: %v", img.segs[i], o.err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	// The first segment too: it holds the metadata and the start of the log.
	dir := img.write(t, base, func(files map[string][]byte) { delete(files, img.segs[0]) })
	o := openCopy(t, dir)
	cases++
	if o.err == nil || !errors.Is(o.err, ErrCorrupt) {
		t.Errorf("first segment removed: Open gave %d entries, err %v; want ErrCorrupt", len(o.ents), o.err)
	}
	t.Logf("remove segment: %d cases (of %d segments), all refused", cases, len(img.segs))
}

// TestFaultZeroMiddle zeroes the length word, and then a whole 512-byte
// sector, at records in the middle of the last segment. etcd's decoder reads
// a zero length word as the end of the log, so without a look past that end
// Open would succeed without the fsynced records after it. Open must refuse,
// naming the segment.
func TestFaultZeroMiddle(t *testing.T) {
	img := buildImage(t, faultEntries, faultEntrySize)
	seg := img.segs[len(img.segs)-1]
	orig := img.files[seg]
	efs := entryFrames(t, orig)
	base := caseBase(t)
	cases := 0
	check := func(what string, zeroed []byte, k int) {
		t.Helper()
		dir := img.write(t, base, func(files map[string][]byte) { files[seg] = zeroed })
		o := openCopy(t, dir)
		cases++
		switch {
		case o.err == nil:
			t.Errorf("%s: Open succeeded with %d of %d entries (%s); want a refusal", what, len(o.ents), len(img.ents), span(o.ents))
		case !namesSegment(o.err, filepath.Join(dir, seg)):
			t.Errorf("%s: error does not wrap ErrCorrupt or name the segment: %v", what, o.err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	// Every record but the last two: those after it must be found. (A zeroed
	// sector with nothing after it is a zeroed tail, which looks exactly like
	// a write that never reached the disk: TestFaultZeroTail.)
	for k := 1; k < len(efs)-2; k++ {
		zeroed := append([]byte(nil), orig...)
		clear(zeroed[efs[k].start : efs[k].start+8])
		check(fmt.Sprintf("length word of entry record %d zeroed", k+1), zeroed, k)

		zeroed = append([]byte(nil), orig...)
		s := efs[k].start / sectorSize * sectorSize
		clear(zeroed[s:min(s+sectorSize, int64(len(zeroed)))])
		if bytes.Equal(zeroed, orig) || efs[len(efs)-1].end <= s+sectorSize {
			continue // nothing changed, or a zeroed tail: TestFaultZeroTail
		}
		check(fmt.Sprintf("sector at %d (entry record %d) zeroed", s, k+1), zeroed, k)
	}
	t.Logf("zero in the middle: %d cases, all refused naming the segment", cases)
}

// TestFaultFlipLastRecordLength flips every bit of the length word of the
// last record. Nothing follows that record, so only the record itself can
// show that it was written whole: Open must refuse (or, where the flip is
// harmless, return every entry), never drop it as a torn write.
func TestFaultFlipLastRecordLength(t *testing.T) {
	img := buildImage(t, faultEntries, faultEntrySize)
	seg := img.segs[len(img.segs)-1]
	efs := entryFrames(t, img.files[seg])
	last := efs[len(efs)-1]
	base := caseBase(t)
	var r flipResult
	for off := last.start; off < last.start+8; off++ {
		for bit := range uint(8) {
			r.flip(t, img, base, seg, off, bit)
		}
	}
	t.Logf("flip (length word of the last record, bytes %d..%d): %v", last.start, last.start+8, &r)
	if len(r.lost) > 0 {
		t.Errorf("fsynced entries lost silently (%d of %d cases):%s", len(r.lost), r.cases, describeFlips(r.lost))
	}
	if len(r.unclear) > 0 {
		t.Errorf("refused without naming the segment (%d of %d cases):%s", len(r.unclear), r.cases, describeFlips(r.unclear))
	}
}
