package api

import (
	"errors"
	"fmt"
)

// Stable error codes of the "code" field of an Error. Clients switch on
// these, never on messages; new codes may be added, existing ones never
// change meaning.
const (
	// CodeInvalidArgument: the request is malformed or out of bounds (HTTP 400).
	CodeInvalidArgument = "invalid_argument"
	// CodeSessionNotFound: the session never existed, was closed or expired (HTTP 404).
	CodeSessionNotFound = "session_not_found"
	// CodeLockHeld: another session holds the lock; Error.Holder names it (HTTP 409).
	CodeLockHeld = "lock_held"
	// CodeNotHolder: release by a session that does not hold the lock, or with a
	// stale token; nothing changed (HTTP 409).
	CodeNotHolder = "not_holder"
	// CodeNotLeader: proclaim or resign by a session that does not lead the
	// election with that term, or a campaign whose wait ran out (or that did
	// not wait) while another session leads; Error.Leader names the leader
	// (HTTP 409).
	CodeNotLeader = "not_leader"
	// CodeNotFound: no such path (HTTP 404).
	CodeNotFound = "not_found"
	// CodeUnavailable: no leader, no quorum, the node is stopping or not ready,
	// or the deadline passed before the request was proposed. Nothing was
	// changed; retry, possibly on another node (HTTP 503).
	CodeUnavailable = "unavailable"
	// CodeTimeout: the write was proposed but its outcome is unknown (the
	// deadline passed or the leader changed). It may or may not have been
	// applied; retrying the same request is safe (HTTP 503).
	CodeTimeout = "timeout"
	// CodeTooLarge: the request body exceeds MaxBodyBytes (HTTP 413).
	CodeTooLarge = "too_large"
	// CodeMethodNotAllowed: the path exists but not with this method (HTTP 405).
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeInternal: a server bug (HTTP 500).
	CodeInternal = "internal"
	// CodeUnauthenticated: auth is on and the request has no valid
	// principal (no token, an unknown or revoked token, a certificate
	// without a user) (HTTP 401).
	CodeUnauthenticated = "unauthenticated"
	// CodePermissionDenied: the principal lacks the permission; the message
	// names the action and the name, or the session that belongs to
	// another principal (HTTP 403).
	CodePermissionDenied = "permission_denied"
	// CodeQuotaExceeded: a limit of the cluster (sessions per principal,
	// locks per session, waiters per lock, ...) would be exceeded; the
	// message names it; nothing changed (HTTP 429).
	CodeQuotaExceeded = "quota_exceeded"
	// CodeRateLimited: the principal sent requests faster than its rate
	// limit; retry after the Retry-After header's seconds (HTTP 429).
	CodeRateLimited = "rate_limited"
	// CodeNoSpace: the replicated state reached the cluster's size quota;
	// requests that would grow it are refused until it shrinks (HTTP 507).
	CodeNoSpace = "no_space"
	// CodeFailedPrecondition: the cluster is not in a state that allows
	// the request (a membership change while another is in flight, one
	// that would leave too few started voters, a learner not caught up,
	// a command some member's build cannot read yet); the message starts
	// with the precise reason; nothing changed (HTTP 409).
	CodeFailedPrecondition = "failed_precondition"
	// CodeDeadlock: a waiting acquire would close a cycle of waits (session
	// A holds x and waits for y while B holds y and waits for x, through
	// any number of sessions); the message names the cycle, Error.Holder
	// the lock's holder; the session was not queued (HTTP 409).
	CodeDeadlock = "deadlock"
	// CodeModeMismatch: an acquire in one mode (exclusive, shared) by a
	// session that holds or waits for the lock in the other: no upgrades
	// or downgrades; nothing changed (HTTP 409).
	CodeModeMismatch = "mode_mismatch"
	// CodeLimitMismatch: a semaphore acquire with another limit than the
	// semaphore's, which it keeps while anybody holds a permit; nothing
	// changed (HTTP 409).
	CodeLimitMismatch = "limit_mismatch"
)

