package lock

import "errors"

// Op is the kind of a Command.
type Op uint8

// The operations of the state machine. Their numeric values are part of the
// log format: never renumber them.
const (
	// OpTick carries only the leader's clock. A new leader proposes one at
	// once so that the "first command of a new term" rule runs promptly.
	// It changes nothing else and answers CodeOK.
	OpTick Op = iota + 1
	// OpOpenSession opens a session with TTL and Owner. Its ID is the index
	// of the entry that opened it and its deadline clock+TTL. Result: CodeOK
	// with Session and TTL; CodeInvalid unless 0 < TTL <= MaxTTL. With a
	// RequestID that opened a session that still lives (a client's retry
	// of the same request), it opens nothing and answers that session's ID
	// and TTL (no event).
	OpOpenSession
	// OpKeepAlive renews every session in Sessions (a batch): deadline =
	// max(deadline, clock+TTL), even past its deadline as long as no
	// OpExpire has ended it. Always CodeOK; Result.Missing lists the IDs
	// that do not exist. Renewals emit no events.
	OpKeepAlive
	// OpCloseSession closes Session, releasing its locks (granting their
	// head waiters) and withdrawing it from every queue. CodeSessionNotFound
	// if it does not exist.
	OpCloseSession
	// OpExpire ends every session whose deadline is at or before the clock
	// (in ascending ID order, like OpCloseSession but with a session_expired
	// event). Always CodeOK.
	OpExpire
	// OpAcquire acquires lock Name for Session. Free: granted with token =
	// this index (CodeOK, Token). Held by Session: CodeOK with its token
	// (a retry). Session already queued: CodeQueued, keeping its place.
	// Held by another: with Wait, queued FIFO (CodeQueued, Holder); without,
	// CodeLockHeld with Holder and no change. Session 0 with TTL > 0 opens
	// an ephemeral session bound to Name (ID = index) and acquires as it,
	// unless the lock is held and Wait is false (CodeLockHeld, no session).
	// An ephemeral session may acquire only its bound lock (else
	// CodeInvalid).
	OpAcquire
	// OpRelease releases lock Name held by Session with Token and grants it
	// to the head waiter with token = this index; an ephemeral session bound
	// to Name is closed in the same entry. Any mismatch (free lock, other
	// holder, stale token, unknown session) is CodeNotHolder with no change.
	OpRelease
	// OpCancel withdraws Session from the queue of lock Name (CodeOK; an
	// ephemeral session bound to Name is closed as well). If Session holds
	// Name (the grant won the race) it answers CodeOK with Token set and
	// changes nothing; if neither, CodeOK with Token 0.
	// CodeSessionNotFound if the session does not exist.
	OpCancel
	// OpPublish records (upserts by ID) the URLs of a cluster member
	// (Member). CodeInvalid for ID 0.
	OpPublish
	// OpCampaign enters Session into election Name with Value. No leader:
	// the session leads with term = this index (CodeOK, Token = term,
	// Leader). Session already leads: CodeOK with its term and Leader (a
	// retry); a different Value is proclaimed as by OpProclaim (as etcd's
	// Campaign does). Session already a candidate: CodeQueued with Leader,
	// keeping its place, and taking Value if Wait (a try changes nothing).
	// Another
	// session leads: with Wait, queued FIFO (CodeQueued, Leader); without,
	// CodeNotLeader with Leader and no change. An ephemeral (bound) session
	// cannot campaign (CodeInvalid, Session set, nothing changes, not even
	// the clock). CodeSessionNotFound if the session does not exist.
	OpCampaign
	// OpProclaim sets the value of election Name to Value when Session leads
	// it with term Token: CodeOK with Token and Leader (the new value). A
	// value equal to the current one changes nothing and emits no event, so
	// a retry is silent. Any mismatch (no leader, other leader, stale or zero
	// term, unknown session) is CodeNotLeader with the current Leader (nil
	// when nobody leads) and no change.
	OpProclaim
	// OpResign with Token != 0 ends the leadership of Session in election
	// Name if it leads with term Token: the head candidate leads with term =
	// this index, or the election ends (no_leader event). CodeOK. Any
	// mismatch (including a retry of a resign that happened, or an unknown
	// session) is CodeNotLeader with the current Leader and no change.
	//
	// Token == 0 withdraws the candidacy of Session (a campaign whose wait
	// ran out): a candidate leaves the queue (CodeOK); a session that leads
	// (it won the race) gets CodeOK with Token = its term and nothing
	// changes, so the caller resigns with that term; neither: CodeOK with
	// Token 0. CodeSessionNotFound if the session does not exist.
	OpResign
	// OpAuthPutUser creates or replaces user Name with Roles (sorted,
	// unique; each must exist, else CodeNotFound).
	OpAuthPutUser
	// OpAuthDeleteUser deletes user Name and its tokens (CodeNotFound if
	// none). Its sessions stay until they end.
	OpAuthDeleteUser
	// OpAuthPutRole creates or replaces role Name with Permissions (sorted
	// by prefix, one per prefix, non-empty actions).
	OpAuthPutRole
	// OpAuthDeleteRole deletes role Name and takes it from every user
	// (CodeNotFound if none).
	OpAuthDeleteRole
	// OpAuthCreateToken records a token of user Name whose secret hashes
	// to Hash; its ID is this index (Result.Token). CodeNotFound for an
	// unknown user.
	OpAuthCreateToken
	// OpAuthRevokeToken deletes token Token (CodeNotFound if none).
	OpAuthRevokeToken
	// OpAuthEnable turns auth on; CodeInvalid unless a user has admin on
	// every name.
	OpAuthEnable
	// OpAuthBootstrap, on a state without users, makes role admin (admin
	// on every name), user root with that role, a token with Hash (ID =
	// this index, Result.Token) and turns auth on. With users it changes
	// nothing (CodeOK with a Reason).
	OpAuthBootstrap
	// OpSetLimits sets the cluster's quotas to Limits (zero fields:
	// defaults). Admin only once auth is on.
	OpSetLimits
	// OpInitLimits sets the quotas like OpSetLimits, but only while the
	// cluster never set them (the flags of a new cluster, proposed by its
	// members); afterwards it changes nothing (CodeOK with a Reason).
	OpInitLimits
	// OpAlarm raises (Wait true) or clears (Wait false) Alarm for its
	// member. It carries no clock: the member whose disk fills proposes
	// it, leader or not. Always CodeOK; CodeInvalid for member 0 or an
	// unknown kind.
	OpAlarm
	// OpMemberAdd records member Member (ID and PeerURL) added to the
	// cluster, as a learner when Wait. It rides in the Context of raft's
	// configuration change and is applied with it; raft applies the change
	// only when this answers CodeOK. CodeInvalid for an ID not above
	// MemberSeq or removed before (IDs are never reused). Format 4.
	OpMemberAdd
	// OpMemberPromote records that learner Member.ID becomes a voter
	// (CodeInvalid if it was removed). Format 4.
	OpMemberPromote
	// OpMemberRemove records that Member.ID leaves the cluster for good:
	// its URLs and alarms go, its ID is never used again (CodeInvalid if
	// it was removed already). Format 4.
	OpMemberRemove
	// OpClusterVersion raises the cluster's command version to
	// ClusterVersion (never lowers it): proposed once every member reads
	// that format. CodeInvalid for a version this build does not know.
	// Format 4.
	OpClusterVersion
	// OpAcquireAll takes every lock of Names (sorted, unique, 1 to
	// MaxAcquireAll) for Session in this one entry, or none: if any is held
	// by another session it answers CodeLockHeld with that lock's Holder
	// (its name in Reason) and changes nothing. Never waits. Each new
	// grant's token is this index; Result.Tokens lists every name's token
	// (a lock the session held already keeps its own: a retry is safe).
	// Format 5.
	OpAcquireAll
	// OpSemAcquire takes a permit of counting semaphore Name (a namespace
	// of its own) for Session, with Limit permits in all. The first
	// acquirer sets the limit; another Limit while the semaphore exists
	// (it has holders) is CodeLimitMismatch with Result.Limit, no change.
	// A permit is free (fewer holders than the limit and nobody queued):
	// granted with token = this index (CodeOK, Token). Session holds a
	// permit already: CodeOK with its token (a retry; one permit per
	// session). Session already queued: CodeQueued, keeping its place.
	// Full: with Wait, queued FIFO (CodeQueued, Holders), unless the wait
	// could never be granted (CodeDeadlock, see deadlock.go); without,
	// CodeLockHeld with Holders and no change. Format 6.
	OpSemAcquire
	// OpSemRelease gives back the permit of semaphore Name that Session
	// holds with Token, and grants the freed permit to the head waiter
	// with token = this index. Any mismatch is CodeNotHolder with no
	// change. Format 6.
	OpSemRelease
	// OpSemCancel withdraws Session from the queue of semaphore Name, as
	// OpCancel does for a lock (CodeOK; Token set when the session holds a
	// permit: the grant won the race). Format 6.
	OpSemCancel
)

