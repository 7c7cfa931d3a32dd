package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/raftlock/raftlock/api"
)

// acquirer is the machinery that Mutex, RWMutex and Semaphore share: one
// hold at a time, for a session, of a lock (exclusive or shared) or of a
// permit of a semaphore. Every queue of the server answers the same way
// (api/semaphores.go: "the same wait path as locks"), so one algorithm
// serves them all:
//
//   - acquire tries first (a lock's try may share a POST /v1/batch with
//     other goroutines' requests, see batcher), then waits in chunks of at
//     most Config.WaitChunk with keep_queued, so that the session keeps its
//     FIFO place between chunks; connection errors and 503 answers are
//     retried (an acquire by a session is idempotent);
//   - when the caller gives up, cleanup cancels the session's place and
//     releases a grant that won the race, under Session.settle;
//   - release sends the hold's token; a not_holder answer to a retry of
//     the same release counts as done.
//
// Its methods are serialised by sem: an acquire that waits delays a release
// of the same acquirer. It is safe for concurrent use.
type acquirer struct {
	s    *Session
	name string
	// kind names the primitive in errors ("mutex", "rwmutex",
	// "semaphore").
	kind string
	// semaphore: the queue is semaphore name's, of limit permits (else
	// lock name's).
	semaphore bool
	limit     uint32
	sem       chan struct{} // serialises acquire and release
	// directWaits: this many more acquires that wait go straight to a
	// waiting request, without a try first (see acquire). Guarded by
	// sem.
	directWaits int

	mu   sync.Mutex
	hold *hold // current hold, nil when nothing is held
}

func newAcquirer(s *Session, name, kind string) acquirer {
	return acquirer{s: s, name: name, kind: kind, sem: make(chan struct{}, 1)}
}

// semaphorePath returns the URL path of semaphore name, as api.LockPath
// does for locks.
func semaphorePath(name string) string { return "/v1/semaphores/" + url.PathEscape(name) }

// logKey is the log key of the acquirer's name: "lock" or "semaphore".
func (a *acquirer) logKey() string {
	if a.semaphore {
		return "semaphore"
	}
	return "lock"
}

// path returns the URL path of the acquirer's lock or semaphore.
func (a *acquirer) path() string {
	if a.semaphore {
		return semaphorePath(a.name)
	}
	return api.LockPath(a.name)
}

// token returns the current hold's token, 0 when nothing is held or the
// hold was lost.
func (a *acquirer) token() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold == nil || a.hold.isLost() {
		return 0
	}
	return a.hold.token
}

// closedC is returned by Lost when nothing is held.
var closedC = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// lost returns the current hold's lost channel, or a closed channel when
// nothing is held.
func (a *acquirer) lost() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold == nil {
		return closedC
	}
	return a.hold.lost
}

// enter takes the acquirer's turn, or fails when ctx ends first.
func (a *acquirer) enter(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: %s %q: %w", a.kind, a.name, ctx.Err())
	}
}

func (a *acquirer) leave() { <-a.sem }

// current returns the current hold if it is not lost.
func (a *acquirer) current() *hold {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hold == nil || a.hold.isLost() {
		return nil
	}
	return a.hold
}

// modeName names a lock mode for messages ("" is exclusive).
func modeName(mode string) string {
	if mode == api.ModeShared {
		return api.ModeShared
	}
	return api.ModeExclusive
}

