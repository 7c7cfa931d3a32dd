package linearize

import "fmt"

// Kind is the kind of an operation.
type Kind int

// The operation kinds. Lock operations (Acquire, TryAcquire, Release,
// GetLock) and election operations (Campaign, Proclaim, Resign, GetLeader)
// need a Name; session operations (KeepAlive, CloseSession) have Name "".
// Every kind but GetLock and GetLeader needs a Session.
const (
	// Acquire waits in the lock's queue until granted: Granted with
	// Output.Token; Locked when the wait ran out (Output.Session = the holder
	// if known); SessionExpired; Cancelled; Unknown.
	Acquire Kind = iota + 1
	// TryAcquire grants now or answers Locked (Output.Session = the holder if
	// known, 0 = unknown; Output.Token = its token if known).
	TryAcquire
	// Release releases Input.Token: OK, NotHolder, SessionExpired or Unknown.
	Release
	// GetLock reads a lock: OK with Output.Session/Token = the holder (0, 0 =
	// free), or Unknown.
	GetLock
	// KeepAlive renews a session (Name ""): OK or SessionExpired (or Unknown).
	KeepAlive
	// CloseSession ends a session (Name ""), releasing its locks and ending
	// its leaderships and candidacies: OK or SessionExpired (or Unknown).
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
)

var kindNames = [...]string{
	Acquire: "Acquire", TryAcquire: "TryAcquire", Release: "Release", GetLock: "GetLock",
	KeepAlive: "KeepAlive", CloseSession: "CloseSession", Campaign: "Campaign",
	Proclaim: "Proclaim", Resign: "Resign", GetLeader: "GetLeader",
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
	// Granted: Output.Token is the fencing token of the lock.
	Granted
	// Locked: TryAcquire (or an Acquire whose wait ran out) found the lock
	// held by another session: Output.Session is the holder (0 = unknown)
	// and Output.Token its token (0 = unknown).
	Locked
	// NotHolder: a Release that does not match the holder and token; nothing
	// changed.
	NotHolder
	// NotLeader: a Campaign that did not get to lead, or a Proclaim or
	// Resign by a session that does not lead with that term; nothing
	// changed. Output.Session/Value/Token: the current leader, if known.
	NotLeader
	// SessionExpired: the session does not exist (any more) at that point.
	SessionExpired
	// Cancelled: a waiting Acquire or Campaign gave up and holds nothing:
	// never granted, or granted and released again within its interval.
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
	Name    string // lock or election name; "" for session operations
	Session uint64
	Token   uint64 // Release: the token; Proclaim, Resign: the term
	Value   string // Campaign, Proclaim: the value
}

// Output is an answer. Which fields matter depends on Kind.
type Output struct {
	Kind    OutKind
	Token   uint64
	Session uint64
	Value   string
}

// allowed lists the answers each kind may give.
var allowed = map[Kind][]OutKind{
	Acquire:      {Granted, Locked, SessionExpired, Cancelled, Unknown},
	TryAcquire:   {Granted, Locked, SessionExpired, Cancelled, Unknown},
	Release:      {OK, NotHolder, SessionExpired, Unknown},
	GetLock:      {OK, Unknown},
	KeepAlive:    {OK, SessionExpired, Unknown},
	CloseSession: {OK, SessionExpired, Unknown},
	Campaign:     {OK, NotLeader, SessionExpired, Cancelled, Unknown},
	Proclaim:     {OK, NotLeader, SessionExpired, Unknown},
	Resign:       {OK, NotLeader, SessionExpired, Unknown},
	GetLeader:    {OK, Unknown},
}

func isLockKind(k Kind) bool     { return k == Acquire || k == TryAcquire || k == Release || k == GetLock }
func isElectionKind(k Kind) bool { return k >= Campaign && k <= GetLeader }
func isSessionKind(k Kind) bool  { return k == KeepAlive || k == CloseSession }