// MaxSemaphoreLimit bounds a semaphore's number of permits.
const MaxSemaphoreLimit = 1 << 16

// Mode is how a session holds or waits for a lock.
type Mode uint8

// The modes of a lock hold. Their values are part of the log and
// snapshot formats.
const (
	// Exclusive: the holder holds the lock alone (the default).
	Exclusive Mode = iota
	// Shared: any number of shared holders hold the lock together, and
	// no exclusive holder beside them.
	Shared
)

// String returns the mode's wire name.
func (m Mode) String() string {
	switch m {
	case Exclusive:
		return "exclusive"
	case Shared:
		return "shared"
	}
	return "unknown"
}

// MaxAcquireAll bounds the names of one OpAcquireAll.
const MaxAcquireAll = 100

// Command is one entry of the replicated log, decoded. Only the fields that
// its Op uses are encoded.
type Command struct {
	Op Op
	// Now is the proposing leader's wall clock in Unix nanoseconds. The
	// machine's clock is the maximum Now seen, so it never runs backwards.
	// Zero means "no clock" (OpPublish, which a follower may propose).
	Now int64
	// Session is the session the command acts for (OpCloseSession,
	// OpAcquire, OpRelease, OpCancel, OpCampaign, OpProclaim, OpResign). For
	// OpAcquire, zero with TTL > 0 asks for an ephemeral session bound to
	// the lock.
	Session uint64
	// Sessions are the sessions renewed by OpKeepAlive.
	Sessions []uint64
	// Name is the lock name (OpAcquire, OpRelease, OpCancel) or the
	// election name (OpCampaign, OpProclaim, OpResign). Elections and locks
	// are separate namespaces: lock "x" and election "x" are unrelated.
	Name string
	// TTL is the session's time to live in nanoseconds (OpOpenSession, and
	// OpAcquire of an ephemeral session).
	TTL int64
	// Owner is a free-form label of the session's owner (OpOpenSession,
	// ephemeral OpAcquire).
	Owner string
	// RequestID is the client's ID of an OpOpenSession request (at most
	// MaxRequestIDLen bytes, "" for none): a retry with the same ID answers
	// the session the first attempt opened, for as long as it lives.
	RequestID string
	// Wait queues the session when the lock is held (OpAcquire) or the
	// election has a leader (OpCampaign); without it the command fails at
	// once with CodeLockHeld or CodeNotLeader.
	Wait bool
	// Token is the fencing token presented by OpRelease, or the leadership
	// term presented by OpProclaim and OpResign (0 for OpResign: withdraw a
	// candidacy).
	Token uint64
	// Value is the candidate's value (OpCampaign) or the leader's new value
	// (OpProclaim), at most MaxValueSize bytes (else CodeInvalid).
	Value string
	// Member is the member published by OpPublish.
	Member Member
	// Principal is the authenticated user the command acts for ("" when
	// anonymous). With auth on, Apply checks it (see Machine.denied); the
	// session an OpOpenSession or ephemeral OpAcquire opens belongs to it.
	Principal string
	// TokenID is the bearer token the principal proved itself with (0 for
	// a certificate, or anonymous). With auth on, Apply refuses the
	// command (CodeUnauthenticated) unless that token still exists and
	// belongs to Principal: a revoked token is never honoured by an entry
	// after its revocation, whichever node resolved it.
	TokenID uint64
	// Force makes OpRelease release the lock whoever holds it (Session and
	// Token are ignored; an admin's release, named in the event's By).
	Force bool
	// Roles are the roles of OpAuthPutUser (sorted, unique).
	Roles []string
	// Permissions are the permissions of OpAuthPutRole (see
	// SortedPermissions).
	Permissions []Permission
	// Hash is the SHA-256 hash of a token's secret (OpAuthCreateToken,
	// OpAuthBootstrap), TokenHashLen raw bytes.
	Hash string
	// Limits are the quotas of OpSetLimits and OpInitLimits.
	Limits Limits
	// Alarm is the alarm OpAlarm raises or clears.
	Alarm Alarm
	// ClusterVersion is the command version of OpClusterVersion.
	ClusterVersion uint8
	// Names are the locks of OpAcquireAll.
	Names []string
	// LockDelay is the lock-delay of the session OpOpenSession opens (0 to
	// MaxLockDelay nanoseconds): when the session expires holding a lock,
	// nobody is granted it until the delay has passed on the log's clock
	// (lockdelay.go). Format 5 when not 0.
	LockDelay int64
	// Mode is the mode of OpAcquire (Exclusive by default). Format 6 when
	// Shared.
	Mode Mode
	// Modes are the modes of the names of OpAcquireAll, in the order of
	// Names: nil for all exclusive, else one per name. Format 6 when not
	// nil.
	Modes []Mode
	// Limit is the number of permits of the semaphore of OpSemAcquire (1
	// to MaxSemaphoreLimit).
	Limit uint32
}