// acquire takes the lock in mode ("" for exclusive, api.ModeShared) or the
// semaphore's permit: waiting in the queue when wait, else once (the
// refusal of a held lock is a *LockedError, of a full semaphore a
// *FullError). verb names the call in errors ("lock", "rlock", "acquire
// semaphore"). It returns nil at once when the acquirer holds already in
// mode, and an error matching api.ErrModeMismatch, without a request, when
// it holds in the other mode. See Mutex.Lock for the waiting, the
// retries and the clean-up when ctx or the session ends first.
func (a *acquirer) acquire(ctx context.Context, verb, mode string, wait bool) (err error) {
	if err := api.ValidateLockName(a.name); err != nil {
		return fmt.Errorf("client: %s: %w: %v", verb, api.ErrInvalidArgument, err)
	}
	if err := a.enter(ctx); err != nil {
		return err
	}
	turn := true // this call holds the turn until it returns, or hands it to a clean-up
	defer func() {
		if turn {
			a.leave()
		}
	}()
	if h := a.current(); h != nil {
		if h.shared != (mode == api.ModeShared) {
			return fmt.Errorf("client: %s %q: %w: it is held %s by this %s; unlock it first",
				verb, a.name, api.ErrModeMismatch, modeName(h.mode()), a.kind)
		}
		return nil
	}
	if err := a.s.Err(); err != nil {
		return fmt.Errorf("client: %s %q: %w", verb, a.name, err)
	}
	// The requests end with ctx or with the session.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.s.ctx, cancel)
	defer stop()
	giveUp := func(cause error) error {
		turn = !a.s.settle(ctx, cleanupTimeout, a.name, a.cleanup, a.leave)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("client: %s %q: %w", verb, a.name, ctx.Err())
		case a.s.Err() != nil:
			return fmt.Errorf("client: %s %q: %w", verb, a.name, a.s.Err())
		}
		return fmt.Errorf("client: %s %q: %w", verb, a.name, cause)
	}

	// The first attempt is a try (no wait): most locks are free, and a try
	// is short, so a lock's may share a request with other goroutines'
	// (see batcher). A lock's try that will wait asks with keep_queued to
	// join the queue at once when the lock is held: its wait then needs
	// no entry of its own (the server answers it from a read), so a
	// contended lock costs one log entry per hand-off fewer.
	//
	// Once a try of this acquirer found its lock or semaphore held, its
	// next directRuns waiting acquires skip the try: a waiting request
	// joins the queue and waits in one request and one entry, where the
	// try and then the wait cost two requests and a linearizable read on
	// the server. A free lock grants that request at once, as it would
	// the try (without sharing a batch), so the acquirer goes back to
	// tries once the runs are spent and no try found the lock held.
	var token uint64
	if w, ok := a.chunk(actx); wait && a.directWaits > 0 && ok {
		a.directWaits--
		token, err = a.request(actx, mode, w, false, true)
	} else {
		token, err = a.request(actx, mode, 0, true, wait)
	}
	for try := 1; ; try++ {
		var ae *api.Error
		switch {
		case err == nil:
			return a.granted(verb, token, mode == api.ModeShared)
		case errors.As(err, &ae) && ae.Code == api.CodeLockHeld:
			if !wait {
				a.directWaits = directRuns
				return a.heldError(ae)
			}
			if try == 1 {
				a.directWaits = directRuns
			}
			// Held: wait (the first time), or wait on (a chunk ran out and
			// the session kept its place).
		case errors.Is(err, api.ErrSessionNotFound):
			a.s.lost(err)
			return fmt.Errorf("client: %s %q: %w", verb, a.name, a.s.Err())
		case actx.Err() != nil:
			return giveUp(err)
		case !wait && errors.Is(err, api.ErrOutcomeUnknown):
			return giveUp(err)
		case errors.Is(err, api.ErrUnavailable) || errors.Is(err, api.ErrOutcomeUnknown):
			a.s.log.Debug("acquire failed, retrying", a.logKey(), a.name, "try", try, "error", err)
			if sleep(actx, backoff(min(try, 6))) != nil {
				return giveUp(err)
			}
			if !wait {
				token, err = a.request(actx, mode, 0, false, false)
				continue
			}
		default:
			return fmt.Errorf("client: %s %q: %w", verb, a.name, err)
		}
		w, ok := a.chunk(actx)
		if !ok {
			<-actx.Done()
			return giveUp(actx.Err())
		}
		token, err = a.request(actx, mode, w, false, true)
	}
}

// directRuns is how many waiting acquires of an acquirer go without a try
// after a try found its lock or semaphore held (see acquire).
const directRuns = 8

// chunk returns the wait of the next waiting request: Config.WaitChunk,
// or less if ctx ends sooner; false when ctx's deadline has passed.
func (a *acquirer) chunk(ctx context.Context) (time.Duration, bool) {
	w := a.s.c.waitChunk
	if dl, ok := ctx.Deadline(); ok {
		w = min(w, time.Until(dl))
	}
	return w, w > 0
}

// request sends one acquire and returns the grant's token: a try when w is
// 0, else a wait of w. keep keeps the session's place in the queue when the
// wait runs out, and makes a lock's try join the queue of a held lock
// (semaphores' tries never queue). batch lets a lock's try go through the
// batcher.
func (a *acquirer) request(ctx context.Context, mode string, w time.Duration, batch, keep bool) (uint64, error) {
	if a.semaphore {
		var p api.Permit
		_, err := a.s.c.do(ctx, call{
			method: http.MethodPost, path: semaphorePath(a.name) + "/acquire", write: true, retryUnknown: true, extra: w,
			body: api.SemaphoreAcquireRequest{Session: a.s.id, Limit: a.limit, Wait: api.Duration(w), KeepQueued: w > 0},
		}, &p)
		return p.Token, err
	}
	var g api.LockGrant
	cl := call{
		method: http.MethodPost, path: api.LockPath(a.name) + "/acquire", write: true, retryUnknown: true, extra: w,
		body: api.AcquireRequest{Session: a.s.id, Wait: api.Duration(w), KeepQueued: keep, Mode: mode},
	}
	var err error
	if batch {
		_, err = a.s.c.doLock(ctx, cl, api.BatchOp{Op: api.BatchAcquire, Name: a.name, Session: a.s.id, Mode: mode, KeepQueued: keep}, &g)
	} else {
		_, err = a.s.c.do(ctx, cl, &g)
	}
	return g.Token, err
}

// heldError is the error of a try refused with lock_held ae.
func (a *acquirer) heldError(ae *api.Error) error {
	if a.semaphore {
		return &FullError{Name: a.name, Limit: ae.Limit, Holders: ae.Holders}
	}
	le := &LockedError{Name: a.name, Holders: ae.Holders}
	if ae.Holder != nil {
		le.Holder = *ae.Holder
	}
	return le
}

