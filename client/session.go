package client

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlock/raftlock/api"
)

// DefaultTTL is the TTL of a session opened without WithTTL.
const DefaultTTL = 10 * time.Second

// SessionOption sets an optional knob of NewSession.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	ttl       time.Duration
	owner     string
	lockDelay time.Duration
}

// WithTTL sets the session's time to live (default 10s). The server bounds
// it (by default 2s to 1h); a TTL out of bounds makes NewSession fail with
// an error matching api.ErrInvalidArgument.
func WithTTL(d time.Duration) SessionOption { return func(o *sessionOptions) { o.ttl = d } }

// WithOwner labels the session (at most 256 bytes), e.g. "host-a/pid-42";
// others see it as the holder's or waiter's owner.
func WithOwner(s string) SessionOption { return func(o *sessionOptions) { o.owner = s } }

// WithLockDelay gives the session a lock-delay (0 to 60s, off by
// default): if the session expires while it holds a lock, nobody is
// granted that lock until d has passed, so that a holder that was paused
// or cut off has time to notice before anyone else writes. For resources
// that cannot check fencing tokens; a clean Unlock or Close grants at once.
// Needs every member at cluster version 5.
func WithLockDelay(d time.Duration) SessionOption {
	return func(o *sessionOptions) { o.lockDelay = d }
}

// Session is a lease on the server that the SDK keeps alive, and to which
// the locks of its Mutexes belong. It is safe for concurrent use.
//
// The SDK renews the session every TTL/3 (after a failure, every TTL/10,
// across endpoints). The sessions of one Client share one renewal
// goroutine, which renews all the sessions that are due (and those due
// within TTL/30) with one request to POST /v1/sessions/keepalive; each
// session keeps its own schedule, SafeUntil and end. The session ends:
//
//   - when Close is called: Err is ErrSessionClosed;
//   - when the server answers that the session does not exist (it expired,
//     or an operator closed it with Client.CloseSession): Err matches
//     ErrSessionLost and api.ErrSessionNotFound;
//   - when no renewal is acknowledged before SafeUntil: Err matches
//     ErrSessionLost. The server may still hold the session for a little
//     while, but the SDK can no longer promise it does, so it gives up: the
//     holder must stop acting at once. Keep-alives stop, and the server
//     expires the session (releasing its locks) when its TTL runs out.
//
// At the end the Lost channel of every hold (of its Mutexes, RWMutexes,
// Semaphores and Elections) is closed, then Done, then Ctx is cancelled:
// whoever wakes on Done or Ctx finds every hold already lost. A session
// that ended never comes back: open a new one.
type Session struct {
	c      *Client
	id     api.SessionID
	ttl    time.Duration
	margin time.Duration
	log    *slog.Logger

	ctx    context.Context // cancelled by end
	cancel context.CancelFunc
	done   chan struct{} // closed by end

	loopCtx    context.Context // ends with the session: bounds renewals and watches
	loopCancel context.CancelFunc

	ka       kaState        // guarded by c.keeper.mu
	watchWG  sync.WaitGroup // watch goroutines; Add only under mu while err is nil
	settleWG sync.WaitGroup // background clean-ups (settle); Add only under mu while err is nil
	watching atomic.Bool    // a watch goroutine runs

	// What the watch remembers of the session's locks (see checkLocks).
	// Only the watch goroutine (one at a time) touches it.
	lw lockWatch

	mu        sync.Mutex
	err       error
	safeUntil time.Time
	holds     map[*hold]struct{} // current holds of this session's Mutexes

	closeMu sync.Mutex // serialises Close
	deleted bool       // Close's DELETE succeeded

	// skipRenewals is a test hook: while true, no keep-alive is sent.
	skipRenewals atomic.Bool
}

// safetyMargin is how much earlier than the server's own deadline the SDK
// considers a session unsafe: TTL/10, at least 100ms, at most TTL/2. It
// covers the leader's clock running faster than ours and the delay of the
// keep-alive on its way to the leader (the server's deadline starts when it
// applies the renewal, after we sent it; we count from the send time).
func safetyMargin(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 100*time.Millisecond), ttl/2)
}