// MaxLockDelay bounds a session's lock-delay: 60 s, as Consul's.
const MaxLockDelay = int64(60e9)

// Code is the outcome of applying a command. Business refusals are codes,
// not errors: they are replicated outcomes like any other.
type Code uint8

// Result codes.
const (
	CodeOK               Code = iota // applied as asked
	CodeQueued                       // acquire, campaign: the session waits in the queue
	CodeLockHeld                     // acquire without wait: held by another session (Holder set)
	CodeNotHolder                    // release: not held by this session, or a stale token
	CodeSessionNotFound              // the session does not exist (never opened, closed or expired)
	CodeInvalid                      // the command is malformed (zero TTL, empty name, unknown op); nothing changed
	CodeNotLeader                    // proclaim, resign: the session does not lead with that term; campaign without wait: another session leads (Leader set)
	CodeUnauthenticated              // auth is on and the command has no principal that is a user; nothing changed
	CodePermissionDenied             // the principal may not do this (Reason says what); nothing changed
	CodeNotFound                     // auth administration: no such user, role or token; nothing changed
	CodeQuotaExceeded                // a quota (Limits) would be exceeded (Reason names it); nothing changed
	CodeNoSpace                      // the state's estimated size would pass Limits.MaxStateBytes; nothing changed
	CodeDeadlock                     // acquire with wait: the wait could never be granted (Reason names the cycle); nothing changed
	CodeModeMismatch                 // acquire: the session holds or waits for the lock in the other mode (no upgrades or downgrades); nothing changed
	CodeLimitMismatch                // semaphore acquire: the semaphore exists with another limit (Result.Limit); nothing changed
)

