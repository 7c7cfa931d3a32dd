package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// snapshot serves GET /v1/snapshot (api.SnapshotPath): the whole state as a
// snapshot file (api.WriteSnapshot's format), for a backup that raftlockd
// --restore-from turns into a new cluster. Admin only once auth is on: the
// state holds every session, user and token hash.
//
// The read is linearizable (a ReadIndex round, as any GET), or this node's
// own state with ?consistency=stale. On the loop it only captures the
// state machine (lock.Machine.CaptureSnapshot: O(1), copy-on-write); the
// encoding and the checksum happen
// here, on the request's goroutine, while the loop goes on. The answer
// has a Content-Length; once it has begun, a failed write can only cut it
// short, which the reader's length and checksum checks catch.
func (s *Server) snapshot(c echo.Context) error {
	if v := s.node.Auth(); v.Enabled() && !v.IsAdmin(principalOf(c)) {
		return api.Errorf(api.CodePermissionDenied, "%q may not take a snapshot: it holds the whole state, users and token hashes included (needs admin on every name)", principalOf(c))
	}
	var capture *lock.SnapshotCapture
	if err := s.read(c, func(m *lock.Machine) { capture = m.CaptureSnapshot() }); err != nil {
		return err
	}
	state := capture.Encode()
	index, term := capture.AppliedIndex(), capture.Term()

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, api.SnapshotContentType)
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="raftlock-%d.snapshot"`, index))
	h.Set(echo.HeaderContentLength, strconv.FormatInt(api.SnapshotSize(len(state)), 10))
	c.Response().WriteHeader(http.StatusOK)
	hdr := api.SnapshotHeader{ClusterID: s.node.Status().ClusterID, Index: index, Term: term}
	info, err := api.WriteSnapshot(c.Response(), hdr, state)
	if err != nil {
		s.log.Warn("snapshot answer cut short", "index", index, "bytes", len(state), "err", err)
		return nil
	}
	s.log.Info("snapshot sent", "index", index, "term", term, "bytes", info.Size, "remote_ip", c.RealIP())
	return nil
}
