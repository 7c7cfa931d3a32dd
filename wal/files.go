package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// segment is a WAL segment file name, seq-index.wal.
type segment struct {
	name  string
	seq   uint64
	index uint64 // raft index of the first entry the segment may hold
}

// segmentNames lists the WAL segments in dir in sequence order, ignoring
// other files (etcd's .tmp and .broken files among them).
func segmentNames(dir string) ([]segment, error) {
	names, err := fileutil.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal dir: %w", err)
	}
	var segs []segment
	for _, n := range names {
		if !strings.HasSuffix(n, ".wal") {
			continue
		}
		var s segment
		if _, err := fmt.Sscanf(n, "%016x-%016x.wal", &s.seq, &s.index); err != nil {
			continue
		}
		s.name = n
		segs = append(segs, s)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs, nil
}

// snapFile is a snapshot file name, term-index.snap.
type snapFile struct {
	name        string
	term, index uint64
}

func snapName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x.snap", term, index)
}

// listSnapFiles lists the snap files in dir, newest (highest index) first.
func listSnapFiles(dir string) ([]snapFile, error) {
	names, err := fileutil.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list snap dir: %w", err)
	}
	var files []snapFile
	for _, n := range names {
		if !strings.HasSuffix(n, ".snap") {
			continue
		}
		var f snapFile
		if _, err := fmt.Sscanf(n, "%016x-%016x.snap", &f.term, &f.index); err != nil {
			continue
		}
		f.name = n
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].index != files[j].index {
			return files[i].index > files[j].index
		}
		return files[i].term > files[j].term
	})
	return files, nil
}

// locateCorruption decodes the segments one by one to find the first damaged
// one, so that errors can name it. It checks each record's checksum and
// type, and the checksum chain between segments (which breaks when a segment
// is missing or replaced). The end of the last segment may be a torn write,
// which is not damage, unless valid records follow it (see tailHasRecords).
// It returns "" when it finds nothing wrong.
func locateCorruption(segs []segment, dir string) (path string, detail error) {
	var prevCRC uint32
	for i, s := range segs {
		path := filepath.Join(dir, s.name)
		crc, detail := checkSegment(path, i > 0, prevCRC, i == len(segs)-1, true)
		if detail != nil {
			return path, detail
		}
		prevCRC = crc
	}
	return "", nil
}

// parseRecordData checks that a record's data decodes as its type says; a
// damaged type field (not covered by the checksum) shows up here. For an
// entry it returns the entry's index.
func parseRecordData(rec *walpb.Record) (uint64, error) {
	var m proto.Message
	switch rec.GetType() {
	case etcdwal.EntryType:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(rec.GetData(), e); err != nil {
			return 0, fmt.Errorf("entry record does not decode as an entry: %w", err)
		}
		if _, ok := raftpb.EntryType_name[int32(e.GetType())]; !ok {
			return 0, fmt.Errorf("entry record holds unknown entry type %d", e.GetType())
		}
		return e.GetIndex(), nil
	case etcdwal.StateType:
		m = &raftpb.HardState{}
	case etcdwal.SnapshotType:
		m = &walpb.Snapshot{}
	default:
		return 0, nil
	}
	if err := proto.Unmarshal(rec.GetData(), m); err != nil {
		return 0, fmt.Errorf("type %d record does not decode as its type: %w", rec.GetType(), err)
	}
	return 0, nil
}

// knownRecordType reports whether t is a record type etcd's WAL writes. The
// type field is not covered by the record's checksum.
func knownRecordType(t int64) bool {
	switch t {
	case etcdwal.MetadataType, etcdwal.EntryType, etcdwal.StateType, etcdwal.CrcType, etcdwal.SnapshotType:
		return true
	}
	return false
}

// checkSegment decodes one segment. When chained, its leading CRC record
// must carry prevCRC. It returns what is wrong, or the running checksum at
// the end of the segment. In the last segment, a torn record or the end of
// the written data is accepted only when no valid record follows it. Deep
// also checks that each record's data decodes as its type says.
func checkSegment(path string, chained bool, prevCRC uint32, last, deep bool) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dec := etcdwal.NewDecoder(fileutil.NewFileReader(f))
	first := true
	var lastIndex uint64
	for {
		rec := &walpb.Record{}
		err := dec.Decode(rec)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && !last:
			return dec.LastCRC(), nil
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) && last:
			off := dec.LastOffset()
			if found, at := tailHasRecords(f, off, dec.LastCRC()); found {
				what := "the data ends"
				if !errors.Is(err, io.EOF) {
					what = "a damaged record starts"
				}
				return 0, fmt.Errorf("%s at offset %d but valid records follow at offset %d: damage in the middle of the log, not a torn write", what, off, at)
			}
			return dec.LastCRC(), nil
		default:
			return 0, fmt.Errorf("bad record at offset %d: %w", dec.LastOffset(), err)
		}
		if !knownRecordType(rec.GetType()) {
			return 0, fmt.Errorf("unknown record type %d at offset %d", rec.GetType(), dec.LastOffset())
		}
		if !deep {
			if rec.GetType() == etcdwal.CrcType {
				dec.UpdateCRC(rec.GetCrc())
			}
			continue
		}
		idx, err := parseRecordData(rec)
		if err != nil {
			return 0, fmt.Errorf("record ending at offset %d: %w", dec.LastOffset(), err)
		}
		if rec.GetType() == etcdwal.EntryType {
			// Entries may overwrite a suffix (a new leader's), never skip.
			if lastIndex != 0 && idx > lastIndex+1 {
				return 0, fmt.Errorf("entry record ending at offset %d has index %d after index %d: the log skips entries", dec.LastOffset(), idx, lastIndex)
			}
			lastIndex = idx
		}
		if rec.GetType() == etcdwal.CrcType {
			if first && chained && rec.GetCrc() != prevCRC {
				return 0, errors.New("checksum chain broken at its start (the previous segment is missing or was replaced)")
			}
			if c := dec.LastCRC(); c != 0 && rec.Validate(c) != nil {
				return 0, fmt.Errorf("bad crc record at offset %d", dec.LastOffset())
			}
			dec.UpdateCRC(rec.GetCrc())
		}
		first = false
	}
}

