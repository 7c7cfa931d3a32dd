package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// SnapshotPath streams a backup of the cluster's state (GET, admin once
// auth is on) in the snapshot file format below. The read is linearizable
// unless it asks for ?consistency=stale: then the answering node's own
// state, which a member that lost its quorum can still give.
const SnapshotPath = "/v1/snapshot"

// SnapshotContentType is the Content-Type of GET /v1/snapshot's answer.
const SnapshotContentType = "application/octet-stream"

// The snapshot file format: what GET /v1/snapshot answers, what `raftlock
// snapshot save` writes and what `raftlockd --restore-from` reads. All
// integers are big-endian:
//
//	offset  size  field
//	0       18    magic "RAFTLOCK-SNAPSHOT\n" (SnapshotMagic)
//	18      4     format version, 1 (SnapshotFormatVersion)
//	22      8     cluster ID of the cluster the state comes from (0: unknown)
//	30      8     index: the raft log index the state was applied up to
//	38      8     term: the raft term of the last command with a clock
//	              applied to the state (lock.Machine.Term)
//	46      8     N: the length of the state in bytes
//	54      N     the state: lock.Machine.Snapshot's encoding, which has its
//	              own version byte and is checked again when restored
//	54+N    32    SHA-256 of bytes 0 to 54+N (everything before it)
//
// Nothing follows the checksum. A reader checks the magic, the version,
// that exactly N bytes of state and the checksum follow, and the checksum,
// so a truncated, extended or damaged file is refused as a whole
// (ErrSnapshotInvalid); the state's own structure is checked by the
// server that restores it.
const (
	// SnapshotMagic starts every snapshot file; `head -1` shows it.
	SnapshotMagic = "RAFTLOCK-SNAPSHOT\n"
	// SnapshotFormatVersion is the file format version this build writes
	// and the only one it reads.
	SnapshotFormatVersion = 1
	// SnapshotHeaderSize is the size of the header before the state.
	SnapshotHeaderSize = len(SnapshotMagic) + 4 + 8 + 8 + 8 + 8
	// snapshotSumSize is the size of the trailing SHA-256.
	snapshotSumSize = sha256.Size
)

// ErrSnapshotInvalid is wrapped by every error of ReadSnapshot and
// VerifySnapshot about the file's content: not a snapshot file, a format
// version this build does not read, truncated, damaged (checksum), or with
// bytes after its end. The message says which. Errors of the reader itself
// are returned wrapped as they are, without it.
var ErrSnapshotInvalid = errors.New("api: invalid snapshot file")

// SnapshotHeader is what a snapshot file says about its state.
type SnapshotHeader struct {
	// ClusterID is the ID of the cluster the state comes from; 0 when
	// unknown. A cluster restored from the file must get another one.
	ClusterID uint64
	// Index is the raft log index the state was applied up to.
	Index uint64
	// Term is the raft term of the last command with a clock applied to
	// the state.
	Term uint64
}

// SnapshotInfo describes a snapshot file.
type SnapshotInfo struct {
	// Version is the file format version.
	Version uint32 `json:"version"`
	// ClusterID is the ID of the cluster the state comes from, in
	// hexadecimal as in Status.ClusterID ("0": unknown).
	ClusterID string `json:"cluster_id"`
	// Index is the raft log index the state was applied up to: a restored
	// cluster's log continues after it, so its fencing tokens stay above
	// every token of the state.
	Index uint64 `json:"index"`
	// Term is the raft term of the last command with a clock applied to
	// the state; a restored cluster's log starts after it.
	Term uint64 `json:"term"`
	// StateBytes is the length of the state (N).
	StateBytes uint64 `json:"state_bytes"`
	// Size is the length of the whole file.
	Size int64 `json:"size"`
	// SHA256 is the file's checksum (its last 32 bytes) in hexadecimal.
	SHA256 string `json:"sha256"`
}

// SnapshotSize is the size of the snapshot file of a state of n bytes.
func SnapshotSize(n int) int64 {
	return int64(SnapshotHeaderSize) + int64(n) + snapshotSumSize
}

// WriteSnapshot writes the snapshot file of state, described by h, to w,
// and describes what it wrote. It returns w's first error.
func WriteSnapshot(w io.Writer, h SnapshotHeader, state []byte) (SnapshotInfo, error) {
	hdr := make([]byte, 0, SnapshotHeaderSize)
	hdr = append(hdr, SnapshotMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, SnapshotFormatVersion)
	hdr = binary.BigEndian.AppendUint64(hdr, h.ClusterID)
	hdr = binary.BigEndian.AppendUint64(hdr, h.Index)
	hdr = binary.BigEndian.AppendUint64(hdr, h.Term)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(state)))
	sha := sha256.New()
	sha.Write(hdr)
	sha.Write(state)
	sum := sha.Sum(nil)
	for _, b := range [][]byte{hdr, state, sum} {
		if _, err := w.Write(b); err != nil {
			return SnapshotInfo{}, fmt.Errorf("write snapshot: %w", err)
		}
	}
	return SnapshotInfo{Version: SnapshotFormatVersion, ClusterID: strconv.FormatUint(h.ClusterID, 16), Index: h.Index, Term: h.Term,
		StateBytes: uint64(len(state)), Size: SnapshotSize(len(state)), SHA256: hex.EncodeToString(sum)}, nil
}

