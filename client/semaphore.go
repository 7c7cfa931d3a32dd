package client

import (
	"context"
	"fmt"

	"github.com/raftlock/raftlock/api"
)

// Semaphore is a distributed counting semaphore named Name with Limit
// permits, one of which it acquires on behalf of a Session: at most Limit
// sessions hold a permit of the semaphore at once, and the others wait in
// its FIFO queue. Semaphores are a namespace of their own: semaphore "x"
// and lock "x" are unrelated.
//
// The first acquirer of a semaphore that nobody holds sets its limit; while
// anybody holds a permit, an acquire with another limit fails at once with
// an error matching api.ErrLimitMismatch (an *api.Error whose Limit is the
// semaphore's). Agree on the limit, e.g. in configuration shared by every
// process.
//
// It is safe for concurrent use: its methods are serialised, so an Acquire
// that waits delays a Release of the same Semaphore. A session holds at
// most one permit of a semaphore: the permit belongs to the session, not
// to a goroutine, and Acquire on a Semaphore that holds one returns nil at
// once. Give each process (or each goroutine that counts as one of the
// Limit) its own session, and use one Semaphore per session and name.
//
// Each successful Acquire or TryAcquire starts a hold with a token (Token,
// the index of the entry that granted the permit: a fencing token among
// the permits of this semaphore) and a lost channel (Lost).
type Semaphore struct {
	a     acquirer
	limit int // as given to NewSemaphore
}

// NewSemaphore returns a Semaphore for semaphore name with limit permits
// in session s. It does not contact the server; an invalid name, or a
// limit outside 1 to api.MaxSemaphoreLimit, makes Acquire and TryAcquire
// fail with an error matching api.ErrInvalidArgument.
func (s *Session) NewSemaphore(name string, limit int) *Semaphore {
	sm := &Semaphore{a: newAcquirer(s, name, "semaphore"), limit: limit}
	sm.a.semaphore = true
	if limit > 0 && limit <= api.MaxSemaphoreLimit {
		sm.a.limit = uint32(limit)
	}
	return sm
}

// Name returns the semaphore's name.
func (sm *Semaphore) Name() string { return sm.a.name }

// Limit returns the semaphore's number of permits as given to
// NewSemaphore.
func (sm *Semaphore) Limit() int { return sm.limit }

// acquire is Acquire (wait) or TryAcquire.
func (sm *Semaphore) acquire(ctx context.Context, wait bool) error {
	if sm.a.limit == 0 {
		return fmt.Errorf("client: acquire semaphore %q: %w: limit %d is not 1 to %d", sm.a.name, api.ErrInvalidArgument, sm.limit, api.MaxSemaphoreLimit)
	}
	return sm.a.acquire(ctx, "acquire semaphore", "", wait)
}

// Token returns the token of the current permit: the index of the log
// entry that granted it, larger than that of every earlier permit of this
// semaphore. It returns 0 when no permit is held or it was lost.
func (sm *Semaphore) Token() uint64 { return sm.a.token() }

// Lost returns a channel of the current permit, closed when it ends for
// any reason other than Release: the session ended (lost or closed), or
// the keep-alive goroutine read the semaphore and found that the session
// no longer holds this permit (an operator closed the session). A loss is
// noticed within about one and a half keep-alive intervals (TTL/3, and a
// random delay of up to half of one). Each permit has
// its own channel, as for Mutex.Lost; an already closed channel when no
// permit is held.
func (sm *Semaphore) Lost() <-chan struct{} { return sm.a.lost() }

// Acquire takes a permit, waiting in the semaphore's FIFO queue until one
// is granted or ctx ends. It returns nil at once if the Semaphore holds a
// permit. Waiting (in chunks that keep the session's place), retries,
// giving up (leaving the queue, releasing a permit that won the race) and
// the session's end are as for Mutex.Lock. A limit other than the
// semaphore's fails at once with an error matching api.ErrLimitMismatch,
// a wait that would close a cycle of waits with api.ErrDeadlock.
func (sm *Semaphore) Acquire(ctx context.Context) error {
	return sm.acquire(ctx, true)
}

// TryAcquire takes a permit if one is free and nobody waits, once, without
// queueing; otherwise the error is a *FullError (matching
// api.ErrLockHeld) naming the holders. Otherwise as Acquire and
// Mutex.TryLock.
func (sm *Semaphore) TryAcquire(ctx context.Context) error {
	return sm.acquire(ctx, false)
}

// Release gives the permit back (POST /v1/semaphores/{name}/release with
// its token); Token becomes 0 and the head of the queue, if any, is
// granted. It returns ErrNotLocked when no permit is held; the other
// errors are Mutex.Unlock's (a permit lost before: api.ErrNotHolder or
// api.ErrSessionNotFound, Lost closed; a failure that keeps the permit:
// call Release again).
func (sm *Semaphore) Release(ctx context.Context) error {
	return sm.a.release(ctx, "release semaphore", "")
}
