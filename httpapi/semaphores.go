package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// Counting semaphores (api/semaphores.go): the same wait path as locks,
// their own namespace, the permissions of locks.

// semName returns the semaphore name of a /v1/semaphores/* path and, when
// withAction, the action, as lockName does.
func semName(c echo.Context, withAction bool) (name, action string, err error) {
	return pathName(c, withAction, "semaphore", "POST needs an action: POST /v1/semaphores/{name}/acquire, /release, /cancel or /check")
}

// semAction: POST /v1/semaphores/{name}/acquire, /release, /cancel, /check.
func (s *Server) semAction(c echo.Context) error {
	raw := c.Param("*")
	if i := strings.LastIndexByte(raw, '/'); i < 0 || !(raw[i+1:] == "acquire" || raw[i+1:] == "release" || raw[i+1:] == "cancel" || raw[i+1:] == "check") {
		c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
		return api.Errorf(api.CodeMethodNotAllowed, "method POST is not allowed on %s: POST to /v1/semaphores/{name}/acquire, /release, /cancel or /check", c.Request().URL.Path)
	}
	name, action, err := semName(c, true)
	if err != nil {
		return err
	}
	switch action {
	case "acquire":
		return s.semAcquire(c, name)
	case "release":
		return s.semRelease(c, name)
	case "check":
		return s.semCheck(c, name)
	}
	return s.cancelQueue(c, &semQueue, name, func(left bool, held stake) error {
		return writeJSON(c, http.StatusOK, api.SemaphoreCancelResponse{Left: left, Permit: held.permit})
	})
}

// semAcquire: POST /v1/semaphores/{name}/acquire {"session","limit","wait",
// "keep_queued"} → 200 api.Permit; 409 lock_held (full: the holders) when
// a try fails or the wait runs out; 409 limit_mismatch; 409 deadlock; 404
// when the session ends. A retry by a holder answers its permit; by a
// waiter, keeps its place.
func (s *Server) semAcquire(c echo.Context, name string) error {
	var req api.SemaphoreAcquireRequest
	if err := decodeBody(c, &req, true, api.ExampleSemaphoreAcquire); err != nil {
		return err
	}
	if err := req.Validate(s.limits()); err != nil {
		return err
	}
	wait := time.Duration(req.Wait)
	start := time.Now()
	cmd := &lock.Command{Op: lock.OpSemAcquire, Session: uint64(req.Session), Name: name, Limit: req.Limit, Wait: wait > 0}
	ctx, cancel := s.writeCtx(c)
	res, _, err := s.propose(c, ctx, cmd)
	cancel()
	if err != nil {
		return s.proposeFailed(c, err, wait)
	}
	switch res.Code {
	case lock.CodeOK:
		return writeJSON(c, http.StatusOK, api.Permit{Name: name, Session: req.Session, Token: res.Token, Limit: res.Limit})
	case lock.CodeQueued:
		return s.awaitGrant(c, queueWait{kind: &semQueue, name: name, session: uint64(req.Session), wait: wait, start: start, keep: req.KeepQueued})
	case lock.CodeLockHeld:
		return semFull(name, res.Limit, res.Holders, "")
	}
	return resultError(res, name, uint64(req.Session))
}

// semFull is the 409 lock_held of a full semaphore.
func semFull(name string, limit uint32, holders []lock.Holder, suffix string) *api.Error {
	e := api.Errorf(api.CodeLockHeld, "semaphore %q is full: %d of its %d permits are held, or waiters are ahead%s", name, len(holders), limit, suffix)
	e.Holders, e.Limit = apiHolders(holders, false), limit
	return e
}

