package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
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
// one, so that errors can name it. It checks each record's checksum and the
// checksum chain between segments (which breaks when a segment is missing or
// replaced). A torn record at the end of the last segment is not damage. It
// returns "" when it finds nothing wrong.
func locateCorruption(segs []segment, dir string) (path string, detail error) {
	var prevCRC uint32
	for i, s := range segs {
		path := filepath.Join(dir, s.name)
		crc, detail := checkSegment(path, i > 0, prevCRC, i == len(segs)-1)
		if detail != nil {
			return path, detail
		}
		prevCRC = crc
	}
	return "", nil
}

// checkSegment decodes one segment. When chained, its leading CRC record
// must carry prevCRC. It returns what is wrong, or the running checksum at
// the end of the segment.
func checkSegment(path string, chained bool, prevCRC uint32, last bool) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dec := etcdwal.NewDecoder(fileutil.NewFileReader(f))
	first := true
	for {
		rec := &walpb.Record{}
		err := dec.Decode(rec)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return dec.LastCRC(), nil
		case errors.Is(err, io.ErrUnexpectedEOF) && last:
			return dec.LastCRC(), nil
		default:
			return 0, fmt.Errorf("bad record at offset %d: %w", dec.LastOffset(), err)
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
