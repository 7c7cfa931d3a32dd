package linearize

import "fmt"

// Kind is the kind of an operation.
type Kind int

// The operation kinds. Lock operations (Acquire, TryAcquire, Release,
// GetLock), election operations (Campaign, Proclaim, Resign, GetLeader) and
// semaphore operations (SemAcquire, SemTryAcquire, SemRelease,
// GetSemaphore) need a Name; the three are separate namespaces (lock "x",
// election "x" and semaphore "x" are unrelated). Session operations
// (KeepAlive, CloseSession) have Name "". Every kind but GetLock,
// GetLeader and GetSemaphore needs a Session.
const (
	// Acquire waits in the lock's queue until granted, in the mode of
	// Input.Shared: Granted with Output.Token; Locked when the wait ran out
	// (Output.Session/Token = a holder if known); SessionExpired; Cancelled;
	// Unknown.
	Acquire Kind = iota + 1
	// TryAcquire grants now, in the mode of Input.Shared, or answers Locked
	// (Output.Session = a holder if known, 0 = unknown; Output.Token = its
	// token if known).
	TryAcquire
	// Release releases the session's hold with token Input.Token (either
	// mode; the other holders keep theirs): OK, NotHolder, SessionExpired or
	// Unknown.
	Release
	// GetLock reads a lock: OK or Unknown. Output.Session/Token are the
	// exclusive holder (0, 0 = no exclusive holder: the lock is free or held
	// shared). Output.Holders, when not nil, is every holder (empty, but not
	// nil, = free): see Output.
	GetLock
	// KeepAlive renews a session (Name ""): OK or SessionExpired (or Unknown).
	KeepAlive
	// CloseSession ends a session (Name ""), releasing its locks and
	// permits and ending its leaderships and candidacies: OK or
	// SessionExpired (or Unknown).
	CloseSession
	// Campaign with Input.Value blocks until leading: OK with Output.Token =
	// the term; NotLeader (try once, or the wait ran out) with
	// Output.Session/Value/Token = the current leader if known (Session 0 =
	// unknown); SessionExpired; Cancelled; Unknown.
	Campaign
	// Proclaim sets the value (Input.Value) of the leadership with term
	// Input.Token: OK, NotLeader (Output as for Campaign), SessionExpired or
	// Unknown.
	Proclaim
	// Resign ends the leadership with term Input.Token: OK, NotLeader (Output
	// as for Campaign), SessionExpired or Unknown.
	Resign
	// GetLeader reads an election: OK with Output.Session/Value/Token = the
	// leader's session, value and term (0, "", 0 = nobody leads), or
	// Unknown.
	GetLeader
	// SemAcquire waits for a permit of the semaphore (Input.Limit permits)
	// until granted: Granted with Output.Token; Locked when the wait ran out
	// (every permit held; Output.Session/Token = a holder if known);
	// SessionExpired; Cancelled; Unknown.
	SemAcquire
	// SemTryAcquire takes a permit (Input.Limit permits) now or answers
	// Locked (every permit held; Output.Session/Token = a holder if known):
	// Granted, Locked, SessionExpired or Unknown.
	SemTryAcquire
	// SemRelease gives back the session's permit with token Input.Token:
	// OK, NotHolder, SessionExpired or Unknown.
	SemRelease
	// GetSemaphore reads a semaphore: OK with Output.Holders = every permit
	// holder and its token (nil or empty = none) and Output.Limit = the
	// limit (0 = not known), or Unknown.
	GetSemaphore
)

var kindNames = [...]string{
	Acquire: "Acquire", TryAcquire: "TryAcquire", Release: "Release", GetLock: "GetLock",
	KeepAlive: "KeepAlive", CloseSession: "CloseSession", Campaign: "Campaign",
	Proclaim: "Proclaim", Resign: "Resign", GetLeader: "GetLeader",
	SemAcquire: "SemAcquire", SemTryAcquire: "SemTryAcquire", SemRelease: "SemRelease",
	GetSemaphore: "GetSemaphore",
}

// String returns the kind's Go name, e.g. "Acquire".
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// OutKind is the kind of an answer.
type OutKind int

// The answer kinds; each Kind's documentation lists those it may answer.
const (
	// OK: the operation took effect (or, for reads, the Output fields are
	// the state read).
	OK OutKind = iota + 1
	// Granted: Output.Token is the fencing token of the lock hold or the
	// semaphore permit.
	Granted
	// Locked: TryAcquire (or an Acquire whose wait ran out) could not be
	// granted, the lock being held by others; SemTryAcquire (or a
	// SemAcquire whose wait ran out) found every permit held by others.
	// Output.Session is one of the holders (0 = unknown) and Output.Token
	// its token (0 = unknown); Output.Holders, if not nil, every holder.
	Locked
	// NotHolder: a Release or SemRelease that does not match a hold of the
	// session with that token; nothing changed.
	NotHolder
	// NotLeader: a Campaign that did not get to lead, or a Proclaim or
	// Resign by a session that does not lead with that term; nothing
	// changed. Output.Session/Value/Token: the current leader, if known.
	NotLeader
	// SessionExpired: the session does not exist (any more) at that point.
	SessionExpired
	// Cancelled: a waiting Acquire, SemAcquire or Campaign gave up and holds
	// nothing: never granted, or granted and released again within its
	// interval.
	Cancelled
	// Unknown: a timeout or lost answer; the operation may or may not have
	// taken effect, at any time after the call.
	Unknown
)