// NewSession opens a session (POST /v1/sessions) and starts keeping it
// alive. It is safe for concurrent use.
//
// Opening is safe to retry: the request carries a random client request
// ID, and the server answers a retry with the same ID with the session the
// first attempt opened. Connection errors, 503 answers and unknown outcomes
// are therefore retried like any idempotent write (as long as ctx lasts);
// a failed NewSession leaves at most a session nobody renews, which expires
// after its TTL.
func (c *Client) NewSession(ctx context.Context, opts ...SessionOption) (*Session, error) {
	o := sessionOptions{ttl: DefaultTTL}
	for _, f := range opts {
		f(&o)
	}
	if o.ttl <= 0 {
		return nil, fmt.Errorf("client: new session: %w: TTL %v is not positive", api.ErrInvalidArgument, o.ttl)
	}
	sent := time.Now()
	var resp api.SessionResponse
	_, err := c.do(ctx, call{
		method: http.MethodPost, path: "/v1/sessions", write: true, retryUnknown: true,
		body: api.CreateSessionRequest{TTL: api.Duration(o.ttl), Owner: o.owner, RequestID: newRequestID(), LockDelay: api.Duration(o.lockDelay)},
	}, &resp)
	if err != nil {
		return nil, fmt.Errorf("client: new session: %w", err)
	}
	ttl := o.ttl
	if resp.TTL > 0 {
		ttl = time.Duration(resp.TTL)
	}
	s := &Session{
		c:         c,
		id:        resp.ID,
		ttl:       ttl,
		margin:    safetyMargin(ttl),
		log:       c.log.With("session", resp.ID.String()),
		done:      make(chan struct{}),
		holds:     map[*hold]struct{}{},
		safeUntil: sent.Add(ttl - safetyMargin(ttl)),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.loopCtx, s.loopCancel = context.WithCancel(context.Background())
	c.keeper.add(s)
	s.log.Debug("session opened", "ttl", ttl)
	return s, nil
}

// newRequestID returns 32 random hex digits: a client request ID that no
// other request will carry.
func newRequestID() string {
	var b [16]byte
	_, _ = cryptorand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// ID returns the session's ID.
func (s *Session) ID() api.SessionID { return s.id }

// TTL returns the session's time to live as the server granted it.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done returns a channel closed when the session ends (see Session): lost
// or closed. When it is closed, the Lost channel of every hold the session
// had is closed already.
func (s *Session) Done() <-chan struct{} { return s.done }

// Ctx returns a context cancelled when the session ends, which includes the
// moment SafeUntil passes without a renewal. Pass it to work done under a
// lock of this session.
func (s *Session) Ctx() context.Context { return s.ctx }

// SafeUntil returns the time until which the session is certainly alive on
// the server: the send time of the last acknowledged renewal (or of the
// request that opened it) + TTL − margin, where margin is TTL/10, at least
// 100ms and at most TTL/2, to cover clock drift between this process and
// the leader. It only moves forward.
func (s *Session) SafeUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.safeUntil
}

// safeState returns SafeUntil and whether the session has ended.
func (s *Session) safeState() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.safeUntil, s.err != nil
}

// Err returns nil while the session is alive, and then why it ended: an
// error matching ErrSessionLost (wrapping the cause, e.g. api.ErrSessionNotFound)
// or ErrSessionClosed.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session: it stops the keep-alives, closes Done and
// cancels Ctx (so that work under its locks stops first), then deletes the
// session on the server (DELETE /v1/sessions/{id}), which releases its
// locks. A session the server no longer knows counts as deleted. Close is
// idempotent and safe for concurrent use; if the DELETE fails (ctx ended,
// cluster unavailable) it returns the error, a later Close tries again,
// and otherwise the server expires the session after its TTL.
func (s *Session) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.deleted {
		return nil
	}
	s.end(ErrSessionClosed)
	s.watchWG.Wait()
	s.settleWG.Wait()
	_, err := s.c.do(ctx, call{method: http.MethodDelete, path: api.SessionPath(s.id), write: true, retryUnknown: true}, nil)
	if err != nil && !errors.Is(err, api.ErrSessionNotFound) {
		return fmt.Errorf("client: close session %s: %w", s.id, err)
	}
	s.deleted = true
	s.log.Debug("session closed")
	return nil
}

