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
	if err := s.Err(); err != nil {
		return nil, err
	}
	req := api.BatchRequest{Atomic: true, Ops: make([]api.BatchOp, len(names))}
	for i, n := range names {
		req.Ops[i] = api.BatchOp{Op: api.BatchAcquire, Name: n, Session: s.id}
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("client: lock all: %w", err)
	}
	var out api.BatchResponse
	if _, err := s.c.do(ctx, call{method: http.MethodPost, path: api.BatchPath, body: req, write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: lock all of %q: %w", names, err)
	}
	if len(out.Results) != len(names) {
		return nil, fmt.Errorf("client: lock all: %d results for %d names", len(out.Results), len(names))
	}
	ms := make([]*Mutex, len(names))
	for i, r := range out.Results {
		if r.Grant == nil || r.Grant.Name != names[i] {
			return nil, fmt.Errorf("client: lock all: result %d does not grant %q", i, names[i])
		}
		m := s.NewMutex(names[i])
		if err := m.granted(r.Grant.Token); err != nil {
			return nil, err
		}
		ms[i] = m
	}
	return ms, nil
}
