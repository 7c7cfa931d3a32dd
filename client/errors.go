package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

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
	// ErrNotLocked is returned by Mutex.Unlock, RWMutex.Unlock and
	// RUnlock, and Semaphore.Release when nothing is held.
	ErrNotLocked = errors.New("client: mutex not locked")
)

// LockedError is the error of TryLock and TryRLock when the lock is held
// in a mode that excludes the request (or, for TryRLock, an exclusive
// request waits ahead). It matches api.ErrLockHeld with errors.Is.
type LockedError struct {
	// Name is the lock's name.
	Name string
	// Holder is the session holding it exclusively, as the server reported
	// it (zero when the server could not tell, or the lock is held
	// shared).
	Holder api.Holder
	// Holders are the lock's shared holders when it is held shared, each
	// with its mode and token (nil otherwise).
	Holders []api.Holder
}

// Error names the lock and its holder or holders.
func (e *LockedError) Error() string {
	if e.Holder.Session == 0 {
		if len(e.Holders) > 0 {
			return fmt.Sprintf("client: lock %q is held shared by %d sessions, or an exclusive request waits ahead", e.Name, len(e.Holders))
		}
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

// FullError is the error of Semaphore.TryAcquire when no permit is free
// (or other sessions wait ahead). It matches api.ErrLockHeld with
// errors.Is.
type FullError struct {
	// Name is the semaphore's name.
	Name string
	// Limit is the semaphore's number of permits, as the server reported
	// it (0 when it could not tell).
	Limit uint32
	// Holders hold the permits, in grant order.
	Holders []api.Holder
}

// Error names the semaphore and how many of its permits are held.
func (e *FullError) Error() string {
	if e.Limit == 0 {
		return fmt.Sprintf("client: semaphore %q is full", e.Name)
	}
	return fmt.Sprintf("client: semaphore %q is full: %d of its %d permits are held, or other sessions wait ahead", e.Name, len(e.Holders), e.Limit)
}

// Is reports whether target is api.ErrLockHeld.
func (e *FullError) Is(target error) bool { return target == api.ErrLockHeld }

// lostError is Session.Err after a loss: it matches ErrSessionLost and its
// cause.
type lostError struct{ cause error }

func (e *lostError) Error() string { return ErrSessionLost.Error() + ": " + e.cause.Error() }

func (e *lostError) Unwrap() []error { return []error{ErrSessionLost, e.cause} }

// UnreachableError is the error of a call that no endpoint answered: every
// attempt failed before an HTTP answer came (nobody listens at the address,
// the host name does not resolve, the connection timed out or broke, the
// TLS handshake failed). Its message names the endpoints tried and why,
// once, for the caller to put after what it was doing: "cannot reach
// raftlockd at http://127.0.0.1:7070 (connection refused)".
//
// It matches api.ErrUnavailable with errors.Is (nothing was done, as far
// as the SDK can tell), and unwraps to the last attempt's error, so that
// errors.Is(err, syscall.ECONNREFUSED) and errors.As with *net.OpError or
// *tls.CertificateVerificationError work. A call whose context ends first
// returns the context's error instead.
type UnreachableError struct {
	// Endpoints are the URLs tried, in the order of their first attempt.
	Endpoints []string
	// Reasons are, for each of Endpoints, why its last attempt failed, in
	// a few words ("connection refused", "no such host").
	Reasons []string
	// Err is the last attempt's error.
	Err error
}

// Error says which endpoints could not be reached, and why.
func (e *UnreachableError) Error() string {
	var b strings.Builder
	b.WriteString("cannot reach raftlockd at ")
	same := true
	for _, r := range e.Reasons {
		same = same && r == e.Reasons[0]
	}
	for i, ep := range e.Endpoints {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ep)
		if !same {
			fmt.Fprintf(&b, " (%s)", e.Reasons[i])
		}
	}
	if same && len(e.Reasons) > 0 {
		fmt.Fprintf(&b, " (%s)", e.Reasons[0])
	}
	return b.String()
}

// Is reports whether target is api.ErrUnavailable.
func (e *UnreachableError) Is(target error) bool { return target == api.ErrUnavailable }

// Unwrap returns the last attempt's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable collects the failed attempts of one call for an
// UnreachableError.
type unreachable struct {
	UnreachableError
	answered bool // an attempt got an HTTP answer: not unreachable
}

// add notes that the attempt to endpoint failed with err, an HTTP answer
// if it is an *api.Error.
func (u *unreachable) add(endpoint string, err error) {
	var ae *api.Error
	if errors.As(err, &ae) {
		u.answered = true
		return
	}
	u.Err = err
	r := reason(err)
	for i, ep := range u.Endpoints {
		if ep == endpoint {
			u.Reasons[i] = r
			return
		}
	}
	u.Endpoints = append(u.Endpoints, endpoint)
	u.Reasons = append(u.Reasons, r)
}

// err returns the UnreachableError, or nil if an endpoint answered.
func (u *unreachable) err() *UnreachableError {
	if u.answered || len(u.Endpoints) == 0 {
		return nil
	}
	e := u.UnreachableError
	return &e
}

// reason says in a few words why a request got no answer: the system's
// words for a failed connection ("connection refused"), "no such host",
// "timed out", or the TLS error.
func reason(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "no such host"
		}
		return dns.Err
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
