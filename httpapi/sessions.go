package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// exampleNone is the body of requests that take none.
const exampleNone = `no body, or {}`

// createSession: POST /v1/sessions {"ttl","owner","request_id"} → 201
// api.SessionResponse. A request_id of a request that opened a session
// that still lives answers that session (a retry): opening is safe to
// retry with one.
func (s *Server) createSession(c echo.Context) error {
	var req api.CreateSessionRequest
	if err := decodeBody(c, &req, true, api.ExampleCreateSession); err != nil {
		return err
	}
	if err := req.Validate(s.limits()); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpOpenSession, TTL: int64(req.TTL), Owner: req.Owner, RequestID: req.RequestID, LockDelay: int64(req.LockDelay)})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if res.Code != lock.CodeOK {
		return resultError(res, "", 0)
	}
	ttl := res.TTL
	if ttl == 0 {
		ttl = int64(req.TTL)
	}
	return writeJSON(c, http.StatusCreated, api.SessionResponse{ID: api.SessionID(res.Session), TTL: api.Duration(ttl), Owner: req.Owner})
}

// keepAlive: POST /v1/sessions/{id}/keepalive → 200 {"id","ttl"}, or 404
// session_not_found once the session expired or was closed.
func (s *Server) keepAlive(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	if err := decodeBody(c, &struct{}{}, false, exampleNone); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpKeepAlive, Sessions: []uint64{uint64(id)}})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	for _, m := range res.Missing {
		if m == uint64(id) {
			return sessionNotFound(id)
		}
	}
	if res.Code != lock.CodeOK {
		return resultError(res, "", uint64(id))
	}
	// The TTL is not in the keep-alive's result: read it from the local
	// state, which includes the keep-alive just applied on this node.
	var (
		ttl   int64
		found bool
	)
	if err := s.node.Read(ctx, true, func(m *lock.Machine) { ttl, found = m.SessionTTL(uint64(id)) }); err != nil {
		return api.Errorf(api.CodeTimeout, "the session was renewed, but reading its TTL failed (%v); retrying the same keep-alive is safe", err)
	}
	if !found {
		return sessionNotFound(id) // closed right after the renewal
	}
	return writeJSON(c, http.StatusOK, api.SessionResponse{ID: id, TTL: api.Duration(ttl)})
}

// keepAliveBatch: POST /v1/sessions/keepalive {"ids":["12","14",...]} → 200
// api.KeepAliveResponse: the existing sessions are renewed by one OpKeepAlive
// entry (merged with the keep-alives of concurrent requests), the others are
// listed as expired. The IDs must be 1 to api.MaxKeepAliveIDs distinct
// session IDs; anything else is a 400 and proposes nothing.
func (s *Server) keepAliveBatch(c echo.Context) error {
	var req api.KeepAliveRequest
	if err := decodeBody(c, &req, true, api.ExampleKeepAlive); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ids := make([]uint64, len(req.IDs))
	for i, id := range req.IDs {
		ids[i] = uint64(id)
	}
	slices.Sort(ids)
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpKeepAlive, Sessions: ids})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if res.Code != lock.CodeOK {
		return resultError(res, "", 0)
	}
	out := api.KeepAliveResponse{
		Sessions: make([]api.SessionResponse, 0, len(req.IDs)-len(res.Missing)),
		Expired:  make([]api.SessionID, 0, len(res.Missing)),
	}
	// The TTLs are not in the keep-alive's result: read them from the local
	// state, which includes the keep-alive just applied on this node. A
	// session that is gone by then (closed meanwhile) is reported expired.
	ttls := make([]int64, len(req.IDs))
	if err := s.node.Read(ctx, true, func(m *lock.Machine) {
		for i, id := range req.IDs {
			ttls[i], _ = m.SessionTTL(uint64(id))
		}
	}); err != nil {
		return api.Errorf(api.CodeTimeout, "the sessions were renewed, but reading their TTLs failed (%v); retrying the same keep-alive is safe", err)
	}
	for i, id := range req.IDs {
		_, missing := slices.BinarySearch(res.Missing, uint64(id))
		if missing || ttls[i] == 0 {
			out.Expired = append(out.Expired, id)
			continue
		}
		out.Sessions = append(out.Sessions, api.SessionResponse{ID: id, TTL: api.Duration(ttls[i])})
	}
	return writeJSON(c, http.StatusOK, out)
}

