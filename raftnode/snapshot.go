package raftnode

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
)

// When. A node snapshots its own state once both hold (maybeSnapshot):
//
//   - at least Config.SnapshotEvery entries were applied since the last
//     snapshot, and
//   - the entries applied since then add up to Config.SnapshotLogRatio
//     times the size of the last snapshot, in bytes of entry data.
//
// The members of a cluster apply the same log, so with one ratio they would
// all snapshot at the same index, and encode and write the same large
// state at the same moment on machines that may share cores and a disk
// (at a million locks, three members writing 24 MiB at once coincided
// with creates held up for 1.3 s). Each member therefore uses its own
// ratio (snapshotRatio): SnapshotLogRatio × (1 + rank/members), rank its
// place among the members' IDs with the leader last, so that three members
// wait for 1, 1⅓ and 1⅔ times the ratio (the leader 1⅔: its own snapshots
// stall what clients see) and their snapshots drift apart.
//
// A snapshot costs time in proportion to the state (encode, write, fsync).
// With the first rule alone a growing state is snapshotted every
// SnapshotEvery entries, and the work for a state grown to S bytes is
// O(S²) (a million locks: 99 snapshots, the last of 33.5 MiB). The second
// makes each byte of log pay for at most 1/SnapshotLogRatio bytes of the
// snapshot before it, so that all the snapshots but the last add up to at
// most the log's bytes / SnapshotLogRatio: linear (the snapshots of a
// growing state grow geometrically). A small state still snapshots every
// SnapshotEvery entries.
//
// The entries since the last snapshot are what a restart replays, what the
// MemoryStorage holds (with SnapshotCatchUp more) and what the WAL keeps:
// the rules bound them by SnapshotLogRatio times the last snapshot, or
// SnapshotEvery entries if more (plus those applied while a snapshot is in
// flight), a fraction of the state, which the node holds in memory anyway
// (many times its encoded size). There is deliberately no upper bound on
// their number: it would snapshot a large state every so many entries
// again, quadratic in the end. The size of the last snapshot is known after
// finishSnapshot, after a restart from the data dir (newNode) and after a
// snapshot from the leader (restoreSnapshot); the bytes are counted where
// entries are applied (apply, also the entries a restart replays).
//
// How. A node snapshots its own state in three steps, so that a large state
// does not stall the loop (heartbeats, proposals and reads wait while the
// loop is busy):
//
//  1. on the loop, maybeSnapshot captures the state machine
//     (lock.Machine.CaptureSnapshot: O(1) clones of copy-on-write trees, no
//     sorting, no encoding), the applied index, its term and the conf state
//     into a snapJob;
//  2. off the loop, snapJob.run encodes the capture and writes the snap
//     file, fsynced a slice at a time and with its directory
//     (Durable.SaveSnapshotFile);
//  3. back on the loop, finishSnapshot writes the WAL snapshot record
//     (Durable.SaveSnapshotRecord, fsynced), hands the snapshot to the
//     MemoryStorage, compacts it and moves snapIndex.
//
// At most one snapshot is in flight. The file is durable before the record
// that points to it; a crash in between leaves a file that no record names,
// which a restart ignores (see wal.Log.SaveSnapshotFile). A snapshot from
// the leader waits for ours to finish (awaitSnapshot), so that WAL records
// keep increasing and no file is written while old ones are purged. Run
// waits for the goroutine before it closes the WAL, and then does not
// record it.

// snapJob is one snapshot of this node's own state on its way to disk. The
// loop creates it and, after run, finishes it; run may execute on another
// goroutine, which then touches only the job and Durable.SaveSnapshotFile.
type snapJob struct {
	index    uint64
	term     uint64
	conf     *raftpb.ConfState // a copy, owned by the job
	capture  *lock.SnapshotCapture
	captured time.Duration // on the loop
	logBytes uint64        // snapLog.applied at index

	once    sync.Once
	snap    *raftpb.Snapshot // set by run
	err     error            // set by run: the snap file was not written
	encoded time.Duration    // set by run
	written time.Duration    // set by run
}

