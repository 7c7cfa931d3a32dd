package client

import (
	"context"

	"github.com/raftlock/raftlock/api"
)

// RWMutex is a distributed read-write lock named Name, acquired on behalf
// of a Session: shared (read) holders hold it together, an exclusive
// (write) holder alone. Its queue is FIFO and fair both ways: a shared
// request queued behind an exclusive one waits for it, so a stream of
// readers never starves a writer. It is the same lock as a Mutex of that
// name: a Mutex's Lock is an exclusive request.
//
// It is safe for concurrent use: its methods are serialised, so a Lock or
// RLock that waits delays an Unlock, RUnlock or another acquire of the
// same RWMutex. As for Mutex, the hold belongs to the session, not to a
// goroutine; give each process (or each goroutine that must exclude the
// others) its own session.
//
// An RWMutex has one hold at a time, in one mode: RLock while it holds the
// lock exclusively (or Lock while it holds it shared) fails at once with an
// error matching api.ErrModeMismatch and sends nothing; unlock first (the
// server has no upgrades or downgrades either, and answers an acquire in
// the other mode by the same session with 409 mode_mismatch, which
// surfaces the same way). RLock while holding shared, or Lock while
// holding exclusively, returns nil at once.
//
// Each successful acquire starts a hold with a fencing token (Token: every
// shared holder has its own, the index of the entry that granted it) and a
// lost channel (Lost). A waiting acquire that would close a cycle of waits
// fails at once with an error matching api.ErrDeadlock.
type RWMutex struct {
	a acquirer
}

// NewRWMutex returns an RWMutex for lock name in session s. It does not
// contact the server; an invalid name makes its acquires fail with an
// error matching api.ErrInvalidArgument.
func (s *Session) NewRWMutex(name string) *RWMutex {
	return &RWMutex{a: newAcquirer(s, name, "rwmutex")}
}

// Name returns the lock's name.
func (rw *RWMutex) Name() string { return rw.a.name }

// Token returns the fencing token of the current hold, shared or
// exclusive, or 0 when nothing is held or the hold was lost.
func (rw *RWMutex) Token() uint64 { return rw.a.token() }

// Mode returns the mode of the current hold: api.ModeShared,
// api.ModeExclusive, or "" when nothing is held or the hold was lost.
func (rw *RWMutex) Mode() string {
	if h := rw.a.current(); h != nil {
		return modeName(h.mode())
	}
	return ""
}

// Lost returns a channel of the current hold, closed when it ends for any
// reason other than Unlock or RUnlock, as Mutex.Lost; an already closed
// channel when nothing is held.
func (rw *RWMutex) Lost() <-chan struct{} { return rw.a.lost() }

// RLock acquires the lock shared, waiting in its FIFO queue until it is
// granted or ctx ends: at once if the lock is free or held shared with
// nobody waiting, else after the exclusive holder and every request queued
// before it. Waiting, retries, giving up and the session's end are as for
// Mutex.Lock.
func (rw *RWMutex) RLock(ctx context.Context) error {
	return rw.a.acquire(ctx, "rlock", api.ModeShared, true)
}

// TryRLock acquires the lock shared if that needs no wait, once. If the
// lock is held exclusively, or an exclusive request waits, the error is a
// *LockedError (matching api.ErrLockHeld). Otherwise as Mutex.TryLock.
func (rw *RWMutex) TryRLock(ctx context.Context) error {
	return rw.a.acquire(ctx, "rlock", api.ModeShared, false)
}

// Lock acquires the lock exclusively, waiting in its FIFO queue, as
// Mutex.Lock.
func (rw *RWMutex) Lock(ctx context.Context) error {
	return rw.a.acquire(ctx, "lock", "", true)
}

// TryLock acquires the lock exclusively if it is free, once, as
// Mutex.TryLock: a lock held shared is refused with a *LockedError whose
// Holders are the shared holders.
func (rw *RWMutex) TryLock(ctx context.Context) error {
	return rw.a.acquire(ctx, "lock", "", false)
}

// RUnlock releases a shared hold, as Mutex.Unlock. It returns ErrNotLocked
// when nothing is held, and an error matching api.ErrModeMismatch (sending
// nothing) when the hold is exclusive.
func (rw *RWMutex) RUnlock(ctx context.Context) error {
	return rw.a.release(ctx, "runlock", api.ModeShared)
}

// Unlock releases an exclusive hold, as Mutex.Unlock. It returns
// ErrNotLocked when nothing is held, and an error matching
// api.ErrModeMismatch (sending nothing) when the hold is shared.
func (rw *RWMutex) Unlock(ctx context.Context) error {
	return rw.a.release(ctx, "unlock", "")
}