// maxTailScan bounds how far past a segment's apparent end tailHasRecords
// looks; etcd preallocates segments of 64 MiB and cuts a new one past that.
const maxTailScan = 256 << 20

// tailHasRecords looks past off, where decoding of the last segment stopped
// with a running checksum of crc, for records that were certainly written
// whole: a frame whose record continues the checksum chain from crc (the
// damaged record itself, delimited by its own fields), or two consecutive
// frames whose checksums chain. A torn write leaves neither: it is a prefix
// of the last write, and what follows it was never acknowledged. Damage to
// an acknowledged record (a flipped bit in a length word, a zeroed sector)
// leaves the records after it intact, and they chain; a chance match of
// garbage has odds of about 2^-32. It returns where the first such record
// starts.
func tailHasRecords(f *os.File, off int64, crc uint32) (bool, int64) {
	fi, err := f.Stat()
	if err != nil || fi.Size() <= off {
		return false, 0
	}
	// Only up to the last non-zero byte: the rest of a preallocated segment
	// is zeros.
	limit := min(fi.Size(), off+maxTailScan)
	end := off
	chunk := make([]byte, 1<<20)
	for pos := off; pos < limit; {
		k, err := f.ReadAt(chunk[:min(int64(len(chunk)), limit-pos)], pos)
		for i := k - 1; i >= 0; i-- {
			if chunk[i] != 0 {
				end = pos + int64(i) + 1
				break
			}
		}
		pos += int64(k)
		if err != nil || k == 0 {
			break
		}
	}
	n := end - off
	if n == 0 {
		return false, 0
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return false, 0
	}
	// The damaged record itself, delimited by its own encoding rather than
	// by its length word: the record's fields are written in order, and the
	// last one, its data, carries its length.
	// A whole record under a length word that does not describe it means a
	// damaged length word; under a correct one, only its padding was cut.
	if n > 8 && off%8 == 0 {
		size := recordLen(b[8:])
		if r, ok := unmarshalRecord(b[8 : 8+size]); ok && chains(crc, r) && binary.LittleEndian.Uint64(b) != frameWord(size) {
			return true, off
		}
	}
	// Two consecutive frames after the damage. Frames start at multiples of
	// 8 in the file; off itself may not be one when a damaged padding field
	// misaligned the decoder.
	for p := (8 - off%8) % 8; p+8 <= n; p += 8 {
		r1, next, ok := frameAt(b, p)
		if !ok {
			continue
		}
		if r2, _, ok := frameAt(b, next); ok && chains(r1.GetCrc(), r2) {
			return true, off + p
		}
	}
	return false, 0
}

// recordLen returns the length of the encoded walpb.Record at the start of
// b, read from its fields (type, crc, data, in that order), or 0.
func recordLen(b []byte) int {
	pos, last := 0, protowire.Number(0)
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 || num <= last || num > 3 {
			break
		}
		var m int
		switch {
		case num < 3 && typ == protowire.VarintType:
			_, m = protowire.ConsumeVarint(b[pos+n:])
		case num == 3 && typ == protowire.BytesType:
			_, m = protowire.ConsumeBytes(b[pos+n:])
		default:
			m = -1
		}
		if m < 0 {
			break
		}
		pos += n + m
		last = num
	}
	return pos
}

// frameWord is the length word etcd's encoder writes for a record of size
// bytes: the size, and the padding to a multiple of 8 in the top byte.
func frameWord(size int) uint64 {
	w := uint64(size)
	if pad := (8 - size%8) % 8; pad != 0 {
		w |= uint64(0x80|pad) << 56
	}
	return w
}

// frameAt decodes the frame starting at p: an 8-byte little-endian length
// word (record size in the low 56 bits, padding in the top byte) and the
// record. It returns the record and where the next frame starts.
func frameAt(b []byte, p int64) (*walpb.Record, int64, bool) {
	if p < 0 || p+8 > int64(len(b)) {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint64(b[p:])
	if l == 0 {
		return nil, 0, false
	}
	size := int64(l &^ (uint64(0xff) << 56))
	var pad int64
	if int64(l) < 0 {
		pad = int64((l >> 56) & 0x7)
	}
	end := p + 8 + size + pad
	if size <= 0 || end > int64(len(b)) || end < p {
		return nil, 0, false
	}
	r, ok := unmarshalRecord(b[p+8 : p+8+size])
	return r, end, ok
}

func unmarshalRecord(b []byte) (*walpb.Record, bool) {
	r := &walpb.Record{}
	if proto.Unmarshal(b, r) != nil || !knownRecordType(r.GetType()) {
		return nil, false
	}
	return r, true
}

// chains reports whether r continues a checksum chain that stood at crc.
func chains(crc uint32, r *walpb.Record) bool {
	if r.GetType() == etcdwal.CrcType {
		return r.GetCrc() == crc
	}
	return r.GetCrc() == crc32.Update(crc, crcTable, r.GetData())
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)
