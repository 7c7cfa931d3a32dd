package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/raftlock/raftlock/api"
)

// TryLockAll takes every lock of names for the session in one log entry,
// or none (POST /v1/batch with "atomic":true): it never waits, and never
// holds some of them. On success it returns one held Mutex per name, in
// the order of names; Unlock each when done. If another session holds one
// of them the error matches api.ErrLockHeld and names that lock; nothing
// was taken. The names must be distinct, at most api.MaxAtomicOps. A retry
// after a lost answer is safe: the session's grants are answered again.
// It needs every member at cluster version 5 (else the error matches
// api.ErrFailedPrecondition).
func (s *Session) TryLockAll(ctx context.Context, names ...string) ([]*Mutex, error) {
	specs := make([]LockSpec, len(names))
	for i, n := range names {
		specs[i] = LockSpec{Name: n}
	}
	ms := make([]*Mutex, len(names))
	err := s.tryLockAll(ctx, specs, func(i int) *acquirer {
		ms[i] = s.NewMutex(names[i])
		return &ms[i].a
	})
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// LockSpec names a lock for TryLockAllModes and the mode to take it in.
type LockSpec struct {
	Name string
	// Shared takes the lock shared (as RWMutex.RLock); else exclusively.
	Shared bool
}

// TryLockAllModes is TryLockAll with a mode per lock: it takes every lock
// of locks, each shared or exclusive, in one log entry, or none. On
// success it returns one held RWMutex per lock, in order (RUnlock the
// shared ones, Unlock the others). A lock held in a mode that excludes the
// request is an error matching api.ErrLockHeld; a lock the session already
// holds or waits for in the other mode, api.ErrModeMismatch; nothing was
// taken either way.
func (s *Session) TryLockAllModes(ctx context.Context, locks ...LockSpec) ([]*RWMutex, error) {
	rws := make([]*RWMutex, len(locks))
	err := s.tryLockAll(ctx, locks, func(i int) *acquirer {
		rws[i] = s.NewRWMutex(locks[i].Name)
		return &rws[i].a
	})
	if err != nil {
		return nil, err
	}
	return rws, nil
}

// tryLockAll takes locks in one atomic batch and records the grant of
// lock i in the acquirer that add(i) returns.
func (s *Session) tryLockAll(ctx context.Context, locks []LockSpec, add func(i int) *acquirer) error {
	if err := s.Err(); err != nil {
		return err
	}
	names := make([]string, len(locks))
	req := api.BatchRequest{Atomic: true, Ops: make([]api.BatchOp, len(locks))}
	for i, l := range locks {
		names[i] = l.Name
		req.Ops[i] = api.BatchOp{Op: api.BatchAcquire, Name: l.Name, Session: s.id}
		if l.Shared {
			req.Ops[i].Mode = api.ModeShared
		}
	}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("client: lock all: %w", err)
	}
	var out api.BatchResponse
	if _, err := s.c.do(ctx, call{method: http.MethodPost, path: api.BatchPath, body: req, write: true, retryUnknown: true}, &out); err != nil {
		return fmt.Errorf("client: lock all of %q: %w", names, err)
	}
	if len(out.Results) != len(locks) {
		return fmt.Errorf("client: lock all: %d results for %d names", len(out.Results), len(locks))
	}
	for i, r := range out.Results {
		if r.Grant == nil || r.Grant.Name != names[i] {
			return fmt.Errorf("client: lock all: result %d does not grant %q", i, names[i])
		}
		if err := add(i).granted("lock all", r.Grant.Token, locks[i].Shared); err != nil {
			return err
		}
	}
	return nil
}