var outKindNames = [...]string{
	OK: "OK", Granted: "Granted", Locked: "Locked", NotHolder: "NotHolder",
	NotLeader: "NotLeader", SessionExpired: "SessionExpired", Cancelled: "Cancelled",
	Unknown: "Unknown",
}

// String returns the answer kind's Go name, e.g. "Granted".
func (k OutKind) String() string {
	if k > 0 && int(k) < len(outKindNames) {
		return outKindNames[k]
	}
	return fmt.Sprintf("OutKind(%d)", int(k))
}

// Input is an operation as called. Which fields matter depends on Kind.
type Input struct {
	Kind    Kind
	Name    string // lock, election or semaphore name; "" for session operations
	Session uint64
	Token   uint64 // Release, SemRelease: the token; Proclaim, Resign: the term
	Value   string // Campaign, Proclaim: the value
	// Shared (Acquire, TryAcquire only): a shared hold; false: exclusive.
	// A session that holds a lock in one mode and asks for the other is
	// refused by the server (mode_mismatch); harnesses must not record
	// such an operation (the models treat every answer to it as
	// impossible while the session holds in the other mode).
	Shared bool
	// Limit (SemAcquire, SemTryAcquire only, and required there): the
	// semaphore's number of permits, at least 1. Every operation on one
	// semaphore name must give the same limit (the server refuses another
	// with limit_mismatch: harnesses must not record that); Check refuses
	// a history that does not as malformed.
	Limit int
}

// Output is an answer. Which fields matter depends on Kind.
type Output struct {
	Kind    OutKind
	Token   uint64
	Session uint64
	Value   string
	// Holders (GetLock and GetSemaphore answered OK, Locked answers;
	// ignored on other answers) are the holders read, in any order (Check
	// sorts a copy by session); a session twice, a Session 0 or a Token 0
	// is a malformed history.
	//
	// GetSemaphore: every permit holder (Shared is ignored); nil or empty
	// means none.
	//
	// Locked (Acquire, TryAcquire, SemAcquire, SemTryAcquire): nil, or
	// every holder at that point (with its mode for a lock), as the
	// server's answer lists them. Recording them checks more and keeps the
	// search small (see the package documentation); Output.Session/Token,
	// if set, must be one of them.
	//
	// GetLock: nil means the harness did not record the holders, and only
	// Output.Session/Token are checked: the exclusive holder, or 0 for
	// none (the lock is free or held shared only; in a history without
	// shared acquires that is: free), as before shared locks existed. Not
	// nil means every holder (one exclusive hold, or any number of shared
	// ones); empty but not nil ([]Hold{}) means free, so a harness that
	// wants the full check must not leave a free lock's Holders nil. With
	// Holders set, Output.Session/Token must still be the exclusive holder
	// if they are set (Session 0 with Token 0 is always accepted: a
	// shared-held lock answers Session 0).
	Holders []Hold
	// Limit (GetSemaphore only): the semaphore's limit; 0 = not known (the
	// server forgets a semaphore nobody holds). Otherwise it must be the
	// Input.Limit of the name's acquires.
	Limit int
}

// Hold is one holder read by GetLock or GetSemaphore.
type Hold struct {
	Session uint64
	Token   uint64
	Shared  bool // GetLock: a shared hold; ignored for semaphores
}

// allowed lists the answers each kind may give.
var allowed = map[Kind][]OutKind{
	Acquire:       {Granted, Locked, SessionExpired, Cancelled, Unknown},
	TryAcquire:    {Granted, Locked, SessionExpired, Cancelled, Unknown},
	Release:       {OK, NotHolder, SessionExpired, Unknown},
	GetLock:       {OK, Unknown},
	KeepAlive:     {OK, SessionExpired, Unknown},
	CloseSession:  {OK, SessionExpired, Unknown},
	Campaign:      {OK, NotLeader, SessionExpired, Cancelled, Unknown},
	Proclaim:      {OK, NotLeader, SessionExpired, Unknown},
	Resign:        {OK, NotLeader, SessionExpired, Unknown},
	GetLeader:     {OK, Unknown},
	SemAcquire:    {Granted, Locked, SessionExpired, Cancelled, Unknown},
	SemTryAcquire: {Granted, Locked, SessionExpired, Unknown},
	SemRelease:    {OK, NotHolder, SessionExpired, Unknown},
	GetSemaphore:  {OK, Unknown},
}

// namespace is the namespace of a partition: its names are unrelated to
// the same names in the others.
type namespace uint8

const (
	nsLock namespace = iota
	nsElection
	nsSemaphore
)

var nsNames = [...]string{nsLock: "lock", nsElection: "election", nsSemaphore: "semaphore"}

// nsOf is the namespace of an operation of kind k (not a session
// operation).
func nsOf(k Kind) namespace {
	switch {
	case k >= Campaign && k <= GetLeader:
		return nsElection
	case k >= SemAcquire && k <= GetSemaphore:
		return nsSemaphore
	}
	return nsLock
}

func isSessionKind(k Kind) bool { return k == KeepAlive || k == CloseSession }

// isGrant reports whether k may grant a hold, a permit or a leadership.
func isGrant(k Kind) bool {
	return k == Acquire || k == TryAcquire || k == SemAcquire || k == SemTryAcquire || k == Campaign
}