// abandon stops the keep-alives without deleting the session: the server
// expires it (and whatever it holds) when its TTL runs out. Done closes,
// Ctx is cancelled, every hold is lost, and Err is ErrSessionClosed. A
// later Close still deletes it. It is the Elector's way to let a lease run
// out (ReleaseOnCancel false).
func (s *Session) abandon() {
	s.end(ErrSessionClosed)
	s.watchWG.Wait()
	s.settleWG.Wait()
}

// end ends the session with err (the first reason wins): every hold is
// lost, Done closes, Ctx is cancelled, the keeper stops renewing it. It must
// not be called with the keeper's lock held.
func (s *Session) end(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	holds := s.holds
	s.holds = nil
	s.mu.Unlock()
	// Every Lost closes before Done, and Done before Ctx is cancelled: code
	// woken by Done finds every hold already lost, and code woken by Ctx
	// finds the session and its holds already ended.
	for h := range holds {
		h.lose()
	}
	close(s.done)
	s.cancel()
	s.loopCancel()
	s.c.keeper.remove(s)
	if !errors.Is(err, ErrSessionClosed) {
		s.log.Info("session lost", "error", err)
	}
}

// lost ends the session because the server said it does not exist.
func (s *Session) lost(cause error) { s.end(&lostError{cause: cause}) }

// renewOne sends one keep-alive of this session alone (POST
// /v1/sessions/{id}/keepalive, with the transport's retries), bounded by
// ctx. It reports whether it was acknowledged; a session the server does
// not know is lost.
func (s *Session) renewOne(ctx context.Context) bool {
	_, err := s.c.do(ctx, call{method: http.MethodPost, path: api.SessionPath(s.id) + "/keepalive", write: true, retryUnknown: true}, nil)
	if err != nil {
		if errors.Is(err, api.ErrSessionNotFound) {
			s.lost(err)
		} else if ctx.Err() == nil {
			s.log.Debug("keep-alive failed", "error", err)
		}
		return false
	}
	return true
}

// acknowledged moves SafeUntil after a renewal sent at sent was
// acknowledged.
func (s *Session) acknowledged(sent time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if su := sent.Add(s.ttl - s.margin); s.err == nil && su.After(s.safeUntil) {
		s.safeUntil = su
	}
}

// startWatch runs watch in a goroutine after a renewal, unless the session
// holds nothing, has ended, or a watch still runs. The watch starts after
// a random delay of up to a sixth of the TTL (half the renewal interval):
// a Client renews its sessions together, and their watches would
// otherwise all reach the server at the same moment.
func (s *Session) startWatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || len(s.holds) == 0 || !s.watching.CompareAndSwap(false, true) {
		return
	}
	s.watchWG.Add(1)
	delay := rand.N(s.ttl/6 + 1)
	go func() {
		defer s.watchWG.Done()
		defer s.watching.Store(false)
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.loopCtx.Done():
			return
		}
		s.watch()
	}()
}

