package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/raftlock/raftlock/api"
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
// (Token) and a lost channel (Lost).
type Mutex struct {
	s    *Session
	name string
	sem  chan struct{} // serialises Lock, TryLock and Unlock

	mu   sync.Mutex
	hold *hold // current hold, nil when not locked
}

// NewMutex returns a Mutex for lock name in session s. It does not contact
// the server; an invalid name makes Lock and TryLock fail with an error
// matching api.ErrInvalidArgument.
func (s *Session) NewMutex(name string) *Mutex {
	return &Mutex{s: s, name: name, sem: make(chan struct{}, 1)}
}

// Name returns the lock's name.
func (m *Mutex) Name() string { return m.name }

// Token returns the fencing token of the current hold: the index of the
// log entry that granted the lock, larger than every earlier grant of this
// name. It returns 0 when the Mutex is not held or the hold was lost.
func (m *Mutex) Token() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil || m.hold.isLost() {
		return 0
	}
	return m.hold.token
}

// closedC is returned by Lost when nothing is held.
var closedC = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Lost returns a channel of the current hold, closed when the hold ends
// for any reason other than Unlock: the session ended (lost or closed), or
// the keep-alive goroutine found that the server no longer grants the lock
// to this session with this token (e.g. an operator closed the session,
// or someone released the lock with its token). A loss is noticed within
// about one keep-alive interval (TTL/3).
//
// Each hold has its own channel: Unlock does not close it (a goroutine
// still waiting on it keeps waiting), and the next Lock starts a new one.
// When the Mutex holds nothing, Lost returns an already closed channel:
// there is nothing to act on.
func (m *Mutex) Lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil {
		return closedC
	}
	return m.hold.lost
}

// enter takes the Mutex's turn, or fails when ctx ends first.
func (m *Mutex) enter(ctx context.Context) error {
	select {
	case m.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: mutex %q: %w", m.name, ctx.Err())
	}
}

func (m *Mutex) leave() { <-m.sem }

// held reports whether the Mutex has a hold that is not lost.
func (m *Mutex) held() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hold != nil && !m.hold.isLost()
}

// Lock acquires the lock, waiting in its FIFO queue until it is granted or
// ctx ends. It returns nil at once if the Mutex already holds the lock.
//
// It first tries the lock without waiting (a request that may share a
// POST /v1/batch with other goroutines' requests, see Config.UnbatchedLocks);
// if the lock is held, it joins the queue and waits. Each waiting request
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
	return m.lock(ctx, true)
}

// TryLock acquires the lock if it is free, once, without queueing. If
// another session holds it the error is a *LockedError naming the holder,
// matching api.ErrLockHeld. It returns nil at once if the Mutex already
// holds the lock. Transport failures are retried like any request; if ctx
// ends or the outcome stays unknown, TryLock releases a grant it may have
// got, as Lock does.
func (m *Mutex) TryLock(ctx context.Context) error {
	return m.lock(ctx, false)
}

func (m *Mutex) lock(ctx context.Context, wait bool) (err error) {
	if err := api.ValidateLockName(m.name); err != nil {
		return fmt.Errorf("client: lock: %w: %v", api.ErrInvalidArgument, err)
	}
	if err := m.enter(ctx); err != nil {
		return err
	}
	turn := true // this call holds the Mutex's turn until it returns, or hands it to a clean-up
	defer func() {
		if turn {
			m.leave()
		}
	}()
	if m.held() {
		return nil
	}
	if err := m.s.Err(); err != nil {
		return fmt.Errorf("client: lock %q: %w", m.name, err)
	}
	// The requests end with ctx or with the session.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.s.ctx, cancel)
	defer stop()
	giveUp := func(cause error) error {
		turn = !m.s.settle(ctx, cleanupTimeout, m.name, m.cleanup, m.leave)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("client: lock %q: %w", m.name, ctx.Err())
		case m.s.Err() != nil:
			return fmt.Errorf("client: lock %q: %w", m.name, m.s.Err())
		}
		return fmt.Errorf("client: lock %q: %w", m.name, cause)
	}

	path := api.LockPath(m.name) + "/acquire"
	var g api.LockGrant
	// The first attempt is a try (no wait): most locks are free, and a try
	// is short, so it may share a request with other goroutines' (see
	// batcher).
	_, err = m.s.c.doLock(actx, call{method: http.MethodPost, path: path, write: true, retryUnknown: true,
		body: api.AcquireRequest{Session: m.s.id}}, api.BatchOp{Op: api.BatchAcquire, Name: m.name, Session: m.s.id}, &g)
	for try := 1; ; try++ {
		var ae *api.Error
		switch {
		case err == nil:
			return m.granted(g.Token)
		case errors.As(err, &ae) && ae.Code == api.CodeLockHeld:
			if !wait {
				le := &LockedError{Name: m.name}
				if ae.Holder != nil {
					le.Holder = *ae.Holder
				}
				return le
			}
			// Held: wait (the first time), or wait on (a chunk ran out and
			// the session kept its place).
		case errors.Is(err, api.ErrSessionNotFound):
			m.s.lost(err)
			return fmt.Errorf("client: lock %q: %w", m.name, m.s.Err())
		case actx.Err() != nil:
			return giveUp(err)
		case !wait && errors.Is(err, api.ErrOutcomeUnknown):
			return giveUp(err)
		case errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrOutcomeUnknown):
			m.s.log.Debug("acquire failed, retrying", "lock", m.name, "try", try, "error", err)
			if sleep(actx, backoff(min(try, 6))) != nil {
				return giveUp(err)
			}
			if !wait {
				_, err = m.s.c.do(actx, call{method: http.MethodPost, path: path, write: true, retryUnknown: true,
					body: api.AcquireRequest{Session: m.s.id}}, &g)
				continue
			}
		default:
			return fmt.Errorf("client: lock %q: %w", m.name, err)
		}
		w := m.s.c.waitChunk
		if dl, ok := actx.Deadline(); ok {
			w = min(w, time.Until(dl))
		}
		if w <= 0 {
			<-actx.Done()
			return giveUp(actx.Err())
		}
		_, err = m.s.c.do(actx, call{
			method: http.MethodPost, path: path, write: true, retryUnknown: true, extra: w,
			body: api.AcquireRequest{Session: m.s.id, Wait: api.Duration(w), KeepQueued: true},
		}, &g)
	}
}

