// Package lock is raftlock's replicated state machine: sessions (leases),
// named locks (exclusive or shared) with FIFO wait queues and fencing
// tokens, counting semaphores, leader elections, and the published cluster
// members.
//
// # Contract
//
// Machine.Apply is a pure, deterministic function of the machine's state, the
// entry's index and term, and the decoded Command. It does not read the wall
// clock, use randomness, start goroutines, do I/O or log, and nothing it
// produces (results, events, snapshots) depends on map iteration order. Two
// machines that apply the same log produce byte-identical snapshots.
//
// Apply never returns an error: business refusals are Result codes (for
// example CodeLockHeld or CodeNotHolder), which are replicated outcomes like
// any other. A malformed command answers CodeInvalid and changes nothing but
// the applied index. Apply panics only when the caller breaks its ordering
// contract (an index not after AppliedIndex) or an internal invariant breaks.
//
// # Time
//
// Time enters through the log: each command carries the proposing leader's
// clock in Command.Now and the machine's clock is the maximum seen, so it never
// runs backwards. When the first command of a new term is applied, every
// session's deadline becomes at least clock+TTL, so a leader change never costs
// a session its lease. Only an OpExpire entry ends sessions whose deadline has
// passed; the leader proposes it when its clock passes NextDeadline.
//
// # Locks and fencing tokens
//
// A lock is granted to a session; its fencing token is the index of the entry
// that granted it, so tokens strictly increase over the cluster's history and
// are unique across lock names. A release, close or expiry grants the head of
// the lock's FIFO queue in the same entry, with that entry's index as token.
// Retries are safe: an acquire by the holder returns its token, an acquire by
// a waiter keeps its place, and a release that does not match the holder and
// token answers CodeNotHolder and changes nothing.
//
// # Shared holds and semaphores
//
// A lock is held by one exclusive holder or by any number of shared ones
// (OpAcquire with Mode Shared), never both. The queue is FIFO in both
// directions: the consecutive shared waiters at its head are granted
// together, an exclusive waiter only when nobody holds, and a request
// behind a queued one waits even when it is compatible with the holders
// (no starvation either way). Every grant's token is its entry's index,
// so an exclusive grant's token is larger than every earlier grant's on
// that name; shared holders granted in one entry share a token. A session
// that holds or waits in one mode and asks for the other gets
// CodeModeMismatch (no upgrades or downgrades).
//
// A counting semaphore (OpSemAcquire, a namespace of its own) has a limit
// set by its first acquirer (another limit is CodeLimitMismatch while it
// exists), one permit per session, and a FIFO queue: a release, close or
// expiry grants the next waiters in the same entry, each with that
// entry's index as token.
//
// # Waits that can never be granted
//
// From cluster version 5 a wait that could never be granted is refused
// with CodeDeadlock and a Reason naming the cycle (deadlock.go): with
// exclusive locks, a wait that closes a cycle of waits; with shared holds
// and permits, a wait in a knot (no release by a session that can still
// act would grant it). The rule is part of Apply, so every member decides
// alike.
//
// # Elections
//
// An election is a FIFO queue of sessions with a value each, in a namespace
// of its own (election "x" and lock "x" are unrelated). OpCampaign joins:
// with nobody leading, the session leads at once; otherwise it waits in the
// queue (or fails with CodeNotLeader without Wait). The head leads; its term
// is the index of the entry that elected it, so terms strictly increase per
// election (and across elections) over the cluster's history and serve as
// the leadership's fencing token. OpProclaim changes the leader's value;
// OpResign leaves, and the head candidate leads in the same entry with that
// entry's index as term. An election nobody leads does not exist: when the
// leader leaves with nobody queued, the election ends (no_leader event).
//
// Retries are safe as for locks: a campaign by the leader returns its term
// (and proclaims its value if it differs, as etcd's Campaign does), a
// campaign by a candidate keeps its place (and, if it waits, takes its
// value), and a
// proclaim or resign with a stale term answers
// CodeNotLeader and changes nothing. OpResign with term 0 withdraws a
// candidacy (a campaign whose wait ran out); if the session won the race it
// answers its term, so that the caller resigns. Closing or expiring a
// session withdraws its candidacies and ends its leaderships in the same
// entry; sessions expiring together first leave every queue, so nothing is
// handed to a session that dies in the same entry. Ephemeral sessions
// cannot campaign.
//
// # Access control and quotas
//
// Users, roles (permissions on name prefixes: read, lock, elect, admin) and
// the SHA-256 hashes of bearer tokens are state like any other, changed by
// the OpAuth* commands (auth.go); Auth returns an immutable view of them
// that the HTTP layer reads on any goroutine. Every command carries the
// Principal it acts for and the TokenID that proved it; with auth on, Apply
// decides on them before anything changes (a refusal changes nothing but
// the applied index, like a malformed command): the principal must be a
// user, its token must still exist, a session belongs to the principal that
// opened it (only an admin may close another's session or force-release
// its lock, and the events name that admin in By), locks need lock on their
// name, elections elect, and the administration admin on every name. With
// auth off nothing is checked, but sessions still record their principal.
//
// Quotas (quota.go) are replicated settings too (OpSetLimits, and
// OpInitLimits for a new cluster's flags): sessions per principal, locks
// held or queued per session, waiters per lock or election, elections per
// session, and an estimate of the state's size. A command that would grow
// the state past one answers CodeQuotaExceeded or CodeNoSpace and changes
// nothing; a retry (a holder's acquire, a queued session's) never counts as
// growth.
//
// # Encoding
//
// Encode/Decode give the log format of a Command and Snapshot/Restore the
// snapshot format. Both start with a format version byte; an unknown version
// is ErrUnknownVersion and undecodable bytes are ErrCorrupt (wrapped, test
// with errors.Is). Decoding never panics.
//
// Snapshot is CaptureSnapshot followed by SnapshotCapture.Encode. The
// capture takes O(1) copy-on-write clones of the trees that hold the locks
// and the elections (the machine copies a tree node it shares with a
// capture before it changes it, and never changes a queue in place) and
// copies the sessions and members, so the owner of the machine can hand it
// to another goroutine, which encodes it to the same bytes while the
// machine goes on applying. Snapshots are format version 2 (sessions carry
// the client request ID that opened them), or 3 when the state has access
// control, quotas or sessions with a principal (then every session carries
// its principal, and the quotas, users, roles and token hashes follow the
// members), and later versions only when the state has what they add
// (snapshot.go); Restore reads versions 1 to 6. Commands are written in the
// oldest version that holds them: 3 only for a principal, a token, a forced
// release or an administration op, so a cluster that never uses auth keeps
// writing what older builds read; 4 to 6 for the commands that need them
// (membership.go), proposed only once the cluster version allows.
//
// # Queries
//
// The read methods return deep copies and cost what they return: locks
// and elections are kept in name order, so a listing by prefix (ListLocks,
// ListElections: a page after a cursor) is O(log n + k) for k results.
//
// # Concurrency
//
// A Machine is not safe for concurrent use: raftnode's single loop goroutine
// owns it. Every read method returns deep copies that the caller may keep and
// hand to other goroutines.
package lock