// watch checks that the session still holds what its Mutexes, RWMutexes,
// Semaphores and Elections think they hold. For locks (exclusive or
// shared): a stale read of the session (cheap, answered by the leader when
// known); a lock missing from it is confirmed with a linearizable read of
// the lock before its hold is declared lost, so a lagging node never
// causes a false loss. For leaderships and permits: a linearizable read of
// the election or semaphore (the session's answer does not list them). A
// hold being released (Unlock, Release, Resign) is never declared lost.
func (s *Session) watch() {
	var holds []*hold
	ctx, cancel := context.WithDeadline(s.loopCtx, s.SafeUntil())
	defer cancel()
	for _, h := range s.currentHolds() {
		switch {
		case h.election:
			s.watchElection(ctx, h)
		case h.semaphore:
			s.watchPermit(ctx, h)
		default:
			holds = append(holds, h)
		}
	}
	if len(holds) == 0 {
		return
	}
	holds, locks, err := s.checkLocks(ctx, holds)
	if err != nil {
		// A stale "not found" is not proof; the next keep-alive decides.
		return
	}
	for _, h := range holds {
		// locks is sorted: a session holding many locks costs O(n log n)
		// here, not O(n²). Were it not sorted, a miss is only confirmed
		// by the read below, never taken for a loss.
		if _, ok := slices.BinarySearch(locks, h.name); ok {
			continue
		}
		l, err := s.c.LockInfo(ctx, h.name)
		if err != nil || h.releasing.Load() {
			continue
		}
		if !holdsLock(l, s.id, h.token) {
			s.log.Info("lock lost", "lock", h.name, "token", h.token)
			s.loseHold(h)
		}
	}
}

// locksPerCheck is about how many of a session's locks one watch checks:
// a session holding more is checked a part at a time, one part per
// keep-alive.
const locksPerCheck = 512

// lockWatch is what the watch remembers between checks of the session's
// locks: how they are split into parts, the part to check next, and for
// each part the index of the session's list (api.SessionLocks.ChangedAt)
// when that part was last checked.
type lockWatch struct {
	parts int
	next  int
	seen  []uint64
	known []bool
}

// lockParts is the number of parts a session holding n locks is checked
// in: a power of two, with about locksPerCheck locks or fewer in each, at
// most api.MaxLockParts.
func lockParts(n int) int {
	k := 1
	for k < api.MaxLockParts && n > k*locksPerCheck {
		k *= 2
	}
	return k
}

// checkLocks reads the part of the session's locks that this watch checks
// and returns the holds of that part and the locks the server lists there
// (sorted); both nil when the list has not changed since the part was last
// checked. It reads GET /v1/sessions/{id}/locks (stale) with If-None-Match:
// while the session's locks have not changed, the server answers 304 and
// sends nothing, and a session holding more than locksPerCheck locks is
// checked one part per keep-alive (?parts=&part=), so that a session
// holding thousands of locks does not cost the server, the network and
// this process the whole list after every keep-alive (a lost lock is then
// noticed within as many keep-alives as there are parts). A server without
// that endpoint is asked for the whole session (GET /v1/sessions/{id}), as
// before, and every hold is checked. Watch goroutine only.
func (s *Session) checkLocks(ctx context.Context, holds []*hold) ([]*hold, []string, error) {
	c := s.c
	if c.noSessionLocks.Load() {
		info, err := c.sessionInfo(ctx, s.id, true)
		if err != nil {
			return nil, nil, err
		}
		return holds, info.Locks, nil
	}
	w := &s.lw
	if k := lockParts(len(holds)); k != w.parts {
		*w = lockWatch{parts: k, seen: make([]uint64, k), known: make([]bool, k)}
	}
	part := w.next
	cl := call{method: http.MethodGet, path: api.SessionLocksPath(s.id), query: staleQuery}
	if w.parts > 1 {
		cl.query = url.Values{api.QueryConsistency: {api.ConsistencyStale},
			api.QueryParts: {strconv.Itoa(w.parts)}, api.QueryPart: {strconv.Itoa(part)}}
		holds = slices.DeleteFunc(holds, func(h *hold) bool { return api.LockPart(h.name, w.parts) != part })
	}
	if w.known[part] {
		cl.ifNoneMatch = `"` + strconv.FormatUint(w.seen[part], 10) + `"`
	}
	var out api.SessionLocks
	_, err := c.do(ctx, cl, &out)
	var ae *api.Error
	switch {
	case err == errNotModified:
		w.next = (part + 1) % w.parts
		return nil, nil, nil
	case err == nil:
		w.seen[part], w.known[part] = out.ChangedAt, true
		w.next = (part + 1) % w.parts
		return holds, out.Locks, nil
	case errors.As(err, &ae) && (ae.Code == api.CodeNotFound || ae.Code == api.CodeMethodNotAllowed):
		c.noSessionLocks.Store(true) // a server from before the endpoint
		return s.checkLocks(ctx, holds)
	}
	return nil, nil, err
}