// granted records a new hold with token, unless the session ended
// meanwhile (then the grant is released and the session's error returned).
func (m *Mutex) granted(token uint64) error {
	h := &hold{name: m.name, token: token, lost: make(chan struct{})}
	if err := m.s.addHold(h); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		m.cleanup(ctx)
		cancel()
		return fmt.Errorf("client: lock %q: %w", m.name, err)
	}
	m.mu.Lock()
	m.hold = h
	m.mu.Unlock()
	return nil
}

// cleanup makes sure the session neither waits for nor holds the lock on
// behalf of a caller that has gone: it cancels the session's place
// (POST /v1/locks/{name}/cancel) and releases the grant the answer names (a
// grant that won the race). It reports whether both were answered by the
// server (see Session.settle, which runs it).
func (m *Mutex) cleanup(ctx context.Context) bool {
	var out api.CancelResponse
	_, err := m.s.c.do(ctx, call{
		method: http.MethodPost, path: api.LockPath(m.name) + "/cancel", write: true, retryUnknown: true,
		body: api.CancelRequest{Session: m.s.id},
	}, &out)
	switch {
	case errors.Is(err, api.ErrSessionNotFound):
		return true // the session is gone, and its place and holds with it
	case err != nil:
		m.s.log.Debug("clean up after a lock attempt: cancel", "lock", m.name, "error", err)
		return !retryable(err)
	case out.Grant == nil:
		return true
	}
	_, err = m.s.c.do(ctx, call{
		method: http.MethodPost, path: api.LockPath(m.name) + "/release", write: true, retryUnknown: true,
		body: api.ReleaseRequest{Session: m.s.id, Token: out.Grant.Token},
	}, nil)
	if err != nil && !errors.Is(err, api.ErrNotHolder) && !errors.Is(err, api.ErrSessionNotFound) {
		m.s.log.Debug("clean up after a lock attempt: release", "lock", m.name, "token", out.Grant.Token, "error", err)
		return !retryable(err)
	}
	return true
}

// Unlock releases the lock (POST release with the hold's token); Token
// becomes 0. It returns ErrNotLocked if the Mutex holds nothing. If the
// hold was lost before (the server answers that this session does not hold
// the lock with this token), the hold is dropped, Lost is closed and the
// error matches api.ErrNotHolder (or api.ErrSessionNotFound). A not_holder answer to
// a retry of this very release, whose first attempt had an unknown outcome,
// counts as success. On other failures (unavailable, ctx ended) the hold
// is kept and Unlock may be called again.
func (m *Mutex) Unlock(ctx context.Context) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	defer m.leave()
	m.mu.Lock()
	h := m.hold
	m.mu.Unlock()
	if h == nil {
		return fmt.Errorf("client: unlock %q: %w", m.name, ErrNotLocked)
	}
	info, err := m.s.c.doLock(ctx, call{
		method: http.MethodPost, path: api.LockPath(m.name) + "/release", write: true, retryUnknown: true,
		body: api.ReleaseRequest{Session: m.s.id, Token: h.token},
	}, api.BatchOp{Op: api.BatchRelease, Name: m.name, Session: m.s.id, Token: h.token}, nil)
	var ret error
	switch {
	case err == nil, info.unknownBefore && errors.Is(err, api.ErrNotHolder):
		m.s.removeHold(h)
	case errors.Is(err, api.ErrNotHolder), errors.Is(err, api.ErrSessionNotFound):
		if errors.Is(err, api.ErrSessionNotFound) {
			m.s.lost(err)
		}
		m.s.loseHold(h)
		h.lose()
		ret = fmt.Errorf("client: unlock %q: %w", m.name, err)
	default:
		return fmt.Errorf("client: unlock %q: %w", m.name, err)
	}
	m.mu.Lock()
	m.hold = nil
	m.mu.Unlock()
	return ret
}
