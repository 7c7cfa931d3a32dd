package lock

// Kind is the kind of primitive a queue belongs to. Locks and elections
// are separate namespaces: lock "x" and election "x" are two queues.
type Kind uint8

// The kinds of queues.
const (
	KindLock Kind = iota + 1
	KindElection
	KindSemaphore
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindLock:
		return "lock"
	case KindElection:
		return "election"
	case KindSemaphore:
		return "semaphore"
	}
	return "unknown"
}

// Place names a session's stake in one queue: its hold or its waiting place
// in lock Name (KindLock), or its leadership or candidacy in election Name
// (KindElection). A Place with Kind 0 and no Name stands for every place of
// Session (the session's end changes them all).
//
// Waiters use places to be woken for their own request only: an Event
// tells which place it changed (Event.Place), and after a wake the waiter
// reads the state again to learn what happened.
type Place struct {
	Kind    Kind
	Name    string
	Session uint64
}

// Place returns the place ev changed, and false for an event that changes
// no session's place (no_leader). Session events (opened, closed, expired)
// return the session-wide Place{Session: id}.
func (ev Event) Place() (Place, bool) {
	switch ev.Type {
	case EventSessionOpened, EventSessionClosed, EventSessionExpired:
		return Place{Session: ev.Session}, true
	case EventLockGranted, EventLockReleased, EventLockQueued, EventLockCancelled:
		return Place{Kind: KindLock, Name: ev.Name, Session: ev.Session}, true
	case EventElected, EventProclaimed, EventResigned, EventLeaderExpired, EventCandidateJoined, EventCandidateLeft:
		return Place{Kind: KindElection, Name: ev.Name, Session: ev.Session}, true
	case EventPermitGranted, EventPermitReleased, EventPermitQueued, EventPermitCancelled:
		return Place{Kind: KindSemaphore, Name: ev.Name, Session: ev.Session}, true
	}
	return Place{}, false
}
