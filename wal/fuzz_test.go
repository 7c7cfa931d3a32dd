package wal

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzWALOpen mutates the bytes of a small valid WAL segment (the only one
// of its data dir) and opens it: Open must fail with an error, or return a
// prefix of the entries that were written, each equal to the original at
// its position; it must never panic or return an entry that was not
// written.
//
//	go test -run='^$' -fuzz=FuzzWALOpen -fuzztime=45s ./wal
func FuzzWALOpen(f *testing.F) {
	const n = 6
	img := buildImage(f, n, 24)
	if len(img.segs) != 1 {
		f.Fatalf("%d segments, want 1", len(img.segs))
	}
	seg := img.segs[0]
	full := img.files[seg]
	fs := parseFrames(full)
	end := fs[len(fs)-1].end
	valid := full[:end] // without the preallocated zeros

	f.Add(valid)
	f.Add(full[:end+512]) // some preallocated zeros kept
	f.Add([]byte{})
	f.Add([]byte("not a wal segment at all"))
	for _, fr := range fs[len(fs)-3:] {
		f.Add(valid[:fr.start+3])          // torn length word
		f.Add(valid[:(fr.start+fr.end)/2]) // torn data
	}
	mid := fs[len(fs)/2]
	for _, off := range []int64{mid.start + 1, mid.start + 2, mid.start + 7, mid.start + 9, (mid.start + mid.end) / 2} {
		b := append([]byte(nil), valid...)
		b[off] ^= 0x10
		f.Add(b)
	}
	zeroTail := append([]byte(nil), valid...)
	clear(zeroTail[fs[len(fs)-1].start+8:])
	f.Add(zeroTail)

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		for _, sub := range []string{walSubdir, snapSubdir} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, seg), data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, st, err := Open(context.Background(), Config{Dir: dir})
		if err != nil {
			return
		}
		defer l.Close()
		if len(st.Entries) > len(img.ents) {
			t.Fatalf("Open returned %d entries, only %d were written", len(st.Entries), len(img.ents))
		}
		for i, e := range st.Entries {
			if !proto.Equal(e, img.ents[i]) {
				t.Fatalf("entry %d: got %v, want %v (or an error)", i, e, img.ents[i])
			}
		}
	})
}