// Sentinel errors, one per error code. An *Error matches the sentinel of its
// code with errors.Is. Their texts are not part of the wire format.
var (
	// ErrInvalidArgument matches CodeInvalidArgument.
	ErrInvalidArgument = errors.New("api: invalid argument")
	// ErrSessionNotFound matches CodeSessionNotFound.
	ErrSessionNotFound = errors.New("api: session not found")
	// ErrLockHeld matches CodeLockHeld.
	ErrLockHeld = errors.New("api: lock held")
	// ErrNotHolder matches CodeNotHolder.
	ErrNotHolder = errors.New("api: not holder")
	// ErrElectionNotLeader matches CodeNotLeader: the session does not
	// lead the election (with that term). It is not about Raft: a node
	// that is not the Raft leader forwards writes, it never answers this.
	ErrElectionNotLeader = errors.New("api: election not leader")
	// ErrNotFound matches CodeNotFound.
	ErrNotFound = errors.New("api: not found")
	// ErrUnavailable matches CodeUnavailable.
	ErrUnavailable = errors.New("api: unavailable")
	// ErrOutcomeUnknown matches CodeTimeout: the request may or may not have
	// taken effect; retrying the same request is safe.
	ErrOutcomeUnknown = errors.New("api: outcome unknown")
	// ErrTooLarge matches CodeTooLarge.
	ErrTooLarge = errors.New("api: request too large")
	// ErrMethodNotAllowed matches CodeMethodNotAllowed.
	ErrMethodNotAllowed = errors.New("api: method not allowed")
	// ErrCompacted matches CodeCompacted: a stream cannot resume after the
	// asked revision; re-read the state.
	ErrCompacted = errors.New("api: revision compacted")
	// ErrInternal matches CodeInternal.
	ErrInternal = errors.New("api: internal error")
	// ErrUnauthenticated matches CodeUnauthenticated.
	ErrUnauthenticated = errors.New("api: unauthenticated")
	// ErrPermissionDenied matches CodePermissionDenied.
	ErrPermissionDenied = errors.New("api: permission denied")
	// ErrQuotaExceeded matches CodeQuotaExceeded.
	ErrQuotaExceeded = errors.New("api: quota exceeded")
	// ErrRateLimited matches CodeRateLimited.
	ErrRateLimited = errors.New("api: rate limited")
	// ErrNoSpace matches CodeNoSpace.
	ErrNoSpace = errors.New("api: no space")
	// ErrFailedPrecondition matches CodeFailedPrecondition.
	ErrFailedPrecondition = errors.New("api: failed precondition")
	// ErrDeadlock matches CodeDeadlock.
	ErrDeadlock = errors.New("api: deadlock")
	// ErrModeMismatch matches CodeModeMismatch.
	ErrModeMismatch = errors.New("api: mode mismatch")
	// ErrLimitMismatch matches CodeLimitMismatch.
	ErrLimitMismatch = errors.New("api: limit mismatch")
)

// Sentinel returns the sentinel error of code, and nil for a code this
// version does not know (compare Error.Code then).
func Sentinel(code string) error {
	switch code {
	case CodeInvalidArgument:
		return ErrInvalidArgument
	case CodeSessionNotFound:
		return ErrSessionNotFound
	case CodeLockHeld:
		return ErrLockHeld
	case CodeNotHolder:
		return ErrNotHolder
	case CodeNotLeader:
		return ErrElectionNotLeader
	case CodeNotFound:
		return ErrNotFound
	case CodeUnavailable:
		return ErrUnavailable
	case CodeTimeout:
		return ErrOutcomeUnknown
	case CodeTooLarge:
		return ErrTooLarge
	case CodeMethodNotAllowed:
		return ErrMethodNotAllowed
	case CodeInternal:
		return ErrInternal
	case CodeCompacted:
		return ErrCompacted
	case CodeUnauthenticated:
		return ErrUnauthenticated
	case CodePermissionDenied:
		return ErrPermissionDenied
	case CodeQuotaExceeded:
		return ErrQuotaExceeded
	case CodeRateLimited:
		return ErrRateLimited
	case CodeNoSpace:
		return ErrNoSpace
	case CodeFailedPrecondition:
		return ErrFailedPrecondition
	case CodeDeadlock:
		return ErrDeadlock
	case CodeModeMismatch:
		return ErrModeMismatch
	case CodeLimitMismatch:
		return ErrLimitMismatch
	}
	return nil
}

// Error is the error object of every error answer. It implements error, and
// errors.Is(e, Sentinel(e.Code)) is true.
type Error struct {
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Message says what went wrong, for humans; it is not stable.
	Message string `json:"message"`
	// Holder is the current holder of the lock when Code is CodeLockHeld
	// (absent when the server could not tell, or the lock is held shared).
	Holder *Holder `json:"holder,omitempty"`
	// Holders are every holder of a lock held shared, or of a full
	// semaphore, when Code is CodeLockHeld; Limit is the semaphore's
	// limit (CodeLockHeld, CodeLimitMismatch of a semaphore).
	Holders []Holder `json:"holders,omitempty"`
	Limit   uint32   `json:"limit,omitempty"`
	// Leader is the election's current leader when Code is CodeNotLeader
	// (absent when nobody leads).
	Leader *Leader `json:"leader,omitempty"`
	// Queued is true when the session still waits in the queue: a wait
	// with keep_queued ran out (CodeLockHeld, CodeNotLeader).
	Queued bool `json:"queued,omitempty"`
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns "raftlock: <code>: <message>".
func (e *Error) Error() string {
	if e.Message == "" {
		return "raftlock: " + e.Code
	}
	return "raftlock: " + e.Code + ": " + e.Message
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s := Sentinel(e.Code)
	return s != nil && s == target
}

// ErrorResponse is the body of every error answer: {"error": {...}}.
type ErrorResponse struct {
	Error Error `json:"error"`
}