// semRelease: POST /v1/semaphores/{name}/release {"session","token"} → 200
// api.Permit (the released token); 409 not_holder for any mismatch
// (nothing changes: a retried release that succeeded answers not_holder).
func (s *Server) semRelease(c echo.Context, name string) error {
	var req api.SemaphoreReleaseRequest
	if err := decodeBody(c, &req, true, `{"session":"42","token":17}`); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpSemRelease, Session: uint64(req.Session), Name: name, Token: req.Token})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	switch res.Code {
	case lock.CodeOK:
		return writeJSON(c, http.StatusOK, api.Permit{Name: name, Session: req.Session, Token: req.Token})
	case lock.CodeNotHolder:
		return api.Errorf(api.CodeNotHolder, "session %s holds no permit of semaphore %q with this token (released already, or the token is stale); nothing changed", req.Session, name)
	}
	return resultError(res, name, uint64(req.Session))
}

// semCheck: POST /v1/semaphores/{name}/check {"token"} → 200
// api.CheckResponse: whether token is a current permit. Linearizable, as
// a lock's check.
func (s *Server) semCheck(c echo.Context, name string) error {
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
		if si, ok := m.Semaphore(name); ok {
			out.Holders = apiHolders(si.Holders, false)
			for _, h := range si.Holders {
				out.Current = out.Current || (h.Token == req.Token && (req.Session == 0 || h.Session == uint64(req.Session)))
			}
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// getSemaphore: GET /v1/semaphores/{name} → 200 api.Semaphore (limit 0 and
// no holders when nobody holds a permit).
func (s *Server) getSemaphore(c echo.Context) error {
	name, _, err := semName(c, false)
	if err != nil {
		return err
	}
	if err := s.allow(c, lock.ActionRead, name); err != nil {
		return err
	}
	out := api.Semaphore{Name: name, Holders: []api.Holder{}, Waiters: []api.Waiter{}}
	if err := s.read(c, func(m *lock.Machine) {
		if si, ok := m.Semaphore(name); ok {
			out = apiSemaphore(si)
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// listSemaphores: GET /v1/semaphores?prefix=p&limit=n&after=name → 200
// api.SemaphoreList, paged as listLocks.
func (s *Server) listSemaphores(c echo.Context) error {
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
		infos []lock.SemaphoreInfo
		more  bool
	)
	if err := s.read(c, func(m *lock.Machine) { infos, more = m.ListSemaphores(prefix, after, limit) }); err != nil {
		return err
	}
	out := api.SemaphoreList{Semaphores: make([]api.Semaphore, 0, len(infos))}
	for _, si := range infos {
		out.Semaphores = append(out.Semaphores, apiSemaphore(si))
	}
	if more {
		out.Next = infos[len(infos)-1].Name
	}
	return writeJSON(c, http.StatusOK, out)
}

func apiSemaphore(si lock.SemaphoreInfo) api.Semaphore {
	return api.Semaphore{Name: si.Name, Limit: si.Limit, Holders: apiHolders(si.Holders, false), Waiters: apiWaiters(si.Waiters)}
}

// semQueue is the queue of a semaphore for the wait path.
var semQueue = queueKind{
	kind: lock.KindSemaphore,
	join: "acquire",
	stake: func(ps lock.PlaceState, name string, session uint64) stake {
		return semStake(name, session, ps.Held, ps.Holders)
	},
	leave: func(name string, session uint64) *lock.Command {
		return &lock.Command{Op: lock.OpSemCancel, Session: session, Name: name}
	},
	cancelled: func(res lock.Result, name string, session uint64) (bool, stake) {
		var st stake
		if res.Token != 0 {
			st = semStake(name, session, &lock.Holder{Session: session, Token: res.Token}, 0)
		}
		return leftQueue(res.Events, lock.KindSemaphore, name, session), st
	},
}

// semStake is the stake of session in semaphore name: held is its permit
// (nil when none), holders the number of permits held.
func semStake(name string, session uint64, held *lock.Holder, holders int) stake {
	st := stake{refusal: func(suffix string, queued bool) error {
		e := api.Errorf(api.CodeLockHeld, "semaphore %q is full (%d permits held)%s", name, holders, suffix)
		e.Queued = queued
		return e
	}}
	if held != nil {
		p := api.Permit{Name: name, Session: api.SessionID(session), Token: held.Token}
		st.permit = &p
		st.grant = func(c echo.Context) error { return writeJSON(c, http.StatusOK, p) }
	}
	return st
}