// closeSession: DELETE /v1/sessions/{id} → 200 {"id"}: releases the
// session's locks (granting their next waiters) and withdraws it from every
// queue; 404 when unknown.
func (s *Server) closeSession(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	if err := decodeBody(c, &struct{}{}, false, exampleNone); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpCloseSession, Session: uint64(id)})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if res.Code != lock.CodeOK {
		return resultError(res, "", uint64(id))
	}
	return writeJSON(c, http.StatusOK, api.CloseSessionResponse{ID: id})
}

// getSession: GET /v1/sessions/{id} → 200 api.Session, 404 when unknown.
func (s *Server) getSession(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	var out api.Session
	if err := s.readSession(c, id, func(m *lock.Machine) (string, bool) {
		si, ok := m.Session(uint64(id))
		out = apiSession(si)
		return si.Principal, ok
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// readSession reads session id with fn (on the loop), which returns the
// session's principal and whether it exists, then answers 404 when it
// does not and 403 when the caller may not read it.
func (s *Server) readSession(c echo.Context, id api.SessionID, fn func(m *lock.Machine) (principal string, ok bool)) error {
	var (
		owner string
		found bool
	)
	if err := s.read(c, func(m *lock.Machine) { owner, found = fn(m) }); err != nil {
		return err
	}
	if !found {
		return sessionNotFound(id)
	}
	return s.allowSession(c, owner, uint64(id))
}

// getSessionLocks answers GET /v1/sessions/{id}/locks: the locks the
// session holds and the index at which they last changed, with that index
// as the ETag; 304 without a body when If-None-Match names it (see
// api.SessionLocks). An unchanged list costs the loop O(1).
func (s *Server) getSessionLocks(c echo.Context) error {
	id, err := sessionParam(c)
	if err != nil {
		return err
	}
	tags := ifNoneMatchIndexes(c.Request().Header.Get("If-None-Match"))
	known := ^uint64(0) // no index is that: always the list
	if len(tags) > 0 {
		known = tags[0]
	}
	keep, err := lockPartFilter(c)
	if err != nil {
		return err
	}
	out := api.SessionLocks{Session: id}
	if err := s.readSession(c, id, func(m *lock.Machine) (owner string, ok bool) {
		out.Locks, out.ChangedAt, owner, ok = m.SessionLocks(uint64(id), known, keep)
		return owner, ok
	}); err != nil {
		return err
	}
	c.Response().Header().Set("ETag", `"`+strconv.FormatUint(out.ChangedAt, 10)+`"`)
	if slices.Contains(tags, out.ChangedAt) {
		return c.NoContent(http.StatusNotModified)
	}
	if out.Locks == nil {
		out.Locks = []string{}
	}
	return writeJSON(c, http.StatusOK, out)
}

// lockPartFilter returns the filter of ?parts=k&part=i (nil: the whole
// list), or an invalid_argument error.
func lockPartFilter(c echo.Context) (func(string) bool, error) {
	ps, is := c.QueryParam(api.QueryParts), c.QueryParam(api.QueryPart)
	if ps == "" && is == "" {
		return nil, nil
	}
	parts, err := strconv.Atoi(ps)
	if err != nil || parts < 1 || parts > api.MaxLockParts || parts&(parts-1) != 0 {
		return nil, api.Errorf(api.CodeInvalidArgument, "%s=%q: want a power of two from 1 to %d", api.QueryParts, ps, api.MaxLockParts)
	}
	part, err := strconv.Atoi(is)
	if err != nil || part < 0 || part >= parts {
		return nil, api.Errorf(api.CodeInvalidArgument, "%s=%q: want 0 to %d (parts=%d)", api.QueryPart, is, parts-1, parts)
	}
	if parts == 1 {
		return nil, nil
	}
	return func(name string) bool { return api.LockPart(name, parts) == part }, nil
}

// ifNoneMatchIndexes returns the indexes named by an If-None-Match header:
// its entity tags of the form "123" (or W/"123"), at most 8. Anything else
// names no index: the answer is then the whole list, never a 304 by
// mistake.
func ifNoneMatchIndexes(h string) []uint64 {
	var out []uint64
	for tag := range strings.SplitSeq(h, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			continue
		}
		v := tag[1 : len(tag)-1]
		if len(v) > 1 && v[0] == '0' {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && len(out) < 8 {
			out = append(out, n)
		}
	}
	return out
}

// apiSession converts si.
func apiSession(si lock.SessionInfo) api.Session {
	return api.Session{
		ID:         api.SessionID(si.ID),
		Owner:      si.Owner,
		TTL:        api.Duration(si.TTL),
		Deadline:   unixTime(si.Deadline),
		Locks:      append([]string{}, si.Locks...),
		Waiting:    append([]string{}, si.Waiting...),
		Bound:      si.Bound,
		Permits:    si.Permits,
		SemWaiting: si.SemWaiting,
		Campaigns:  si.Campaigns,
	}
}

// listSessions: GET /v1/sessions?owner=o&limit=n&after=id → 200
// api.SessionList, sorted by ID. With auth on, a principal that may read
// every name (read on the empty prefix; admins) sees every session, any
// other only its own. A page costs O(log n + what it scans) on the node's
// loop, and the scan is bounded: a filter that matches rarely answers a
// short (even empty) page with a next cursor (lock.Machine.ListSessions).
func (s *Server) listSessions(c echo.Context) error {
	limit, _, err := listPage(c)
	if err != nil {
		return err
	}
	var after uint64
	if v := c.QueryParam(api.QueryAfter); v != "" {
		id, err := api.ParseSessionID(v)
		if err != nil {
			return api.Errorf(api.CodeInvalidArgument, "after=%q: give the next of the previous page (a session ID)", clipValue(v))
		}
		after = uint64(id)
	}
	owner := c.QueryParam(api.QueryOwner)
	if err := api.ValidateOwner(owner); err != nil {
		return err
	}
	v := s.node.Auth()
	p := principalOf(c)
	all := !v.Enabled() || v.Covers(p, lock.ActionRead, "")
	var (
		infos []lock.SessionInfo
		next  uint64
	)
	if err := s.read(c, func(m *lock.Machine) { infos, next = m.ListSessions(after, limit, owner, p, all) }); err != nil {
		return err
	}
	out := api.SessionList{Sessions: make([]api.Session, 0, len(infos))}
	for _, si := range infos {
		out.Sessions = append(out.Sessions, apiSession(si))
	}
	if next != 0 {
		out.Next = api.SessionID(next).String()
	}
	return writeJSON(c, http.StatusOK, out)
}

// read runs fn through Node.Read: linearizable (bounded by RequestTimeout)
// unless the request asks for ?consistency=stale. fn must copy what it keeps.
func (s *Server) read(c echo.Context, fn func(m *lock.Machine)) error {
	stale, err := consistency(c)
	if err != nil {
		return err
	}
	return s.readAt(c, stale, fn)
}

// readAt is read with the consistency given, not the request's.
func (s *Server) readAt(c echo.Context, stale bool, fn func(m *lock.Machine)) error {
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	// The principal is checked again on the state the read sees (auth.go):
	// a token revoked before the read began is refused on every node.
	revoked := false
	principal, tokenID := principalOf(c), tokenOf(c) // fn runs on the loop: no echo.Context there
	if err := s.node.Read(ctx, stale, func(m *lock.Machine) {
		if revoked = !stillAuthenticated(principal, tokenID, m.Auth()); !revoked {
			fn(m)
		}
	}); err != nil {
		if c.Request().Context().Err() == nil && ctx.Err() != nil {
			return api.Errorf(api.CodeUnavailable, "a linearizable read needs a quorum, and none answered within %v; add ?consistency=stale for a possibly stale answer from this node", s.cfg.RequestTimeout)
		}
		return err
	}
	if revoked {
		return api.Errorf(api.CodeUnauthenticated, "the principal's token was revoked, or its user deleted")
	}
	return nil
}

func sessionNotFound(id api.SessionID) error {
	return api.Errorf(api.CodeSessionNotFound, "session %s not found: it never existed, was closed or expired", id)
}

// resultError turns a refusal of the state machine into its API error.
func resultError(res lock.Result, name string, session uint64) error {
	if err, ok := authResultError(res); ok {
		return err
	}
	if res.Session != 0 {
		session = res.Session
	}
	switch res.Code {
	case lock.CodeSessionNotFound:
		return sessionNotFound(api.SessionID(session))
	case lock.CodeLockHeld, lock.CodeQueued:
		if res.Holder == nil && len(res.Holders) == 0 && res.Reason != "" && name != "" {
			return &api.Error{Code: api.CodeLockHeld, Message: "lock \"" + name + "\" is " + res.Reason}
		}
		return lockHeldBy(name, res.Holder, res.Holders, "")
	case lock.CodeModeMismatch:
		e := api.Errorf(api.CodeModeMismatch, "%s; nothing changed", res.Reason)
		e.Holders = apiHolders(res.Holders, true)
		return e
	case lock.CodeLimitMismatch:
		e := api.Errorf(api.CodeLimitMismatch, "%s: acquire with limit %d, or wait until every permit is released; nothing changed", res.Reason, res.Limit)
		e.Limit = res.Limit
		return e
	case lock.CodeDeadlock:
		e := api.Errorf(api.CodeDeadlock, "%s", res.Reason)
		if res.Holder != nil {
			e.Holder = apiHolder(res.Holder)
		}
		return e
	case lock.CodeNotHolder:
		return api.Errorf(api.CodeNotHolder, "session %d does not hold lock %q with this token (released already, another session holds it, or the token is stale); nothing changed", session, name)
	case lock.CodeInvalid:
		if name != "" {
			return api.Errorf(api.CodeInvalidArgument, "session %d cannot act on lock %q: an ephemeral session exists for the one lock it was opened for", session, name)
		}
		return api.Errorf(api.CodeInvalidArgument, "the state machine refused the command as invalid")
	}
	return api.Errorf(api.CodeInternal, "unexpected result %v", res.Code)
}

// lockHeldBy is lockHeld for a lock that may be held shared: with no
// exclusive holder, the error lists the shared holders.
func lockHeldBy(name string, h *lock.Holder, holders []lock.Holder, suffix string) *api.Error {
	if h != nil || len(holders) == 0 {
		return lockHeld(name, h, suffix)
	}
	e := &api.Error{Code: api.CodeLockHeld, Holders: apiHolders(holders, true)}
	e.Message = fmt.Sprintf("lock %q is held shared by %d sessions, or an exclusive request waits ahead%s", name, len(holders), suffix)
	return e
}

// apiHolders converts holders, each with its mode when withMode.
func apiHolders(hs []lock.Holder, withMode bool) []api.Holder {
	out := make([]api.Holder, 0, len(hs))
	for i := range hs {
		h := *apiHolder(&hs[i])
		if withMode {
			h.Mode = hs[i].Mode.String()
		}
		out = append(out, h)
	}
	return out
}

func lockHeld(name string, h *lock.Holder, suffix string) *api.Error {
	e := &api.Error{Code: api.CodeLockHeld}
	if h != nil {
		e.Holder = apiHolder(h)
		e.Message = "lock \"" + name + "\" is held by session " + e.Holder.Session.String()
		if h.Owner != "" {
			e.Message += " (owner \"" + h.Owner + "\")"
		}
	} else {
		e.Message = "lock \"" + name + "\" is held by another session"
	}
	e.Message += suffix
	return e
}

func apiHolder(h *lock.Holder) *api.Holder {
	return &api.Holder{Session: api.SessionID(h.Session), Owner: h.Owner, Token: h.Token, Since: unixTime(h.Since)}
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
