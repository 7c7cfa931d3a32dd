package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func snapshotFile(t testing.TB, index, term uint64, state []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	info, err := WriteSnapshot(&b, SnapshotHeader{ClusterID: 0xc1, Index: index, Term: term}, state)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(b.Len()) || info.Size != SnapshotSize(len(state)) {
		t.Fatalf("WriteSnapshot says %d bytes, wrote %d, SnapshotSize %d", info.Size, b.Len(), SnapshotSize(len(state)))
	}
	return b.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, state := range [][]byte{nil, {4}, bytes.Repeat([]byte("state"), 10000)} {
		file := snapshotFile(t, 1234, 7, state)
		if !bytes.HasPrefix(file, []byte("RAFTLOCK-SNAPSHOT\n\x00\x00\x00\x01")) {
			t.Fatalf("file starts with %q", file[:22])
		}
		sum := sha256.Sum256(file[:len(file)-32])
		want := SnapshotInfo{Version: 1, ClusterID: "c1", Index: 1234, Term: 7, StateBytes: uint64(len(state)), Size: int64(len(file)), SHA256: hex.EncodeToString(sum[:])}

		info, got, err := ReadSnapshot(bytes.NewReader(file))
		if err != nil || info != want || !bytes.Equal(got, state) {
			t.Fatalf("ReadSnapshot: %+v, %d bytes, %v; want %+v, %d bytes", info, len(got), err, want, len(state))
		}
		// One byte at a time, as a slow network gives it.
		info, err = VerifySnapshot(iotest.OneByteReader(bytes.NewReader(file)))
		if err != nil || info != want {
			t.Fatalf("VerifySnapshot: %+v, %v; want %+v", info, err, want)
		}
	}
}

// Every damage is refused with ErrSnapshotInvalid and a message that says
// what is wrong: each truncation, each flipped byte, bytes after the end,
// another file altogether.
func TestSnapshotDamageRefused(t *testing.T) {
	file := snapshotFile(t, 99, 3, []byte("the state of the machine"))

	for n := 0; n < len(file); n++ {
		_, err := VerifySnapshot(bytes.NewReader(file[:n]))
		want := "truncated"
		if n == 0 {
			want = "empty"
		}
		if !errors.Is(err, ErrSnapshotInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("file cut to %d of %d bytes: %v, want %q", n, len(file), err, want)
		}
	}

	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x20
		_, _, err := ReadSnapshot(bytes.NewReader(bad))
		var want string
		switch {
		case i < len(SnapshotMagic):
			want = "not a raftlock snapshot"
		case i < len(SnapshotMagic)+4:
			want = "format version"
		case i >= SnapshotHeaderSize-8 && i < SnapshotHeaderSize:
			want = "" // the length: truncated or a checksum mismatch
		default:
			want = "checksum mismatch"
		}
		if !errors.Is(err, ErrSnapshotInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("byte %d flipped: %v, want %q", i, err, want)
		}
	}

	_, err := VerifySnapshot(bytes.NewReader(append(bytes.Clone(file), '\n')))
	if !errors.Is(err, ErrSnapshotInvalid) || !strings.Contains(err.Error(), "1 bytes after the checksum") {
		t.Errorf("a byte appended: %v", err)
	}

	for _, other := range []string{"{\"error\":{\"code\":\"not_found\"}}", "RAFTLOCK-SNAPSHOX\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "R"} {
		_, err := VerifySnapshot(strings.NewReader(other))
		if other == "R" {
			// A prefix of the magic: too short to tell, so truncated.
			if !errors.Is(err, ErrSnapshotInvalid) || !strings.Contains(err.Error(), "truncated") {
				t.Errorf("%q: %v", other, err)
			}
			continue
		}
		if !errors.Is(err, ErrSnapshotInvalid) || !strings.Contains(err.Error(), "not a raftlock snapshot") {
			t.Errorf("%q: %v", other, err)
		}
	}

	// A length word of 2^62: truncated, and the message suspects the header.
	bad := bytes.Clone(file)
	bad[SnapshotHeaderSize-8] = 0x40
	if _, err := VerifySnapshot(bytes.NewReader(bad)); !errors.Is(err, ErrSnapshotInvalid) || !strings.Contains(err.Error(), "header's length is damaged") {
		t.Errorf("huge length: %v", err)
	}
}

// A failing reader's error comes back as it is: it says nothing about the
// file.
func TestSnapshotReaderError(t *testing.T) {
	file := snapshotFile(t, 5, 1, []byte("abc"))
	boom := errors.New("boom")
	for _, n := range []int{10, SnapshotHeaderSize + 1, len(file) - 1, len(file)} {
		r := io.MultiReader(bytes.NewReader(file[:n]), iotest.ErrReader(boom))
		_, err := VerifySnapshot(r)
		if !errors.Is(err, boom) || errors.Is(err, ErrSnapshotInvalid) {
			t.Errorf("reader failing after %d bytes: %v", n, err)
		}
	}
}

// Whatever the input, ReadSnapshot does not panic, and what it accepts is
// exactly what WriteSnapshot writes for its fields.
func FuzzReadSnapshot(f *testing.F) {
	f.Add(snapshotFile(f, 1, 1, []byte("x")))
	f.Add(snapshotFile(f, 0, 0, nil))
	f.Add([]byte(SnapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, state, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrSnapshotInvalid) {
				t.Fatalf("an error without ErrSnapshotInvalid: %v", err)
			}
			return
		}
		var again bytes.Buffer
		cid, _ := strconv.ParseUint(info.ClusterID, 16, 64)
		if _, err := WriteSnapshot(&again, SnapshotHeader{ClusterID: cid, Index: info.Index, Term: info.Term}, state); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("accepted %x, which writes back as %x", b, again.Bytes())
		}
	})
}