// String returns the code's stable name (used in logs and tests).
func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeQueued:
		return "queued"
	case CodeLockHeld:
		return "lock_held"
	case CodeNotHolder:
		return "not_holder"
	case CodeSessionNotFound:
		return "session_not_found"
	case CodeInvalid:
		return "invalid"
	case CodeNotLeader:
		return "not_leader"
	case CodeUnauthenticated:
		return "unauthenticated"
	case CodePermissionDenied:
		return "permission_denied"
	case CodeNotFound:
		return "not_found"
	case CodeQuotaExceeded:
		return "quota_exceeded"
	case CodeNoSpace:
		return "no_space"
	case CodeDeadlock:
		return "deadlock"
	case CodeModeMismatch:
		return "mode_mismatch"
	case CodeLimitMismatch:
		return "limit_mismatch"
	}
	return "unknown"
}

// Result is what applying one command produced.
type Result struct {
	Code Code
	// Session is the session concerned: the new ID for OpOpenSession and an
	// ephemeral OpAcquire; the acting session otherwise.
	Session uint64
	// TTL is the session's TTL in nanoseconds (OpOpenSession, ephemeral
	// OpAcquire).
	TTL int64
	// Token is the fencing token of the lock the session holds after the
	// command: OpAcquire granted (now or by an earlier entry: a retry), and
	// OpCancel that lost the race to a grant (the session holds the lock).
	// For elections it is the leadership term: OpCampaign that leads (now
	// or by an earlier entry), OpProclaim that succeeded, and OpResign with
	// Token 0 that lost the race to an election. Zero otherwise.
	Token uint64
	// Holder is the current exclusive holder when Code is CodeLockHeld or
	// CodeQueued (of OpAcquire); nil when the lock is held shared.
	Holder *Holder
	// Holders are every holder of the lock (OpAcquire: CodeLockHeld,
	// CodeQueued, CodeModeMismatch) or semaphore (OpSemAcquire:
	// CodeLockHeld, CodeQueued), in grant order; for a forced OpRelease,
	// the holders it released.
	Holders []Holder
	// Limit is the semaphore's limit (OpSemAcquire).
	Limit uint32
	// Leader is the election's current leader after the command: for
	// CodeNotLeader (nil when nobody leads), CodeQueued of OpCampaign, and
	// CodeOK of OpCampaign and OpProclaim. Nil otherwise.
	Leader *Leader
	// Missing lists the sessions of an OpKeepAlive batch that do not exist
	// (sorted ascending). The others were renewed.
	Missing []uint64
	// Tokens are the tokens of the names of an OpAcquireAll that succeeded,
	// in the order of Command.Names.
	Tokens []uint64
	// Mode is the mode of the hold Token names when OpCancel answers one
	// (the grant won the race: a shared hold is Shared).
	Mode Mode
	// Events are the changes this command made, in order.
	Events []Event
	// Reason explains a refusal (CodeUnauthenticated,
	// CodePermissionDenied, CodeNotFound, and CodeInvalid of auth
	// commands) for humans; empty otherwise.
	Reason string
}