// staleQuery asks for a stale read. Never modify it.
var staleQuery = url.Values{api.QueryConsistency: {api.ConsistencyStale}}

// holdsLock reports whether session id holds l with token, exclusively or
// shared.
func holdsLock(l *api.Lock, id api.SessionID, token uint64) bool {
	if h := l.Holder; h != nil && h.Session == id && h.Token == token {
		return true
	}
	for _, h := range l.Holders {
		if h.Session == id && h.Token == token {
			return true
		}
	}
	return false
}

// watchPermit declares permit h lost when a linearizable read of the
// semaphore does not list it, unless h is being released.
func (s *Session) watchPermit(ctx context.Context, h *hold) {
	sem, err := s.c.SemaphoreInfo(ctx, h.name)
	if err != nil || h.releasing.Load() {
		return
	}
	for _, p := range sem.Holders {
		if p.Session == s.id && p.Token == h.token {
			return
		}
	}
	s.log.Info("permit lost", "semaphore", h.name, "token", h.token)
	s.loseHold(h)
}

// watchElection declares leadership h lost when a linearizable read of the
// election shows another leader, another term or nobody, unless h is being
// resigned (then the answer is the resign's doing).
func (s *Session) watchElection(ctx context.Context, h *hold) {
	el, err := s.c.ElectionInfo(ctx, h.name)
	if err != nil || h.releasing.Load() {
		return
	}
	if l := el.Leader; l == nil || l.Session != s.id || l.Term != h.token {
		s.log.Info("leadership lost", "election", h.name, "term", h.token)
		s.loseHold(h)
	}
}

// hold is one grant held by a Mutex or an RWMutex (shared set for a
// shared hold), one permit of a Semaphore (semaphore set), or one
// leadership of an Election (election set, token the term): its lost
// channel closes when the hold ends other than by Unlock, Release or
// Resign.
type hold struct {
	name      string
	token     uint64
	election  bool
	semaphore bool
	shared    bool
	lost      chan struct{}
	once      sync.Once
	// releasing is set while an Unlock, Release or Resign of this hold is
	// under way: the watchers do not take its effect for a loss.
	releasing atomic.Bool
	// releaseUnknown: an Unlock or Release of this hold failed with an
	// unknown outcome, so a later one that is answered not_holder is done.
	// Only the holder's turn (acquirer.release) touches it.
	releaseUnknown bool
}

// mode is the lock mode of the hold: "" (exclusive) or api.ModeShared.
func (h *hold) mode() string {
	if h.shared {
		return api.ModeShared
	}
	return ""
}

func (h *hold) lose() { h.once.Do(func() { close(h.lost) }) }

func (h *hold) isLost() bool {
	select {
	case <-h.lost:
		return true
	default:
		return false
	}
}

// addHold registers h, or returns the session's error if it has ended.
func (s *Session) addHold(h *hold) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.holds[h] = struct{}{}
	return nil
}

// removeHold unregisters h without losing it (Unlock).
func (s *Session) removeHold(h *hold) {
	s.mu.Lock()
	delete(s.holds, h)
	s.mu.Unlock()
}

// loseHold closes h's lost channel if h is still registered (a hold that
// Unlock ended meanwhile is left alone).
func (s *Session) loseHold(h *hold) {
	s.mu.Lock()
	_, ok := s.holds[h]
	delete(s.holds, h)
	s.mu.Unlock()
	if ok {
		h.lose()
	}
}

func (s *Session) currentHolds() []*hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := make([]*hold, 0, len(s.holds))
	for h := range s.holds {
		hs = append(hs, h)
	}
	return hs
}
