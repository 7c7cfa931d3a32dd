// Package raftnode runs one member of a raftlock cluster: an etcd raft
// RawNode, its write-ahead log, its transport to the other members, and the
// lock state machine it applies committed entries to.
//
// # One owner
//
// A single goroutine (Node.Run) owns the RawNode, the raft MemoryStorage,
// the WAL and the lock.Machine. Every other goroutine talks to it through
// channels: Propose, Read, Process (inbound raft messages),
// ReportUnreachable, ReportSnapshot and TransferLeadership send a request
// and wait for the loop's answer. Nothing else touches consensus or
// state-machine state.
//
// # The loop and its drivers
//
// The loop is the function iterate (loop.go): it takes one input (a tick, a
// message, a proposal, a read, a transport report, a leadership transfer, a
// finished snapshot job), and with a message, proposal or read also those
// of the same kinds already waiting (up to 4096), so that they share one
// Ready: one WAL write and fsync, one batch of messages per peer, one
// ReadIndex request. Then it proposes what it gathered and handles the
// Ready. Run is the product's driver: it turns its channels and ticker
// into inputs and runs snapshot jobs on goroutines. The deterministic
// simulation is another driver of the same function; no part of the loop
// exists twice.
//
// The one piece of work done elsewhere is writing the node's own
// snapshots: the loop captures the state machine (an O(1) copy-on-write
// capture, lock.Machine.CaptureSnapshot), a goroutine encodes it and writes and
// fsyncs the snap file (Durable.SaveSnapshotFile), and the loop, once told
// on a channel, writes the WAL snapshot record, compacts the MemoryStorage
// and releases old WAL segments. At most one such snapshot is in flight; a
// snapshot received from the leader first waits for it, and Run waits for
// it before it returns (without recording it: a restart ignores a snap
// file that no WAL record names).
//
// # The Ready loop
//
// Each Ready is handled in the order raft's README prescribes, with two
// exceptions taken from etcd's server: a leader hands its replication
// messages (MsgApp, heartbeats) to the transport first, so that the
// followers persist while it does (raft thesis 10.2.1); its own copy
// counts towards a commit only after step 6, and responses (MsgAppResp,
// votes) still wait for step 2. And the committed entries that this node
// saved in an earlier Ready are applied before step 2 (etcd applies
// beside its WAL writes): they are committed and durable, and their
// callers need not wait for the fsync of the new entries.
//
//  0. a leader's replication messages to the transport;
//  1. an incoming snapshot: snap file, then the WAL snapshot record;
//  2. HardState and entries to the WAL, fsynced when raft.MustSync says so;
//  3. the same into the MemoryStorage;
//  4. the other outbound messages to the transport (which never blocks the
//     loop);
//  5. committed entries applied to the state machine, waiters answered by
//     request ID, events published (those on disk here already before
//     this Ready's WAL write, the rest after it); when the snapshot policy
//     says so (snapshot.go), a snapshot captured and handed to its
//     goroutine (see above);
//  6. Advance.
//
// Any storage error stops the loop; Run returns it and every pending caller
// gets ErrStopped.
//
// # Reads
//
// A stale read runs on the loop at once. Linearizable reads share ReadIndex
// requests (read.go): one request serves every read queued when it is sent;
// one unanswered for half an election timeout, or sent to a leader that
// stepped down, is sent again; a read whose caller gave up is dropped at
// the next tick.
//
// # Waiting for a place
//
// Await (await.go) wakes a request that waits for one session's place in
// one queue (a grant, a departure, the session's end) when an applied
// entry changes it, and no other: a waiting acquire never reads the
// cluster's event stream.
//
// # Time and the leader
//
// Only the leader stamps its clock into commands: from the moment it
// became leader, anchored at the later of the state's clock and its wall
// clock, it advances with the monotonic clock (clock.go), so a step of the
// wall clock changes no stamp. A follower refuses
// clocked writes with ErrNotLeader so the HTTP layer can forward them. The
// leader proposes OpTick as soon as it is elected (so that the state machine
// extends every session on the first command of the new term) and OpExpire
// whenever its clock passes the earliest session deadline.
package raftnode
