package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/raftnode"
)

// transferLeader serves POST /v1/leader/transfer (api.LeaderTransferPath):
// on the leader it asks raft to hand leadership over and answers once
// another member leads (200 api.LeaderTransfer), or 503 when leadership has
// not moved within the election timeout plus RequestTimeout (the target
// may first need to catch up). A follower forwards it. Admin only once
// auth is on. Nothing but the leadership changes; retrying is safe.
func (s *Server) transferLeader(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	var req api.LeaderTransferRequest
	if err := decodeBody(c, &req, false, `{"to":2}`); err != nil {
		return err
	}
	st := s.node.Status()
	if req.To != 0 {
		member := false
		for _, m := range st.Members {
			member = member || m.ID == req.To
		}
		if !member {
			return api.Errorf(api.CodeInvalidArgument, "to: member %d is not a member of the cluster", req.To)
		}
	}
	if !st.IsLeader {
		return s.proposeFailed(c, &raftnode.NotLeaderError{LeaderID: st.Leader, LeaderClientURL: st.LeaderClientURL}, s.cfg.ElectionTimeout)
	}
	if req.To == st.ID {
		return writeJSON(c, http.StatusOK, api.LeaderTransfer{Leader: st.ID, Term: st.Term})
	}
	limit := s.cfg.ElectionTimeout + s.cfg.RequestTimeout
	ctx, cancel := context.WithTimeout(c.Request().Context(), limit)
	defer cancel()
	if err := s.node.TransferLeadership(ctx, req.To); err != nil {
		return err
	}
	// The loop publishes its status after every Ready; the old leader
	// learns the new one from its first heartbeat.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		now := s.node.Status()
		if now.Leader != 0 && now.Leader != st.ID && (req.To == 0 || now.Leader == req.To) {
			return writeJSON(c, http.StatusOK, api.LeaderTransfer{Leader: now.Leader, Term: now.Term})
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if c.Request().Context().Err() != nil {
				return c.Request().Context().Err()
			}
			return api.Errorf(api.CodeUnavailable, "leadership did not move within %v (the target may be lagging or unreachable); member %d still leads or the election goes on: retry", limit, st.ID)
		}
	}
}