// ReadSnapshot reads a whole snapshot file from r, verifies it and returns
// it with its state (a fresh slice). Errors: as VerifySnapshot.
func ReadSnapshot(r io.Reader) (SnapshotInfo, []byte, error) {
	var state bytes.Buffer
	info, err := readSnapshot(r, &state)
	if err != nil {
		return info, nil, err
	}
	return info, state.Bytes(), nil
}

// VerifySnapshot reads a whole snapshot file from r and verifies it
// without keeping the state: memory stays small whatever the file's size.
// An error about the content wraps ErrSnapshotInvalid and says what is
// wrong; the SnapshotInfo then holds what the header said, if it was
// read. An error of r is returned wrapped, without ErrSnapshotInvalid,
// except io.ErrUnexpectedEOF, which is a truncated file.
func VerifySnapshot(r io.Reader) (SnapshotInfo, error) {
	return readSnapshot(r, io.Discard)
}

// readSnapshot reads and verifies a snapshot file from r, copying its
// state to state.
func readSnapshot(r io.Reader, state io.Writer) (SnapshotInfo, error) {
	var info SnapshotInfo
	var hdr [SnapshotHeaderSize]byte
	n, err := io.ReadFull(r, hdr[:])
	info.Size = int64(n)
	if !bytes.HasPrefix(hdr[:n], []byte(SnapshotMagic)) && !bytes.HasPrefix([]byte(SnapshotMagic), hdr[:n]) {
		return info, fmt.Errorf("%w: not a raftlock snapshot: it does not start with %q (it starts with %q)",
			ErrSnapshotInvalid, SnapshotMagic, hdr[:min(n, len(SnapshotMagic))])
	}
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return info, fmt.Errorf("%w: empty", ErrSnapshotInvalid)
		}
		if eof(err) {
			return info, fmt.Errorf("%w: truncated: %d bytes, shorter than the %d-byte header", ErrSnapshotInvalid, n, SnapshotHeaderSize)
		}
		return info, fmt.Errorf("read snapshot: %w", err)
	}
	p := hdr[len(SnapshotMagic):]
	info.Version = binary.BigEndian.Uint32(p)
	if info.Version != SnapshotFormatVersion {
		return info, fmt.Errorf("%w: format version %d: this build reads version %d only (was it written by a newer raftlock?)",
			ErrSnapshotInvalid, info.Version, SnapshotFormatVersion)
	}
	info.ClusterID = strconv.FormatUint(binary.BigEndian.Uint64(p[4:]), 16)
	info.Index = binary.BigEndian.Uint64(p[12:])
	info.Term = binary.BigEndian.Uint64(p[20:])
	info.StateBytes = binary.BigEndian.Uint64(p[28:])
	if info.StateBytes > math.MaxInt64-uint64(SnapshotHeaderSize)-snapshotSumSize {
		return info, fmt.Errorf("%w: damaged header: it announces %d bytes of state", ErrSnapshotInvalid, info.StateBytes)
	}
	want := uint64(SnapshotHeaderSize) + info.StateBytes + snapshotSumSize
	h := sha256.New()
	h.Write(hdr[:])
	copied, err := io.CopyN(io.MultiWriter(h, state), r, int64(info.StateBytes))
	info.Size += copied
	if err != nil {
		if eof(err) {
			hint := ""
			if want > 2*uint64(info.Size)+1<<20 {
				hint = " (or the header's length is damaged)"
			}
			return info, fmt.Errorf("%w: truncated: the header announces %d bytes of state (a file of %d bytes), but the file ends after %d bytes%s",
				ErrSnapshotInvalid, info.StateBytes, want, info.Size, hint)
		}
		return info, fmt.Errorf("read snapshot: %w", err)
	}
	var sum [snapshotSumSize]byte
	n, err = io.ReadFull(r, sum[:])
	info.Size += int64(n)
	if err != nil {
		if eof(err) {
			return info, fmt.Errorf("%w: truncated: the file ends %d bytes into its %d-byte checksum (a file of %d bytes was expected, it has %d)",
				ErrSnapshotInvalid, n, snapshotSumSize, want, info.Size)
		}
		return info, fmt.Errorf("read snapshot: %w", err)
	}
	info.SHA256 = hex.EncodeToString(sum[:])
	if got := h.Sum(nil); !bytes.Equal(got, sum[:]) {
		return info, fmt.Errorf("%w: checksum mismatch: the file is damaged (SHA-256 stored %s, computed %s)",
			ErrSnapshotInvalid, info.SHA256, hex.EncodeToString(got))
	}
	extra, err := io.Copy(io.Discard, r)
	if err != nil {
		return info, fmt.Errorf("read snapshot: %w", err)
	}
	if extra > 0 {
		info.Size += extra
		return info, fmt.Errorf("%w: %d bytes after the checksum (a file of %d bytes was expected, it has %d)",
			ErrSnapshotInvalid, extra, want, info.Size)
	}
	return info, nil
}

func eof(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
