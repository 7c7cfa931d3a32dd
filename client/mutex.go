package client

import (
	"context"
	"time"
)

// cleanupTimeout bounds how long a Lock, TryLock or Campaign that gave up
// waits for its clean-up (leaving the queue, releasing a grant that won
// the race) before it returns; the clean-up goes on in the background after
// that (see Session.settle).
const cleanupTimeout = 5 * time.Second

// Mutex is a distributed lock named Name, acquired on behalf of a Session.
// It is safe for concurrent use: its methods are serialised, so a Lock
// that waits delays an Unlock or another Lock of the same Mutex.
//
// The lock belongs to the session, not to a goroutine: every goroutine
// sharing a Mutex shares its hold, and Lock on a Mutex that holds the lock
// returns nil at once. To make goroutines of one process exclude each
// other, give each its own session. Use one Mutex per session and name:
// two Mutexes of the same session and name would share one grant.
//
// Each successful Lock or TryLock starts a hold with a fencing token
// (Token) and a lost channel (Lost). A Mutex is an RWMutex that only
// locks exclusively: it excludes the shared holders of RWMutexes of the
// same name, and they exclude it.
type Mutex struct {
	a acquirer
}

// NewMutex returns a Mutex for lock name in session s. It does not contact
// the server; an invalid name makes Lock and TryLock fail with an error
// matching api.ErrInvalidArgument.
func (s *Session) NewMutex(name string) *Mutex {
	return &Mutex{a: newAcquirer(s, name, "mutex")}
}

// Name returns the lock's name.
func (m *Mutex) Name() string { return m.a.name }

// Token returns the fencing token of the current hold: the index of the
// log entry that granted the lock, larger than every earlier grant of this
// name. It returns 0 when the Mutex is not held or the hold was lost.
func (m *Mutex) Token() uint64 { return m.a.token() }

// Lost returns a channel of the current hold, closed when the hold ends
// for any reason other than Unlock: the session ended (lost or closed), or
// the keep-alive goroutine found that the server no longer grants the lock
// to this session with this token (e.g. an operator closed the session,
// or someone released the lock with its token). A loss is noticed within
// about one and a half keep-alive intervals (TTL/3, and a random delay of
// up to half of one that spreads a Client's checks) while the session
// holds at most 512 locks; a session holding more is checked a part at a
// time, one part of about 512 locks per interval, so a loss may take as
// many intervals as there are parts (16 for 5,000 locks). Until then the
// lock's fencing token is what protects the resource.
//
// Each hold has its own channel: Unlock does not close it (a goroutine
// still waiting on it keeps waiting), and the next Lock starts a new one.
// When the Mutex holds nothing, Lost returns an already closed channel:
// there is nothing to act on.
func (m *Mutex) Lost() <-chan struct{} { return m.a.lost() }

// Lock acquires the lock, waiting in its FIFO queue until it is granted or
// ctx ends. It returns nil at once if the Mutex already holds the lock.
//
// It first tries the lock without waiting (a request that may share a
// POST /v1/batch with other goroutines' requests, see Config.UnbatchedLocks)
// with keep_queued: if the lock is held, that try joins the queue, and
// Lock waits (the server answers a wait in a place the session holds
// already without a log entry; a server before this SDK refuses
// keep_queued without a wait). Each waiting request
// waits on the server for the time left in ctx, at most Config.WaitChunk
// (5 minutes by default, the server's limit), with keep_queued: when a
// chunk runs out, the session keeps its place, and the next chunk goes on
// waiting in it, so a long wait never loses its FIFO place. Connection
// errors and 503 answers are retried (an acquire by a session is
// idempotent: it keeps its queue place and never makes a second grant) for
// as long as ctx and the session last.
//
// If ctx ends first, Lock returns an error matching ctx.Err(), after it
// has left the queue: it cancels the session's place
// (POST /v1/locks/{name}/cancel), retrying until the server answers, and
// releases a grant that won the race. If the cluster does not answer within
// 5 seconds, Lock returns and the clean-up goes on in the background until
// it is answered or the session ends; meanwhile the Mutex's next Lock,
// TryLock or Unlock waits for it. No session keeps a place or a hold that
// nobody uses. If the session ends first, the error matches Session.Err
// (ErrSessionLost or ErrSessionClosed).
func (m *Mutex) Lock(ctx context.Context) error {
	return m.a.acquire(ctx, "lock", "", true)
}

// TryLock acquires the lock if it is free, once, without queueing. If
// another session holds it (exclusively, or shared through an RWMutex) the
// error is a *LockedError naming the holder or holders, matching
// api.ErrLockHeld. It returns nil at once if the Mutex already
// holds the lock. Transport failures are retried like any request; if ctx
// ends or the outcome stays unknown, TryLock releases a grant it may have
// got, as Lock does.
func (m *Mutex) TryLock(ctx context.Context) error {
	return m.a.acquire(ctx, "lock", "", false)
}

// Unlock releases the lock (POST release with the hold's token); Token
// becomes 0. It returns ErrNotLocked if the Mutex holds nothing. If the
// hold was lost before (the server answers that this session does not hold
// the lock with this token), the hold is dropped, Lost is closed and the
// error matches api.ErrNotHolder (or api.ErrSessionNotFound). A not_holder answer to
// a retry of this very release, whose first attempt had an unknown outcome,
// counts as success, as does one to a later Unlock after an Unlock that
// failed with an unknown outcome. On other failures (unavailable, ctx
// ended) the hold is kept and Unlock may be called again.
func (m *Mutex) Unlock(ctx context.Context) error {
	return m.a.release(ctx, "unlock", "")
}