// EventType names a change of state.
type EventType uint8

// Event types. Their values are part of the snapshot format.
const (
	EventSessionOpened EventType = iota + 1
	EventSessionClosed
	EventSessionExpired
	EventLockGranted
	EventLockReleased
	EventLockQueued
	EventLockCancelled
	// EventElected: Session became the leader of election Name with term
	// Token (the entry's index) and Value.
	EventElected
	// EventProclaimed: the leader Session of Name (term Token) set Value.
	EventProclaimed
	// EventResigned: the leader Session of Name (term Token) left by
	// OpResign or by closing its session.
	EventResigned
	// EventLeaderExpired: the leader Session of Name (term Token) left
	// because its session expired.
	EventLeaderExpired
	// EventNoLeader: the leader of Name left and no candidate remains (the
	// election no longer exists). Session is 0.
	EventNoLeader
	// EventCandidateJoined: Session queued in election Name with Value,
	// behind a leader.
	EventCandidateJoined
	// EventCandidateLeft: Session left the queue of Name without leading
	// (withdrawn by OpResign with Token 0, closed or expired).
	EventCandidateLeft
	// EventPermitGranted: Session got a permit of semaphore Name with
	// token Token.
	EventPermitGranted
	// EventPermitReleased: Session gave back (released, closed, expired)
	// its permit of semaphore Name with token Token.
	EventPermitReleased
	// EventPermitQueued: Session queued for semaphore Name.
	EventPermitQueued
	// EventPermitCancelled: Session left the queue of semaphore Name
	// without a permit.
	EventPermitCancelled
)

// String returns the event type's stable wire name.
func (t EventType) String() string {
	switch t {
	case EventSessionOpened:
		return "session_opened"
	case EventSessionClosed:
		return "session_closed"
	case EventSessionExpired:
		return "session_expired"
	case EventLockGranted:
		return "lock_granted"
	case EventLockReleased:
		return "lock_released"
	case EventLockQueued:
		return "lock_queued"
	case EventLockCancelled:
		return "lock_cancelled"
	case EventElected:
		return "elected"
	case EventProclaimed:
		return "proclaimed"
	case EventResigned:
		return "resigned"
	case EventLeaderExpired:
		return "leader_expired"
	case EventNoLeader:
		return "no_leader"
	case EventCandidateJoined:
		return "candidate_joined"
	case EventCandidateLeft:
		return "candidate_left"
	case EventPermitGranted:
		return "permit_granted"
	case EventPermitReleased:
		return "permit_released"
	case EventPermitQueued:
		return "permit_queued"
	case EventPermitCancelled:
		return "permit_cancelled"
	}
	return "unknown"
}