// run encodes the capture and writes the snap file to d. Only its first
// call does anything, and a concurrent call waits for it (sync.Once): the
// loop may call it to wait for the file of a job its driver runs. The loop
// reads the results only after run returned.
func (j *snapJob) run(d Durable) {
	j.once.Do(func() {
		start := time.Now()
		data := j.capture.Encode()
		j.capture = nil
		j.encoded = time.Since(start)
		j.snap = &raftpb.Snapshot{
			Data: data,
			Metadata: &raftpb.SnapshotMetadata{
				Index:     proto.Uint64(j.index),
				Term:      proto.Uint64(j.term),
				ConfState: j.conf,
			},
		}
		j.err = d.SaveSnapshotFile(j.snap)
		j.written = time.Since(start) - j.encoded
	})
}

// snapLog is what the snapshot policy counts (see the top of this file).
// The loop owns it.
type snapLog struct {
	// applied is the bytes of the data of the entries applied since the
	// node started (count); atSnap its value at the last snapshot's index
	// (or when the last snapshot from the leader was restored).
	applied, atSnap uint64
	// lastSize is the size of the last snapshot, in bytes (0: none yet).
	lastSize uint64
}

// count adds an applied entry (apply calls it for each).
func (l *snapLog) count(e *raftpb.Entry) { l.applied += uint64(len(e.GetData())) }

// restored records the snapshot the state now starts from, restored from
// the data dir or received from the leader: nothing applied since.
func (l *snapLog) restored(snap *raftpb.Snapshot) {
	l.atSnap, l.lastSize = l.applied, uint64(len(snap.GetData()))
}

// due reports whether the second rule holds: the bytes applied since the
// last snapshot reach ratio times its size (always, with ratio 0 or no
// snapshot yet).
func (l *snapLog) due(ratio float64) bool {
	return float64(l.applied-l.atSnap) >= ratio*float64(l.lastSize)
}

// maybeSnapshot starts a snapshot when it is due (see the top of this
// file: SnapshotEvery entries and SnapshotLogRatio) and none is in flight.
// It runs on the loop, after the Ready's committed entries are applied. The
// job goes to the loop's driver (takeSnapshotJob), which runs it off the
// loop and hands it back as an input once its file is written.
func (n *Node) maybeSnapshot() error {
	if n.snapJob != nil || n.applied-n.snapIndex < n.cfg.SnapshotEvery || !n.snapLog.due(n.snapshotRatio()) {
		return nil
	}
	start := time.Now()
	term, err := n.storage.Term(n.applied)
	if err != nil {
		return fmt.Errorf("raftnode: snapshot at %d: term of the applied entry: %w", n.applied, err)
	}
	job := &snapJob{
		index:    n.applied,
		term:     term,
		conf:     proto.Clone(n.confState).(*raftpb.ConfState),
		capture:  n.machine.CaptureSnapshot(),
		logBytes: n.snapLog.applied,
	}
	job.captured = time.Since(start)
	n.snapJob = job
	n.newSnapJob = job
	return nil
}

// snapshotRatio is this member's ratio of the second rule (see the top of
// this file): Config.SnapshotLogRatio × (1 + rank/k), where k is the number
// of voters and learners of the applied configuration and rank this node's
// place among them in ID order, the leader placed last: the leader waits
// longest, as its stalls are the ones clients see (a follower's are hidden
// by the others' acknowledgements), and the followers spread below it. A
// node not among them, or alone, uses SnapshotLogRatio itself. Loop only.
func (n *Node) snapshotRatio() float64 {
	before := func(id uint64) bool { // id ranks below this node
		return id != n.lead && (n.id == n.lead || id < n.id)
	}
	k, rank, member := 0, 0, false
	for _, ids := range [][]uint64{n.confState.GetVoters(), n.confState.GetLearners()} {
		for _, id := range ids {
			k++
			if id != n.id && before(id) {
				rank++
			}
			member = member || id == n.id
		}
	}
	if !member {
		return n.cfg.SnapshotLogRatio
	}
	return n.cfg.SnapshotLogRatio * (1 + float64(rank)/float64(k))
}

// takeSnapshotJob returns the snapshot job the loop started since the last
// call, or nil. The driver (Run, or the simulation) must call job.run off
// the loop and then hand the job back as an input (input.snap).
func (n *Node) takeSnapshotJob() *snapJob {
	job := n.newSnapJob
	n.newSnapJob = nil
	return job
}

