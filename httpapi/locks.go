package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

const (
	exampleAcquire = `{"session":"42","wait":"5s"} or {"ttl":"30s","owner":"job-1"}`
	exampleRelease = `{"session":"42","token":17}`
	// subscribeBuf is the event buffer of a waiting acquire. A waiter that
	// falls further behind loses its subscription and gives up early (it
	// cancels, and answers a grant that won the race).
	subscribeBuf = 1024
)

// lockName returns the lock name of a /v1/locks/* path and, when withAction,
// the action (the last raw path segment). The name is percent-decoded after
// the split, so "a%2Fb/acquire" is lock "a/b" and "x%2Facquire" has no action.
func lockName(c echo.Context, withAction bool) (name, action string, err error) {
	raw := c.Param("*")
	if withAction {
		i := strings.LastIndexByte(raw, '/')
		if i < 0 {
			c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
			return "", "", api.Errorf(api.CodeMethodNotAllowed, "POST needs an action: POST /v1/locks/{name}/acquire or /v1/locks/{name}/release")
		}
		raw, action = raw[:i], raw[i+1:]
	}
	name, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return "", "", api.Errorf(api.CodeInvalidArgument, "lock name %q in the path is not valid percent-encoding", raw)
	}
	if err := api.ValidateLockName(name); err != nil {
		return "", "", api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	return name, action, nil
}

// lockAction: POST /v1/locks/{name}/acquire and /v1/locks/{name}/release.
func (s *Server) lockAction(c echo.Context) error {
	raw := c.Param("*")
	i := strings.LastIndexByte(raw, '/')
	switch {
	case i >= 0 && raw[i+1:] == "acquire", i >= 0 && raw[i+1:] == "release":
	default:
		c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
		return api.Errorf(api.CodeMethodNotAllowed, "method POST is not allowed on %s: POST to /v1/locks/{name}/acquire or /v1/locks/{name}/release", c.Request().URL.Path)
	}
	name, action, err := lockName(c, true)
	if err != nil {
		return err
	}
	if action == "acquire" {
		return s.acquire(c, name)
	}
	return s.release(c, name)
}

