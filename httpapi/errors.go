package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/raftnode"
)

// msgOutcomeUnknown explains CodeTimeout.
const msgOutcomeUnknown = "the request was proposed but its outcome is unknown (deadline passed or leader changed): it may or may not have been applied; retrying the same request is safe"

// errorTable maps every error a handler may return to an HTTP status and a
// stable code: the first row whose target matches (errors.Is) wins. An
// *api.Error matches the sentinel of its code and keeps its own message;
// other errors get the row's message. Anything unmatched is a 500 internal.
var errorTable = []struct {
	target  error
	status  int
	code    string
	message string
}{
	{api.ErrInvalidArgument, http.StatusBadRequest, api.CodeInvalidArgument, "invalid request"},
	{api.ErrSessionNotFound, http.StatusNotFound, api.CodeSessionNotFound, "session not found: it never existed, was closed or expired"},
	{api.ErrLockHeld, http.StatusConflict, api.CodeLockHeld, "the lock is held by another session"},
	{api.ErrNotHolder, http.StatusConflict, api.CodeNotHolder, "the session does not hold the lock with this token"},
	{api.ErrElectionNotLeader, http.StatusConflict, api.CodeNotLeader, "the session does not lead the election with this term"},
	{api.ErrNotFound, http.StatusNotFound, api.CodeNotFound, "not found"},
	{api.ErrMethodNotAllowed, http.StatusMethodNotAllowed, api.CodeMethodNotAllowed, "method not allowed"},
	{api.ErrTooLarge, http.StatusRequestEntityTooLarge, api.CodeTooLarge, "the request body exceeds 1 MiB"},
	{api.ErrUnavailable, http.StatusServiceUnavailable, api.CodeUnavailable, "unavailable; nothing was changed, retry"},
	{api.ErrOutcomeUnknown, http.StatusServiceUnavailable, api.CodeTimeout, msgOutcomeUnknown},
	{raftnode.ErrOutcomeUnknown, http.StatusServiceUnavailable, api.CodeTimeout, msgOutcomeUnknown},
	{raftnode.ErrNotLeader, http.StatusServiceUnavailable, api.CodeUnavailable, "this node is not the leader and does not know where the leader is; nothing was changed, retry"},
	{raftnode.ErrNoLeader, http.StatusServiceUnavailable, api.CodeUnavailable, "the cluster has no leader (no quorum, or an election is under way); nothing was changed, retry"},
	{raftnode.ErrStopped, http.StatusServiceUnavailable, api.CodeUnavailable, "the node is stopping; nothing was changed, retry on another node"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, api.CodeUnavailable, "the request could not be served before its deadline (no quorum?); nothing was changed, retry"},
	{context.Canceled, http.StatusServiceUnavailable, api.CodeUnavailable, "the request was cancelled; nothing was changed"},
	{api.ErrUnauthenticated, http.StatusUnauthorized, api.CodeUnauthenticated, "unauthenticated: send Authorization: Bearer <token> or a client certificate of a known user"},
	{api.ErrPermissionDenied, http.StatusForbidden, api.CodePermissionDenied, "permission denied"},
	{api.ErrQuotaExceeded, http.StatusTooManyRequests, api.CodeQuotaExceeded, "quota exceeded; nothing was changed"},
	{api.ErrRateLimited, http.StatusTooManyRequests, api.CodeRateLimited, "too many requests; retry later"},
	{api.ErrNoSpace, http.StatusInsufficientStorage, api.CodeNoSpace, "the cluster's state reached its size quota; nothing was changed"},
	{api.ErrDeadlock, http.StatusConflict, api.CodeDeadlock, "waiting would deadlock; the session was not queued"},
	{api.ErrModeMismatch, http.StatusConflict, api.CodeModeMismatch, "the session holds or waits for the lock in the other mode; nothing changed"},
	{api.ErrLimitMismatch, http.StatusConflict, api.CodeLimitMismatch, "the semaphore has another limit; nothing changed"},
	{api.ErrFailedPrecondition, http.StatusConflict, api.CodeFailedPrecondition, "the cluster is not in a state that allows this; nothing was changed"},
	{raftnode.ErrClusterVersion, http.StatusConflict, api.CodeFailedPrecondition, "cluster_version: a member runs a build that cannot read this request's log entry: upgrade every member first; nothing was changed"},
	{api.ErrInternal, http.StatusInternalServerError, api.CodeInternal, "internal error"},
}

// echoErrors maps the statuses of echo's own errors (no route, wrong
// method) to sentinels, so that they go through errorTable too.
var echoErrors = map[int]error{
	http.StatusBadRequest:            api.ErrInvalidArgument,
	http.StatusNotFound:              api.ErrNotFound,
	http.StatusMethodNotAllowed:      api.ErrMethodNotAllowed,
	http.StatusRequestEntityTooLarge: api.ErrTooLarge,
	http.StatusServiceUnavailable:    api.ErrUnavailable,
}

// handleError is echo's HTTPErrorHandler: every error answer goes through it
// and comes out as {"error":{"code","message"}} with the status of
// errorTable.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := s.classify(err, c)
	if werr := writeJSON(c, status, api.ErrorResponse{Error: body}); werr != nil {
		s.log.Warn("write error answer", "error", werr)
	}
}

func (s *Server) classify(err error, c echo.Context) (int, api.Error) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		r := c.Request()
		switch he.Code {
		case http.StatusNotFound:
			err = api.Errorf(api.CodeNotFound, "no such path: %s %s", r.Method, r.URL.Path)
		case http.StatusMethodNotAllowed:
			err = api.Errorf(api.CodeMethodNotAllowed, "method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
		default:
			if target, ok := echoErrors[he.Code]; ok {
				err = errors.Join(target, err)
			}
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = api.Errorf(api.CodeTooLarge, "the request body exceeds %d bytes", mbe.Limit)
	}
	for _, row := range errorTable {
		if !errors.Is(err, row.target) {
			continue
		}
		out := api.Error{Code: row.code, Message: row.message}
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == row.code {
			out.Holder, out.Leader, out.Queued, out.Holders, out.Limit = ae.Holder, ae.Leader, ae.Queued, ae.Holders, ae.Limit
			if ae.Message != "" {
				out.Message = ae.Message
			}
		}
		if row.code == api.CodeInternal {
			s.log.Error("internal error", "method", c.Request().Method, "uri", c.Request().RequestURI, "error", err)
		}
		return row.status, out
	}
	s.log.Error("internal error", "method", c.Request().Method, "uri", c.Request().RequestURI, "error", err)
	return http.StatusInternalServerError, api.Error{Code: api.CodeInternal, Message: "internal error"}
}