// awaitSnapshot waits until the snapshot in flight has its file written
// (running it on the loop if its driver has not started it yet), and
// finishes it. The loop calls it before it saves a snapshot received from
// the leader. The driver's later hand-back of the job is then ignored.
func (n *Node) awaitSnapshot() error {
	job := n.snapJob
	n.newSnapJob = nil
	job.run(n.wal)
	return n.finishSnapshot(job)
}

// abandonSnapshot waits for the snapshot in flight, if any, and drops it
// without recording it: Run calls it when it returns, before it closes the
// WAL. The snap file, if written, is ignored by a restart.
func (n *Node) abandonSnapshot() {
	job := n.snapJob
	if job == nil {
		return
	}
	n.snapJob = nil
	if n.newSnapJob == job {
		n.newSnapJob = nil // never handed to a goroutine: nothing to wait for
		return
	}
	job.run(n.wal) // waits for Run's goroutine
	n.log.Info("snapshot abandoned: the node stopped before recording it", "index", job.index)
}

// finishSnapshot completes job on the loop once its file is written: the
// WAL record, the MemoryStorage snapshot, compaction and snapIndex. A job
// that is not the one in flight (the simulation's late delivery after an
// awaitSnapshot) is ignored. A job superseded by a newer snapshot from the
// leader is dropped without a record. An error of run or of the record
// stops the node.
func (n *Node) finishSnapshot(job *snapJob) error {
	if job != n.snapJob {
		return nil
	}
	n.snapJob = nil
	if job.err != nil {
		return fmt.Errorf("raftnode: save snapshot at %d: %w", job.index, job.err)
	}
	stored, err := n.storage.Snapshot()
	if err != nil {
		return fmt.Errorf("raftnode: snapshot at %d: read storage snapshot: %w", job.index, err)
	}
	if latest := max(n.snapIndex, stored.GetMetadata().GetIndex()); job.index <= latest {
		// A newer snapshot was saved meanwhile; a record for this older
		// one would make the WAL's records go backwards.
		n.log.Info("snapshot superseded", "index", job.index, "snapshot_index", latest)
		return nil
	}
	start := time.Now()
	if err := n.wal.SaveSnapshotRecord(job.snap); err != nil {
		return fmt.Errorf("raftnode: save snapshot record at %d: %w", job.index, err)
	}
	if _, err := n.storage.CreateSnapshot(job.index, job.conf, job.snap.GetData()); err != nil {
		if !errors.Is(err, raft.ErrSnapOutOfDate) {
			return fmt.Errorf("raftnode: create snapshot at %d: %w", job.index, err)
		}
		// Not reached (checked above), but harmless: the storage holds a
		// newer snapshot and the WAL record of ours is valid too.
		n.log.Warn("snapshot out of date in storage", "index", job.index)
	}
	if job.index > n.cfg.SnapshotCatchUp {
		if err := n.storage.Compact(job.index - n.cfg.SnapshotCatchUp); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("raftnode: compact log: %w", err)
		}
	}
	// recorded is the loop's time from the record to here: the record's
	// fsync, and installing the snapshot in the storage (which neither
	// copies its data nor allocates for it: memStorage).
	recorded := time.Since(start)
	n.snapIndex = job.index
	logBytes := job.logBytes - n.snapLog.atSnap // applied between the last snapshot and this one
	n.snapLog.atSnap, n.snapLog.lastSize = job.logBytes, uint64(len(job.snap.GetData()))
	n.metrics.observeSnapshot(job.captured+job.encoded+job.written+recorded, len(job.snap.GetData()))
	// The loop spent capture_ms and record_ms (the record and the
	// storage) on it; encode_ms and write_ms (the snap file and its
	// fsyncs) ran on another goroutine.
	n.log.Info("snapshot saved", "index", job.index, "term", job.term, "bytes", len(job.snap.GetData()),
		"log_bytes", logBytes,
		"capture_ms", float64(job.captured.Microseconds())/1000, "encode_ms", job.encoded.Milliseconds(),
		"write_ms", job.written.Milliseconds(), "record_ms", recorded.Milliseconds())
	return nil
}
