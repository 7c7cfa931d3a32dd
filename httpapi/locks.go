package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// lockName returns the lock name of a /v1/locks/* path and, when withAction,
// the action (the last raw path segment). The name is percent-decoded after
// the split, so "a%2Fb/acquire" is lock "a/b" and "x%2Facquire" has no action.
func lockName(c echo.Context, withAction bool) (name, action string, err error) {
	return pathName(c, withAction, "lock", "POST needs an action: POST /v1/locks/{name}/acquire or /v1/locks/{name}/release")
}

// pathName is lockName for the wildcard path of any kind of name (a lock,
// a semaphore): noAction is the 405's message when the action is missing.
func pathName(c echo.Context, withAction bool, kind, noAction string) (name, action string, err error) {
	raw := c.Param("*")
	if withAction {
		i := strings.LastIndexByte(raw, '/')
		if i < 0 {
			c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
			return "", "", api.Errorf(api.CodeMethodNotAllowed, "%s", noAction)
		}
		raw, action = raw[:i], raw[i+1:]
	}
	name, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return "", "", api.Errorf(api.CodeInvalidArgument, "%s name %q in the path is not valid percent-encoding", kind, raw)
	}
	if err := api.ValidateLockName(name); err != nil {
		if kind != "lock" {
			return "", "", api.Errorf(api.CodeInvalidArgument, "%s: %v", kind, err)
		}
		return "", "", api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	return name, action, nil
}

// lockAction: POST /v1/locks/{name}/acquire, /release and /cancel.
func (s *Server) lockAction(c echo.Context) error {
	raw := c.Param("*")
	i := strings.LastIndexByte(raw, '/')
	switch {
	case i >= 0 && (raw[i+1:] == "acquire" || raw[i+1:] == "release" || raw[i+1:] == "cancel" || raw[i+1:] == "check"):
	default:
		c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
		return api.Errorf(api.CodeMethodNotAllowed, "method POST is not allowed on %s: POST to /v1/locks/{name}/acquire, /release, /cancel or /check", c.Request().URL.Path)
	}
	name, action, err := lockName(c, true)
	if err != nil {
		return err
	}
	switch action {
	case "acquire":
		return s.acquire(c, name)
	case "release":
		return s.release(c, name)
	case "check":
		return s.checkToken(c, name)
	}
	return s.cancelQueue(c, &lockQueue, name, func(left bool, held stake) error {
		out := api.CancelResponse{Left: left}
		if held.grant != nil {
			out.Grant = held.lockGrant
		}
		return writeJSON(c, http.StatusOK, out)
	})
}