// Event is one change of state. Revision is the index of the entry that made
// it and Seq its position among that entry's events (0, 1, ...), so that
// (Revision, Seq) orders all events of the cluster's history without gaps.
type Event struct {
	Revision uint64
	Seq      uint32
	Type     EventType
	Session  uint64
	Name     string // lock or election name; empty for session events
	Token    uint64 // lock_granted: the new token; lock_released: the released token; election events: the leader's term
	Time     int64  // the machine's clock when it happened (Unix ns)
	Value    string // elected, proclaimed: the leader's value; candidate_joined: the candidate's value
	// Owner is the owner label of Session when the session still exists at
	// the event (empty for the final events of a closed or expired one).
	Owner string
	// By is the admin who forced the change (a force-release, a session
	// closed by an admin); empty otherwise.
	By string
	// Since, for lock_granted, is when the session started to wait for the
	// lock (Time for a grant without a wait), and for lock_released, when
	// the lock was granted: the wait and hold times, for metrics. Not part
	// of the API's events.
	Since int64
	// Mode is the mode of a lock event's hold or wait (lock_granted,
	// lock_released, lock_queued, lock_cancelled).
	Mode Mode
}

// Holder describes a session holding a lock, or a permit of a semaphore.
type Holder struct {
	Session uint64
	Owner   string
	Token   uint64
	Since   int64 // clock at grant, Unix ns
	Mode    Mode  // locks: the hold's mode; semaphores: Exclusive
}

// Waiter describes a session queued for a lock or a semaphore.
type Waiter struct {
	Session uint64
	Owner   string
	Since   int64 // clock at enqueue, Unix ns
	Mode    Mode  // locks: the mode asked for; semaphores: Exclusive
}

// Leader describes the session leading an election.
type Leader struct {
	Session uint64
	Owner   string
	Value   string
	Term    uint64 // index of the entry that elected it: the leadership's fencing token
	Since   int64  // clock at election, Unix ns
}

// Candidate describes a session queued in an election behind its leader.
type Candidate struct {
	Session uint64
	Owner   string
	Value   string // the value it will lead with
	Since   int64  // clock at enqueue, Unix ns
}

// ElectionInfo is a copy of one election's state. An election without a
// leader does not exist (its candidates are promoted as soon as the leader
// leaves), so Leader is never nil in a returned ElectionInfo.
type ElectionInfo struct {
	Name       string
	Leader     *Leader
	Candidates []Candidate // queue order, leader excluded
}

// LockInfo is a copy of one lock's state. A lock that is free and has no
// waiters does not exist.
type LockInfo struct {
	Name string
	// Holder is the exclusive holder: nil when free, held shared, or in
	// its lock-delay.
	Holder *Holder
	// Holders are every holder: the exclusive one, or the shared ones in
	// grant order.
	Holders []Holder
	Waiters []Waiter
	// DelayedUntil, when not 0, is the end of the lock's lock-delay (Unix
	// ns on the machine's clock): nobody holds it until then.
	DelayedUntil int64
}

// SemaphoreInfo is a copy of one semaphore's state. A semaphore without
// holders does not exist (nobody waits while a permit is free).
type SemaphoreInfo struct {
	Name    string
	Limit   uint32
	Holders []Holder // grant order
	Waiters []Waiter // queue order
}

// SessionInfo is a copy of one session's state.
type SessionInfo struct {
	ID       uint64
	Owner    string
	TTL      int64    // ns
	Deadline int64    // Unix ns on the machine's clock
	Locks    []string // held, sorted
	Waiting  []string // queued for, sorted
	Bound    string   // for an ephemeral session: the lock it is bound to
	// Campaigns are the elections it leads or is a candidate in, sorted.
	Campaigns []string
	// Principal is the user that opened it ("" when anonymous).
	Principal string
	// Permits are the semaphores it holds a permit of, and SemWaiting
	// those it is queued for, sorted.
	Permits    []string
	SemWaiting []string
}

// Member is a cluster member's published address.
type Member struct {
	ID        uint64
	PeerURL   string
	ClientURL string
}

// Errors of decoding and restoring. Apply never returns errors.
var (
	// ErrUnknownVersion is returned for a command or snapshot whose format
	// version this build does not know.
	ErrUnknownVersion = errors.New("lock: unknown format version")
	// ErrCorrupt is returned for bytes that cannot be decoded.
	ErrCorrupt = errors.New("lock: corrupt encoding")
)