// getLock: GET /v1/locks/{name} → 200 api.Lock (holder null and no waiters
// for a free lock).
func (s *Server) getLock(c echo.Context) error {
	name, _, err := lockName(c, false)
	if err != nil {
		return err
	}
	out := api.Lock{Name: name, Waiters: []api.Waiter{}}
	if err := s.read(c, func(m *lock.Machine) {
		if li, ok := m.Lock(name); ok {
			out = apiLock(li)
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// listLocks: GET /v1/locks?prefix=p → 200 api.LockList sorted by name.
func (s *Server) listLocks(c echo.Context) error {
	prefix := c.QueryParam(api.QueryPrefix)
	if err := api.ValidateLockPrefix(prefix); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	out := api.LockList{Locks: []api.Lock{}}
	if err := s.read(c, func(m *lock.Machine) {
		for _, li := range m.Locks(prefix) {
			out.Locks = append(out.Locks, apiLock(li))
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

func apiLock(li lock.LockInfo) api.Lock {
	out := api.Lock{Name: li.Name, Waiters: make([]api.Waiter, 0, len(li.Waiters))}
	if li.Holder != nil {
		out.Holder = apiHolder(li.Holder)
	}
	for _, w := range li.Waiters {
		out.Waiters = append(out.Waiters, api.Waiter{Session: api.SessionID(w.Session), Owner: w.Owner, Since: unixTime(w.Since)})
	}
	return out
}

// release: POST /v1/locks/{name}/release {"session","token"} → 200
// api.LockGrant (the released token), 409 not_holder when the session does
// not hold the lock or the token is stale (nothing changes: a retried release
// that already succeeded answers not_holder).
func (s *Server) release(c echo.Context, name string) error {
	var req api.ReleaseRequest
	if err := decodeBody(c, &req, true, exampleRelease); err != nil {
		return err
	}
	if req.Session == 0 {
		return api.Errorf(api.CodeInvalidArgument, "session is required, e.g. %s", exampleRelease)
	}
	if req.Token == 0 {
		return api.Errorf(api.CodeInvalidArgument, "token is required and must be > 0: the fencing token of the acquire, e.g. %s", exampleRelease)
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.node.Propose(ctx, &lock.Command{Op: lock.OpRelease, Session: uint64(req.Session), Name: name, Token: req.Token})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if res.Code != lock.CodeOK {
		return resultError(res, name, uint64(req.Session))
	}
	return writeGrant(c, name, uint64(req.Session), req.Token)
}

// acquire serves POST /v1/locks/{name}/acquire.
//
// With a session it acquires lock name for that session; with a ttl (and no
// session) it opens an ephemeral session bound to the lock, closed when the
// lock is released. A retry by a session that already holds the lock answers
// the same grant and token; a retry by a queued session keeps its place.
//
// Without a wait it tries once: 200 with the token, or 409 lock_held with the
// holder (for an ephemeral acquire nothing is created then).
//
// With a wait, if the session is queued, the handler subscribes to the
// node's events from the state right after the entry that queued it
// (Proposer.ReadWatch), so a grant cannot slip between the two, and waits
// for its lock_granted event (200), or for its session to expire or be
// closed (404 session_not_found). Then:
//
//   - The wait runs out (or the subscription falls behind and is dropped):
//     the handler proposes a cancel, which takes the session out of the
//     queue. If the grant won the race, the cancel reports the token and the
//     answer is 200 with it: the caller holds the lock. Otherwise 409
//     lock_held with the current holder. An ephemeral session is cancelled
//     the same way and then closed, unless it was granted.
//   - The client goes away (its request context ends): the handler proposes
//     the cancel with a fresh context bounded by RequestTimeout, so the
//     session does not stay queued for a caller that is gone. It never
//     releases a lock that was granted meanwhile: the session's owner may
//     have retried on another node and legitimately hold it; that owner
//     learns of the grant from a retried acquire, and otherwise the lock
//     returns when the session ends. An ephemeral session whose client has
//     gone is closed, which releases anything it was granted: nobody else can
//     know its token.
//
// If the cancel itself fails (the node lost leadership), the answer is 503
// timeout: the session may still be queued and may yet be granted, and
// retrying the acquire (which keeps its place) tells which.
func (s *Server) acquire(c echo.Context, name string) error {
	var req api.AcquireRequest
	if err := decodeBody(c, &req, true, exampleAcquire); err != nil {
		return err
	}
	if (req.Session == 0) == (req.TTL == 0) {
		return api.Errorf(api.CodeInvalidArgument, "give exactly one of session (acquire for an existing session) or ttl (open an ephemeral session bound to this lock), e.g. %s", exampleAcquire)
	}
	ephemeral := req.Session == 0
	if ephemeral {
		if err := s.checkTTL("ttl", req.TTL); err != nil {
			return err
		}
		if err := checkOwner(req.Owner); err != nil {
			return err
		}
	} else if req.Owner != "" {
		return api.Errorf(api.CodeInvalidArgument, "owner is only for an ephemeral acquire (with ttl); a session's owner is set when it is opened")
	}
	if err := s.checkWait(req.Wait); err != nil {
		return err
	}
	wait := time.Duration(req.Wait)
	start := time.Now()

	cmd := &lock.Command{Op: lock.OpAcquire, Session: uint64(req.Session), Name: name, Wait: wait > 0}
	if ephemeral {
		cmd.TTL = int64(req.TTL)
		cmd.Owner = req.Owner
	}
	ctx, cancel := s.writeCtx(c)
	res, idx, err := s.node.Propose(ctx, cmd)
	cancel()
	if err != nil {
		return s.proposeFailed(c, err, wait)
	}
	sid := res.Session
	if sid == 0 {
		sid = uint64(req.Session)
	}
	switch res.Code {
	case lock.CodeOK:
		return granted(c, name, sid, res.Token)
	case lock.CodeQueued:
	default:
		return resultError(res, name, sid)
	}

	// Queued. Subscribe only now (most acquires are granted at once and
	// never need the events): ReadWatch reads this node's state, which
	// already holds the entry that queued the session, and delivers every
	// event after exactly that state. What happened in between (a grant,
	// the session's end) is in the state.
	w := waiter{s: s, c: c, name: name, session: sid, ephemeral: ephemeral, holder: res.Holder, wait: wait}
	var (
		token          uint64
		gone, dequeued bool
	)
	ctx, cancel = s.writeCtx(c)
	events, unsubscribe, err := s.node.ReadWatch(ctx, true, func(m *lock.Machine) {
		if _, ok := m.Session(sid); !ok {
			gone = true
			return
		}
		li, _ := m.Lock(name)
		if li.Holder != nil && li.Holder.Session == sid {
			token = li.Holder.Token
			return
		}
		dequeued = !slices.ContainsFunc(li.Waiters, func(w lock.Waiter) bool { return w.Session == sid })
	}, subscribeBuf)
	cancel()
	if err != nil {
		if c.Request().Context().Err() != nil {
			w.abandon()
			return c.Request().Context().Err()
		}
		return w.giveUp()
	}
	defer unsubscribe()
	switch {
	case gone:
		return api.Errorf(api.CodeSessionNotFound, "session %d expired or was closed while it waited for lock %q", sid, name)
	case token != 0:
		return granted(c, name, sid, token)
	case dequeued:
		// Taken out of the queue by another request of the same session
		// (a cancel, or a grant and a release): settle it as a wait that
		// ran out.
		return w.giveUp()
	}
	timer := time.NewTimer(wait - time.Since(start))
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return w.giveUp()
			}
			if ev.Revision <= idx || ev.Session != sid {
				continue
			}
			switch ev.Type {
			case lock.EventLockGranted:
				if ev.Name == name {
					return granted(c, name, sid, ev.Token)
				}
			case lock.EventSessionExpired, lock.EventSessionClosed:
				return api.Errorf(api.CodeSessionNotFound, "session %d expired or was closed while it waited for lock %q", sid, name)
			}
		case <-timer.C:
			return w.giveUp()
		case <-c.Request().Context().Done():
			w.abandon()
			return c.Request().Context().Err()
		}
	}
}

func granted(c echo.Context, name string, session, token uint64) error {
	return writeGrant(c, name, session, token)
}

// writeGrant answers 200 with api.LockGrant{name, session, token}, the
// answer of every successful acquire and release, without encoding/json's
// reflection: a valid lock name needs no escaping in a JSON string, so the
// bytes are those json.Marshal would give.
func writeGrant(c echo.Context, name string, session, token uint64) error {
	if api.ValidateLockName(name) != nil {
		return writeJSON(c, http.StatusOK, api.LockGrant{Name: name, Session: api.SessionID(session), Token: token})
	}
	b := make([]byte, 0, 64+len(name))
	b = append(b, `{"name":"`...)
	b = append(b, name...)
	b = append(b, `","session":"`...)
	b = strconv.AppendUint(b, session, 10)
	b = append(b, `","token":`...)
	b = strconv.AppendUint(b, token, 10)
	b = append(b, '}')
	return c.JSONBlob(http.StatusOK, b)
}

// waiter is a queued acquire that ends without its grant event.
type waiter struct {
	s         *Server
	c         echo.Context
	name      string
	session   uint64
	ephemeral bool
	holder    *lock.Holder // the holder when the session was queued
	wait      time.Duration
}

// giveUp leaves the queue after the wait ran out; see Server.acquire.
func (w waiter) giveUp() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.c.Request().Context()), w.s.cfg.RequestTimeout)
	defer cancel()
	res, _, err := w.s.node.Propose(ctx, &lock.Command{Op: lock.OpCancel, Session: w.session, Name: w.name})
	if err != nil {
		w.s.log.Warn("cancel a wait", "lock", w.name, "session", w.session, "error", err)
		return api.Errorf(api.CodeTimeout, "the wait of %v for lock %q ran out, but leaving its queue failed (%v): the session may still be queued and may yet be granted the lock; retrying the same acquire is safe and tells", w.wait, w.name, err)
	}
	switch res.Code {
	case lock.CodeOK:
		if res.Token > 0 {
			return granted(w.c, w.name, w.session, res.Token)
		}
	case lock.CodeSessionNotFound:
		return api.Errorf(api.CodeSessionNotFound, "session %d expired or was closed while it waited for lock %q", w.session, w.name)
	default:
		return resultError(res, w.name, w.session)
	}
	if w.ephemeral {
		res, _, err := w.s.node.Propose(ctx, &lock.Command{Op: lock.OpCloseSession, Session: w.session})
		if err != nil || (res.Code != lock.CodeOK && res.Code != lock.CodeSessionNotFound) {
			// It is out of the queue; left open, it expires after its TTL.
			w.s.log.Warn("close an ephemeral session after its wait", "lock", w.name, "session", w.session, "code", res.Code.String(), "error", err)
		}
	}
	holder := w.holder
	_ = w.s.node.Read(ctx, true, func(m *lock.Machine) {
		if li, ok := m.Lock(w.name); ok && li.Holder != nil {
			h := *li.Holder
			holder = &h
		}
	})
	return lockHeld(w.name, holder, "; the wait of "+w.wait.String()+" ran out and the session left the queue")
}

// abandon leaves the queue after the client went away; see Server.acquire.
func (w waiter) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.RequestTimeout)
	defer cancel()
	cmd := &lock.Command{Op: lock.OpCancel, Session: w.session, Name: w.name}
	if w.ephemeral {
		cmd = &lock.Command{Op: lock.OpCloseSession, Session: w.session}
	}
	if _, _, err := w.s.node.Propose(ctx, cmd); err != nil {
		w.s.log.Warn("leave the queue of a client that has gone", "lock", w.name, "session", w.session, "error", err)
	}
}
