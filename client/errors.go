package client

import (
	"errors"
	"fmt"

	"github.com/raftlock/raftlock/api"
)

// Errors of the server are the sentinels of package api, one per wire code
// (api.ErrLockHeld, api.ErrNotHolder, api.ErrSessionNotFound,
// api.ErrElectionNotLeader, api.ErrUnavailable, api.ErrOutcomeUnknown,
// api.ErrInvalidArgument, ...): every error the server answers is an
// *api.Error (reachable with errors.As) that matches the sentinel of its
// code with errors.Is. The SDK adds the errors below, its own.

// Errors of the SDK itself.
var (
	// ErrSessionLost means the session ended without Close: the server
	// expired or closed it (the error also matches api.ErrSessionNotFound), or no
	// renewal was acknowledged before its safe-until time (see
	// Session.SafeUntil). Session.Err wraps it with the cause.
	ErrSessionLost = errors.New("client: session lost")
	// ErrSessionClosed means Session.Close was called.
	ErrSessionClosed = errors.New("client: session closed")
	// ErrNotLocked is returned by Mutex.Unlock when the Mutex holds nothing.
	ErrNotLocked = errors.New("client: mutex not locked")
)

// LockedError is the error of TryLock when another session holds the lock.
// It matches api.ErrLockHeld (and api.ErrLockHeld) with errors.Is.
type LockedError struct {
	// Name is the lock's name.
	Name string
	// Holder is the session holding it, as the server reported it (zero
	// when the server could not tell).
	Holder api.Holder
}

// Error names the lock and its holder.
func (e *LockedError) Error() string {
	if e.Holder.Session == 0 {
		return fmt.Sprintf("client: lock %q is held by another session", e.Name)
	}
	s := fmt.Sprintf("client: lock %q is held by session %s", e.Name, e.Holder.Session)
	if e.Holder.Owner != "" {
		s += fmt.Sprintf(" (owner %q)", e.Holder.Owner)
	}
	return s + fmt.Sprintf(" with token %d", e.Holder.Token)
}

// Is reports whether target is api.ErrLockHeld.
func (e *LockedError) Is(target error) bool { return target == api.ErrLockHeld }

// lostError is Session.Err after a loss: it matches ErrSessionLost and its
// cause.
type lostError struct{ cause error }

func (e *lostError) Error() string { return ErrSessionLost.Error() + ": " + e.cause.Error() }

func (e *lostError) Unwrap() []error { return []error{ErrSessionLost, e.cause} }
