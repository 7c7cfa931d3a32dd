package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/raftnode"
)

// listMembers serves GET /v1/members (api.MembersPath): the members as this
// node knows them. Admin once auth is on.
func (s *Server) listMembers(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, api.MemberList{Members: s.members()})
}

// members returns the node's members in the API's form, without progress.
func (s *Server) members() []api.Member {
	st := s.node.Status()
	out := make([]api.Member, 0, len(st.Members))
	for _, m := range st.Members {
		out = append(out, api.Member{ID: m.ID, PeerURL: m.PeerURL, ClientURL: m.ClientURL, Learner: m.Learner})
	}
	return out
}

// addMember serves POST /v1/members: 201 api.MemberAdded.
func (s *Server) addMember(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	var req api.MemberAddRequest
	if err := decodeBody(c, &req, true, `{"peer_url":"https://10.0.0.4:7071","learner":true}`); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	// The members dial each other with one scheme: a member of a TLS
	// cluster needs an https peer URL, and the reverse.
	for _, m := range s.node.Status().Members {
		if have, want := schemeOf(req.PeerURL), schemeOf(m.PeerURL); want != "" && have != want {
			return api.Errorf(api.CodeInvalidArgument, "peer_url: %q is %s, but the members' peer URLs are %s (member %d: %s)", req.PeerURL, have, want, m.ID, m.PeerURL)
		}
	}
	kind := raftnode.MemberAdd
	if req.Learner {
		kind = raftnode.MemberAddLearner
	}
	id, err := s.changeMembership(c, raftnode.MemberChange{Kind: kind, PeerURL: req.PeerURL})
	if err != nil {
		return err
	}
	if id == 0 {
		return nil // forwarded: the leader's answer was relayed
	}
	return writeJSON(c, http.StatusCreated, api.MemberAdded{
		Member:  api.Member{ID: id, PeerURL: req.PeerURL, Learner: req.Learner},
		Members: s.members(),
	})
}

// removeMember serves DELETE /v1/members/{id}. Removing the leader hands
// leadership to another voter first, then asks the new leader.
func (s *Server) removeMember(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	id, err := memberID(c)
	if err != nil {
		return err
	}
	if st := s.node.Status(); st.IsLeader && st.ID == id {
		if err := s.handOff(c, st); err != nil {
			return err
		}
		// The new leader removes this node; a request forwarded here
		// goes on once more (the new leader never hands off to us).
		return s.forward(c, s.node.Status().LeaderClientURL, 2*s.cfg.RequestTimeout)
	}
	if _, err := s.changeMembership(c, raftnode.MemberChange{Kind: raftnode.MemberRemove, ID: id}); err != nil {
		return err
	}
	if c.Response().Committed {
		return nil
	}
	return writeJSON(c, http.StatusOK, api.MemberList{Members: s.members()})
}

// promoteMember serves POST /v1/members/{id}/promote.
func (s *Server) promoteMember(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	id, err := memberID(c)
	if err != nil {
		return err
	}
	if _, err := s.changeMembership(c, raftnode.MemberChange{Kind: raftnode.MemberPromote, ID: id}); err != nil {
		return err
	}
	if c.Response().Committed {
		return nil
	}
	return writeJSON(c, http.StatusOK, api.MemberList{Members: s.members()})
}

func memberID(c echo.Context) (uint64, error) {
	raw := c.Param("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || id == 0 {
		return 0, api.Errorf(api.CodeInvalidArgument, "member ID %q must be a positive integer", raw)
	}
	return id, nil
}

// changeMembership asks the node for ch and turns its refusals into API
// errors. On a follower it forwards the request to the leader and relays
// the answer: it then returns 0 and a nil error with the response written.
func (s *Server) changeMembership(c echo.Context, ch raftnode.MemberChange) (uint64, error) {
	// Membership changes wait for a commit like any write, and the
	// leader first checks its followers' progress.
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
	defer cancel()
	// Some refusals pass by themselves within an election timeout: a
	// change still being applied, a leader elected a moment ago that has
	// not heard from its followers yet (they count as not started), a
	// member that runs but has not got the latest membership change yet
	// (member_behind), a cluster version about to rise (after the removal
	// of a member whose version was unknown). Ask again until then.
	retryUntil := time.Now().Add(s.cfg.ElectionTimeout)
	var id uint64
	var err error
	var mce *raftnode.MemberChangeError
	for {
		id, err = s.node.ChangeMembership(ctx, ch)
		transient := errors.Is(err, raftnode.ErrClusterVersion) ||
			(errors.As(err, &mce) && (mce.Code == "conf_change_in_progress" || mce.Code == "unsafe_reconfiguration" || mce.Code == "member_behind"))
		if !transient || time.Now().After(retryUntil) {
			break
		}
		select {
		case <-time.After(s.cfg.ElectionTimeout / 10):
		case <-ctx.Done():
			return 0, err
		}
	}
	switch {
	case err == nil:
		return id, nil
	case errors.Is(err, raftnode.ErrNotLeader):
		return 0, s.proposeFailed(c, err, 0)
	case errors.As(err, &mce) && mce.Code == "member_not_found":
		return 0, api.Errorf(api.CodeNotFound, "%s", mce.Reason)
	case errors.As(err, &mce):
		return 0, api.Errorf(api.CodeFailedPrecondition, "%s: %s", mce.Code, mce.Reason)
	case errors.Is(err, raftnode.ErrClusterVersion):
		return 0, api.Errorf(api.CodeFailedPrecondition, "cluster_version: %v", err)
	}
	return 0, err
}

// handOff hands the leadership of this node (st) to the most caught-up
// other voter and waits until it leads (or the election timeout passes):
// the leader does not remove itself.
func (s *Server) handOff(c echo.Context, st raftnode.Status) error {
	limit := s.cfg.ElectionTimeout + s.cfg.RequestTimeout
	ctx, cancel := context.WithTimeout(c.Request().Context(), limit)
	defer cancel()
	if err := s.node.TransferLeadership(ctx, 0); err != nil {
		return err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if now := s.node.Status(); now.Leader != 0 && now.Leader != st.ID && now.LeaderClientURL != "" {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return api.Errorf(api.CodeUnavailable, "member %d leads and must hand leadership over before it is removed, but no other voter took it within %v; nothing was changed, retry", st.ID, limit)
		}
	}
}

// schemeOf returns the scheme of URL u ("" if it has none).
func schemeOf(u string) string {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(scheme)
}