// granted records a new hold with token, unless the session ended
// meanwhile (then the grant is released and the session's error returned).
func (a *acquirer) granted(verb string, token uint64, shared bool) error {
	h := &hold{name: a.name, token: token, shared: shared, semaphore: a.semaphore, lost: make(chan struct{})}
	if err := a.s.addHold(h); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		a.cleanup(ctx)
		cancel()
		return fmt.Errorf("client: %s %q: %w", verb, a.name, err)
	}
	a.mu.Lock()
	a.hold = h
	a.mu.Unlock()
	return nil
}

// cancelAnswer decodes the answer to a cancel of a lock (api.CancelResponse)
// and of a semaphore (api.SemaphoreCancelResponse): the grant or permit
// that won the race, if any.
type cancelAnswer struct {
	Left   bool           `json:"left"`
	Grant  *api.LockGrant `json:"grant"`
	Permit *api.Permit    `json:"permit"`
}

// cleanup makes sure the session neither waits for nor holds the lock or
// permit on behalf of a caller that has gone: it cancels the session's
// place (POST …/cancel) and releases the grant the answer names (a grant
// that won the race). It reports whether both were answered by the server
// (see Session.settle, which runs it).
func (a *acquirer) cleanup(ctx context.Context) bool {
	var out cancelAnswer
	_, err := a.s.c.do(ctx, call{
		method: http.MethodPost, path: a.path() + "/cancel", write: true, retryUnknown: true,
		body: api.CancelRequest{Session: a.s.id},
	}, &out)
	var token uint64
	switch {
	case errors.Is(err, api.ErrSessionNotFound):
		return true // the session is gone, and its place and holds with it
	case err != nil:
		a.s.log.Debug("clean up after an acquire: cancel", a.logKey(), a.name, "error", err)
		return !retryable(err)
	case out.Grant != nil:
		token = out.Grant.Token
	case out.Permit != nil:
		token = out.Permit.Token
	default:
		return true
	}
	_, err = a.s.c.do(ctx, a.releaseCall(token), nil)
	if err != nil && !errors.Is(err, api.ErrNotHolder) && !errors.Is(err, api.ErrSessionNotFound) {
		a.s.log.Debug("clean up after an acquire: release", a.logKey(), a.name, "token", token, "error", err)
		return !retryable(err)
	}
	return true
}

// releaseCall is the release of the session's hold with token.
func (a *acquirer) releaseCall(token uint64) call {
	cl := call{method: http.MethodPost, path: a.path() + "/release", write: true, retryUnknown: true}
	if a.semaphore {
		cl.body = api.SemaphoreReleaseRequest{Session: a.s.id, Token: token}
	} else {
		cl.body = api.ReleaseRequest{Session: a.s.id, Token: token}
	}
	return cl
}

// release ends the current hold, which must be in mode (for a lock: "" or
// api.ModeShared; a hold in the other mode is an error matching
// api.ErrModeMismatch, and nothing is sent). See Mutex.Unlock for the
// errors; verb names the call in them.
func (a *acquirer) release(ctx context.Context, verb, mode string) error {
	if err := a.enter(ctx); err != nil {
		return err
	}
	defer a.leave()
	a.mu.Lock()
	h := a.hold
	a.mu.Unlock()
	if h == nil {
		return fmt.Errorf("client: %s %q: %w", verb, a.name, ErrNotLocked)
	}
	if h.shared != (mode == api.ModeShared) {
		return fmt.Errorf("client: %s %q: %w: it is held %s", verb, a.name, api.ErrModeMismatch, modeName(h.mode()))
	}
	// The session's watch must not take this release's effect for a loss.
	h.releasing.Store(true)
	var (
		info callInfo
		err  error
	)
	if a.semaphore {
		info, err = a.s.c.do(ctx, a.releaseCall(h.token), nil)
	} else {
		info, err = a.s.c.doLock(ctx, a.releaseCall(h.token), api.BatchOp{Op: api.BatchRelease, Name: a.name, Session: a.s.id, Token: h.token}, nil)
	}
	var ret error
	switch {
	case err == nil, (info.unknownBefore || h.releaseUnknown) && errors.Is(err, api.ErrNotHolder):
		// not_holder after a release whose outcome was unknown (an
		// earlier attempt of this call, or an earlier call): that release
		// took effect.
		a.s.removeHold(h)
	case errors.Is(err, api.ErrNotHolder), errors.Is(err, api.ErrSessionNotFound):
		if errors.Is(err, api.ErrSessionNotFound) {
			a.s.lost(err)
		}
		a.s.loseHold(h)
		h.lose()
		ret = fmt.Errorf("client: %s %q: %w", verb, a.name, err)
	default:
		h.releasing.Store(false)
		h.releaseUnknown = h.releaseUnknown || info.unknownBefore || errors.Is(err, api.ErrOutcomeUnknown)
		return fmt.Errorf("client: %s %q: %w", verb, a.name, err)
	}
	a.mu.Lock()
	a.hold = nil
	a.mu.Unlock()
	return ret
}