// getLock: GET /v1/locks/{name} → 200 api.Lock (holder null and no waiters
// for a free lock).
func (s *Server) getLock(c echo.Context) error {
	name, _, err := lockName(c, false)
	if err != nil {
		return err
	}
	if err := s.allow(c, lock.ActionRead, name); err != nil {
		return err
	}
	out := api.Lock{Name: name, Holders: []api.Holder{}, Waiters: []api.Waiter{}}
	if err := s.read(c, func(m *lock.Machine) {
		if li, ok := m.Lock(name); ok {
			out = apiLock(li)
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// checkToken: POST /v1/locks/{name}/check {"token"} → 200
// api.CheckResponse: whether token is the lock's current fencing token.
// Always linearizable (a ReadIndex round, whatever ?consistency says): a
// stale "current" would defeat the check. Needs read permission on name.
func (s *Server) checkToken(c echo.Context, name string) error {
	var req api.CheckRequest
	if err := decodeBody(c, &req, true, api.ExampleCheck); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if err := s.allow(c, lock.ActionRead, name); err != nil {
		return err
	}
	out := api.CheckResponse{Name: name, Token: req.Token}
	if err := s.readAt(c, false, func(m *lock.Machine) {
		li, ok := m.Lock(name)
		if !ok {
			return
		}
		if li.Holder != nil {
			out.Holder = apiHolder(li.Holder)
		} else if len(li.Holders) > 0 {
			out.Holders = apiHolders(li.Holders, true)
		}
		for _, h := range li.Holders {
			out.Current = out.Current || (h.Token == req.Token && (req.Session == 0 || h.Session == uint64(req.Session)))
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// listLocks: GET /v1/locks?prefix=p&limit=n&after=name → 200 api.LockList:
// a page of at most limit locks sorted by name, and the cursor of the next.
// The read costs what it returns (lock.Machine.ListLocks).
func (s *Server) listLocks(c echo.Context) error {
	prefix := c.QueryParam(api.QueryPrefix)
	if err := api.ValidateLockPrefix(prefix); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	if err := s.allowPrefix(c, lock.ActionRead, prefix); err != nil {
		return err
	}
	limit, after, err := listPage(c)
	if err != nil {
		return err
	}
	var (
		infos []lock.LockInfo
		more  bool
	)
	if err := s.read(c, func(m *lock.Machine) { infos, more = m.ListLocks(prefix, after, limit) }); err != nil {
		return err
	}
	out := api.LockList{Locks: make([]api.Lock, 0, len(infos))}
	for _, li := range infos {
		out.Locks = append(out.Locks, apiLock(li))
	}
	if more {
		out.Next = infos[len(infos)-1].Name
	}
	return writeJSON(c, http.StatusOK, out)
}

func apiLock(li lock.LockInfo) api.Lock {
	out := api.Lock{Name: li.Name, Holders: apiHolders(li.Holders, true), Waiters: apiWaiters(li.Waiters)}
	if li.Holder != nil {
		out.Holder = apiHolder(li.Holder)
	}
	if li.DelayedUntil != 0 {
		t := unixTime(li.DelayedUntil)
		out.DelayedUntil = &t
	}
	return out
}

// apiWaiters converts ws (never nil), with the mode of shared waiters.
func apiWaiters(ws []lock.Waiter) []api.Waiter {
	out := make([]api.Waiter, 0, len(ws))
	for _, w := range ws {
		aw := api.Waiter{Session: api.SessionID(w.Session), Owner: w.Owner, Since: unixTime(w.Since)}
		if w.Mode == lock.Shared {
			aw.Mode = api.ModeShared
		}
		out = append(out, aw)
	}
	return out
}

// release: POST /v1/locks/{name}/release {"session","token"} (or
// {"force":true}, admin only: whoever holds it) → 200
// api.LockGrant (the released token), 409 not_holder when the session does
// not hold the lock or the token is stale (nothing changes: a retried release
// that already succeeded answers not_holder).
func (s *Server) release(c echo.Context, name string) error {
	var req api.ReleaseRequest
	if err := decodeBody(c, &req, true, api.ExampleRelease); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	cmd := &lock.Command{Op: lock.OpRelease, Session: uint64(req.Session), Name: name, Token: req.Token}
	if req.Force {
		cmd = &lock.Command{Op: lock.OpRelease, Name: name, Force: true}
	}
	res, _, err := s.propose(c, ctx, cmd)
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if req.Force && res.Code == lock.CodeNotHolder {
		return api.Errorf(api.CodeNotHolder, "lock %q is not held; nothing changed", name)
	}
	if res.Code != lock.CodeOK {
		return resultError(res, name, uint64(req.Session))
	}
	if req.Force {
		return granted(c, name, res.Session, res.Token)
	}
	return granted(c, name, uint64(req.Session), req.Token)
}

// acquire serves POST /v1/locks/{name}/acquire.
//
// With a session it acquires lock name for that session; with a ttl (and no
// session) it opens an ephemeral session bound to the lock, closed when the
// lock is released. A retry by a session that already holds the lock answers
// the same grant and token; a retry by a queued session keeps its place.
//
// Without a wait it tries once: 200 with the token, or 409 lock_held with the
// holder (for an ephemeral acquire nothing is created then). With a wait, a
// queued session waits on the wait path (awaitGrant): 200 with the grant,
// 409 lock_held when the wait runs out ("queued": true with keep_queued),
// 404 when the session ends.
func (s *Server) acquire(c echo.Context, name string) error {
	var req api.AcquireRequest
	if err := decodeBody(c, &req, true, api.ExampleAcquire); err != nil {
		return err
	}
	if err := req.Validate(s.limits()); err != nil {
		return err
	}
	wait := time.Duration(req.Wait)
	start := time.Now()
	ephemeral := req.Session == 0
	// keep_queued without a wait joins the queue and answers at once.
	cmd := &lock.Command{Op: lock.OpAcquire, Session: uint64(req.Session), Name: name, Wait: wait > 0 || req.KeepQueued}
	if req.Mode == api.ModeShared {
		cmd.Mode = lock.Shared
	}
	if ephemeral {
		cmd.TTL = int64(req.TTL)
		cmd.Owner = req.Owner
	}
	ctx, cancel := s.writeCtx(c)
	res, err := s.acquireOnce(c, ctx, cmd, req.KeepQueued && wait > 0)
	cancel()
	if err != nil {
		return s.proposeFailed(c, err, wait)
	}
	sid := res.Session
	if sid == 0 {
		sid = uint64(req.Session)
	}
	switch {
	case res.Code == lock.CodeOK:
		return writeJSON(c, http.StatusOK, lockGrant(name, sid, res.Token, cmd.Mode))
	case res.Code == lock.CodeQueued && wait == 0:
		return queuedError(res, name, sid)
	case res.Code == lock.CodeQueued:
		return s.awaitGrant(c, queueWait{kind: &lockQueue, name: name, session: sid, wait: wait, start: start,
			keep: req.KeepQueued, ephemeral: ephemeral})
	}
	return resultError(res, name, sid)
}

// acquireOnce proposes the acquire cmd and returns its result. When
// retry, the request is a wait with keep_queued, which most often follows
// a request that queued the session already (the SDK's Lock joins the
// queue in its first, batched, try): then the entry would change nothing,
// and its answer is read instead (lock.Machine.AcquireRetry) through a
// linearizable read (ReadIndex: a heartbeat round, no write to any disk),
// which gives the state at a moment within this request, as the entry
// would. Anything else goes through the log.
func (s *Server) acquireOnce(c echo.Context, ctx context.Context, cmd *lock.Command, retry bool) (lock.Result, error) {
	cmd.Principal = principalOf(c)
	cmd.TokenID = tokenOf(c)
	if retry {
		var res lock.Result
		var ok bool
		err := s.node.Read(ctx, false, func(m *lock.Machine) { res, ok = m.AcquireRetry(cmd) })
		if err == nil && ok {
			return res, nil
		}
	}
	res, _, err := s.propose(c, ctx, cmd)
	return res, err
}

// queuedError is the answer of a keep_queued acquire without a wait that
// left the session in the queue (res, CodeQueued): 409 lock_held with
// "queued": true.
func queuedError(res lock.Result, name string, session uint64) error {
	err := resultError(res, name, session)
	var e *api.Error
	if errors.As(err, &e) {
		e.Message += "; the session keeps its place in the queue (keep_queued): acquire again with a wait to wait for the grant, or cancel"
		e.Queued = true
	}
	return err
}

// granted answers 200 with api.LockGrant{name, session, token}, the answer
// of every successful release (and exclusive acquire).
func granted(c echo.Context, name string, session, token uint64) error {
	return writeJSON(c, http.StatusOK, lockGrant(name, session, token, lock.Exclusive))
}

// lockGrant is the grant of lock name to session with token in mode.
func lockGrant(name string, session, token uint64, mode lock.Mode) api.LockGrant {
	g := api.LockGrant{Name: name, Session: api.SessionID(session), Token: token}
	if mode == lock.Shared {
		g.Mode = api.ModeShared
	}
	return g
}

// lockQueue is the queue of a lock for the wait path.
var lockQueue = queueKind{
	kind: lock.KindLock,
	join: "acquire",
	stake: func(ps lock.PlaceState, name string, session uint64) stake {
		return lockStake(name, session, ps.Holder, ps.Held)
	},
	leave: func(name string, session uint64) *lock.Command {
		return &lock.Command{Op: lock.OpCancel, Session: session, Name: name}
	},
	cancelled: func(res lock.Result, name string, session uint64) (bool, stake) {
		var st stake
		if res.Token != 0 {
			st = lockStake(name, session, nil, &lock.Holder{Session: session, Token: res.Token, Mode: res.Mode})
		}
		return leftQueue(res.Events, lock.KindLock, name, session), st
	},
}

// lockStake is the stake of session in lock name whose exclusive holder
// is h; held is the session's own hold (any mode), nil when it has none.
func lockStake(name string, session uint64, h, held *lock.Holder) stake {
	st := stake{refusal: func(suffix string, queued bool) error {
		var e *api.Error
		if h == nil && held == nil {
			e = api.Errorf(api.CodeLockHeld, "lock %q is held by another session, or shared with a request waiting ahead%s", name, suffix)
		} else {
			e = lockHeld(name, h, suffix)
		}
		e.Queued = queued
		return e
	}}
	if held != nil {
		g := lockGrant(name, session, held.Token, held.Mode)
		st.lockGrant = &g
		st.grant = func(c echo.Context) error { return writeJSON(c, http.StatusOK, g) }
	}
	return st
}
