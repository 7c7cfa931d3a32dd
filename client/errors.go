package client

import (
	"errors"
	"fmt"

	"github.com/raftlock/raftlock/api"
)

// Errors of the server, re-exported from package api under the names an SDK
// user thinks of, so that one import is enough. They are the same values as
// the api sentinels: errors.Is(err, client.ErrNotHolder) and
// errors.Is(err, api.ErrNotHolder) are the same test. Every error the server
// answers is an *api.Error (reachable with errors.As) that matches the
// sentinel of its code.
var (
	// ErrLocked is api.ErrLockHeld: the lock is held by another session.
	// TryLock returns it as a *LockedError that names the holder.
	ErrLocked = api.ErrLockHeld
	// ErrNotHolder is api.ErrNotHolder: a release by a session that does not
	// hold the lock, or with a stale token. Nothing changed on the server.
	ErrNotHolder = api.ErrNotHolder
	// ErrSessionExpired is api.ErrSessionNotFound: the session expired, was
	// closed (perhaps by an operator) or never existed.
	ErrSessionExpired = api.ErrSessionNotFound
	// ErrUnavailable is api.ErrUnavailable: no endpoint could serve the
	// request (no leader, no quorum, nodes down). Nothing was changed.
	ErrUnavailable = api.ErrUnavailable
	// ErrOutcomeUnknown is api.ErrOutcomeUnknown: a write may or may not have
	// taken effect. The SDK retries idempotent writes itself, so callers see
	// it only when retries were exhausted or the write is not idempotent
	// (opening a session).
	ErrOutcomeUnknown = api.ErrOutcomeUnknown
	// ErrInvalidArgument is api.ErrInvalidArgument: a bad lock name, TTL,
	// wait, ... (from the server, or found by the SDK before sending).
	ErrInvalidArgument = api.ErrInvalidArgument
)

// Errors of the SDK itself.
var (
	// ErrSessionLost means the session ended without Close: the server
	// expired or closed it (the error also matches ErrSessionExpired), or no
	// renewal was acknowledged before its safe-until time (see
	// Session.SafeUntil). Session.Err wraps it with the cause.
	ErrSessionLost = errors.New("client: session lost")
	// ErrSessionClosed means Session.Close was called.
	ErrSessionClosed = errors.New("client: session closed")
	// ErrNotLocked is returned by Mutex.Unlock when the Mutex holds nothing.
	ErrNotLocked = errors.New("client: mutex not locked")
)

// LockedError is the error of TryLock when another session holds the lock.
// It matches ErrLocked (and api.ErrLockHeld) with errors.Is.
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

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// lostError is Session.Err after a loss: it matches ErrSessionLost and its
// cause.
type lostError struct{ cause error }

func (e *lostError) Error() string { return ErrSessionLost.Error() + ": " + e.cause.Error() }

func (e *lostError) Unwrap() []error { return []error{ErrSessionLost, e.cause} }
