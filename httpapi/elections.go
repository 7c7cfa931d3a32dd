package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// electionName splits a /v1/elections/* path into the election name and,
// when the last raw segment is one of actions, that action. The name is
// percent-decoded after the split, as for locks.
func electionName(c echo.Context, actions ...string) (name, action string, err error) {
	raw := c.Param("*")
	if i := strings.LastIndexByte(raw, '/'); i >= 0 {
		for _, a := range actions {
			if raw[i+1:] == a {
				raw, action = raw[:i], a
				break
			}
		}
	}
	name, uerr := url.PathUnescape(raw)
	if uerr != nil {
		return "", "", api.Errorf(api.CodeInvalidArgument, "election name %q in the path is not valid percent-encoding", raw)
	}
	if err := api.ValidateLockName(name); err != nil {
		return "", "", api.Errorf(api.CodeInvalidArgument, "election %v", err)
	}
	return name, action, nil
}

func apiLeader(l *lock.Leader) *api.Leader {
	if l == nil {
		return nil
	}
	return &api.Leader{Session: api.SessionID(l.Session), Owner: l.Owner, Value: l.Value, Term: l.Term, Since: unixTime(l.Since)}
}

func apiElection(ei lock.ElectionInfo) api.Election {
	out := api.Election{Name: ei.Name, Leader: apiLeader(ei.Leader), Candidates: make([]api.Candidate, 0, len(ei.Candidates))}
	for _, c := range ei.Candidates {
		out.Candidates = append(out.Candidates, api.Candidate{Session: api.SessionID(c.Session), Owner: c.Owner, Value: c.Value, Since: unixTime(c.Since)})
	}
	return out
}

func notLeader(name string, l *lock.Leader, what string) *api.Error {
	e := &api.Error{Code: api.CodeNotLeader, Leader: apiLeader(l)}
	if l != nil {
		e.Message = fmt.Sprintf("%s: election %q is led by session %d (term %d)", what, name, l.Session, l.Term)
	} else {
		e.Message = fmt.Sprintf("%s: nobody leads election %q", what, name)
	}
	return e
}

// electionAction: POST /v1/elections/{name}/campaign, /proclaim, /resign
// and /cancel.
func (s *Server) electionAction(c echo.Context) error {
	name, action, err := electionName(c, "campaign", "proclaim", "resign", "cancel")
	if err != nil && action == "" {
		return err
	}
	if action == "" {
		c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
		return api.Errorf(api.CodeMethodNotAllowed, "method POST is not allowed on %s: POST to /v1/elections/{name}/campaign, /proclaim, /resign or /cancel", c.Request().URL.Path)
	}
	if err != nil {
		return err
	}
	switch action {
	case "campaign":
		return s.campaign(c, name)
	case "proclaim":
		return s.proclaim(c, name)
	case "resign":
		return s.resign(c, name)
	}
	return s.cancelQueue(c, &electionQueue, name, func(left bool, held stake) error {
		out := api.ElectionCancelResponse{Left: left}
		if held.grant != nil {
			out.Grant = held.leadership
		}
		return writeJSON(c, http.StatusOK, out)
	})
}

// campaign serves POST /v1/elections/{name}/campaign: 200 api.Leadership
// once the session leads; 409 not_leader with the current leader when it
// did not wait, or its wait ran out (then it has left the queue, unless it
// won leadership in that race: then 200; with keep_queued it keeps its
// place and the answer says "queued": true). A campaign by the leader
// answers its term and, like etcd's Campaign, proclaims its value if it
// differs; a campaign by a queued candidate keeps its place (and, if it
// waits, takes its value). A client that goes away while queued is
// withdrawn from the queue (unless keep_queued), never resigned (as for
// locks: its session may have retried elsewhere; a session whose client is
// gone ends with its TTL). The wait itself is the wait path's (awaitGrant).
func (s *Server) campaign(c echo.Context, name string) error {
	var req api.CampaignRequest
	if err := decodeBody(c, &req, true, api.ExampleCampaign); err != nil {
		return err
	}
	if err := req.Validate(s.limits()); err != nil {
		return err
	}
	wait := time.Duration(req.Wait)
	start := time.Now()
	sid := uint64(req.Session)
	ctx, cancel := s.writeCtx(c)
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpCampaign, Session: sid, Name: name, Value: req.Value, Wait: wait > 0})
	cancel()
	if err != nil {
		return s.proposeFailed(c, err, wait)
	}
	switch res.Code {
	case lock.CodeOK:
		return electionStake(name, sid, res.Leader).grant(c)
	case lock.CodeQueued:
		return s.awaitGrant(c, queueWait{kind: &electionQueue, name: name, session: sid, wait: wait, start: start, keep: req.KeepQueued})
	case lock.CodeNotLeader:
		return notLeader(name, res.Leader, "not leading")
	case lock.CodeSessionNotFound:
		return sessionNotFound(req.Session)
	}
	if err, ok := authResultError(res); ok {
		return err
	}
	return api.Errorf(api.CodeInvalidArgument, "session %d cannot campaign in %q (an ephemeral session is bound to its one lock)", sid, name)
}

// electionQueue is the queue of an election for the wait path.
var electionQueue = queueKind{
	kind: lock.KindElection,
	join: "campaign",
	stake: func(ps lock.PlaceState, name string, session uint64) stake {
		return electionStake(name, session, ps.Leader)
	},
	leave: func(name string, session uint64) *lock.Command {
		// A resign with term 0 withdraws a candidacy.
		return &lock.Command{Op: lock.OpResign, Session: session, Name: name}
	},
	cancelled: func(res lock.Result, name string, session uint64) (bool, stake) {
		var st stake
		if res.Token != 0 {
			st = electionStake(name, session, res.Leader)
		}
		return leftQueue(res.Events, lock.KindElection, name, session), st
	},
}

// electionStake is the stake of session in election name led by l.
func electionStake(name string, session uint64, l *lock.Leader) stake {
	st := stake{refusal: func(suffix string, queued bool) error {
		e := notLeader(name, l, "not leading"+suffix)
		e.Queued = queued
		return e
	}}
	if l != nil && l.Session == session {
		ld := api.Leadership{Name: name, Session: api.SessionID(session), Value: l.Value, Term: l.Term}
		st.leadership = &ld
		st.grant = func(c echo.Context) error { return writeJSON(c, http.StatusOK, ld) }
	}
	return st
}

// proclaim serves POST /v1/elections/{name}/proclaim: the leader with term
// changes its value. 409 not_leader otherwise (nothing changes).
func (s *Server) proclaim(c echo.Context, name string) error {
	var req api.ProclaimRequest
	if err := decodeBody(c, &req, true, api.ExampleProclaim); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpProclaim, Session: uint64(req.Session), Name: name, Token: req.Term, Value: req.Value})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if err, ok := authResultError(res); ok {
		return err
	}
	if res.Code != lock.CodeOK {
		return notLeader(name, res.Leader, fmt.Sprintf("session %s does not lead with term %d", req.Session, req.Term))
	}
	return writeJSON(c, http.StatusOK, api.Leadership{Name: name, Session: req.Session, Value: req.Value, Term: req.Term})
}

// resign serves POST /v1/elections/{name}/resign: the leader with term
// leaves; the next candidate leads at once. 409 not_leader otherwise
// (nothing changes: a retried resign that already happened answers it too).
func (s *Server) resign(c echo.Context, name string) error {
	var req api.ResignRequest
	if err := decodeBody(c, &req, true, api.ExampleResign); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, &lock.Command{Op: lock.OpResign, Session: uint64(req.Session), Name: name, Token: req.Term})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if err, ok := authResultError(res); ok {
		return err
	}
	if res.Code != lock.CodeOK {
		// The refusal names the current leader (lock.OpResign's result).
		return notLeader(name, res.Leader, fmt.Sprintf("session %s does not lead with term %d", req.Session, req.Term))
	}
	return writeJSON(c, http.StatusOK, api.Leadership{Name: name, Session: req.Session, Term: req.Term})
}

// getElection: GET /v1/elections/{name} (and .../observe, see observe).
func (s *Server) getElection(c echo.Context) error {
	name, action, err := electionName(c, "observe")
	if err != nil {
		return err
	}
	if err := s.allow(c, lock.ActionRead, name); err != nil {
		return err
	}
	if action == "observe" {
		return s.observe(c, name)
	}
	out := api.Election{Name: name, Candidates: []api.Candidate{}}
	if err := s.read(c, func(m *lock.Machine) {
		if ei, ok := m.Election(name); ok {
			out = apiElection(ei)
		}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// listElections: GET /v1/elections?prefix=p&limit=n&after=name → 200
// api.ElectionList, paged as listLocks.
func (s *Server) listElections(c echo.Context) error {
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
		infos []lock.ElectionInfo
		more  bool
	)
	if err := s.read(c, func(m *lock.Machine) { infos, more = m.ListElections(prefix, after, limit) }); err != nil {
		return err
	}
	out := api.ElectionList{Elections: make([]api.Election, 0, len(infos))}
	for _, ei := range infos {
		out.Elections = append(out.Elections, apiElection(ei))
	}
	if more {
		out.Next = infos[len(infos)-1].Name
	}
	return writeJSON(c, http.StatusOK, out)
}

// observe: GET /v1/elections/{name}/observe → Server-Sent Events of the
// election's leader. Without Last-Event-ID the first message is the current
// leader (type "state"); then one message per revision that changes the
// leader or its value, with type elected, proclaimed, resigned, expired or
// no_leader (the last of that revision's leader events: a leader that
// expires and is succeeded in one entry gives one "elected" message), its
// id the revision and data {"revision","type","leader"}. Nothing is
// skipped: every change, "no leader" included, comes in order. Resume with
// Last-Event-ID as for /v1/watch. Served from this node's applied state.
func (s *Server) observe(c echo.Context, name string) error {
	if _, err := consistency(c); err != nil {
		return err
	}
	var first *api.LeaderEvent
	var leader *api.Leader
	sub, err := s.subscribe(c, func(m *lock.Machine, rev uint64) {
		first = &api.LeaderEvent{Revision: rev, Type: api.SSEState}
		if ei, ok := m.Election(name); ok {
			first.Leader = apiLeader(ei.Leader)
		}
		leader = first.Leader
	})
	if err != nil && !isCompacted(err) {
		return err
	}
	out := startSSE(c)
	if err != nil {
		return streamError(out, err)
	}
	defer sub.cancel()
	if first != nil {
		if err := out.send(api.SSEState, first.Revision, first); err != nil {
			return nil
		}
	}
	match := func(ev lock.Event) bool {
		if ev.Name != name {
			return false
		}
		switch ev.Type {
		case lock.EventElected, lock.EventProclaimed, lock.EventResigned, lock.EventLeaderExpired, lock.EventNoLeader:
			return true
		}
		return false
	}
	return s.pump(out, sub, match, func(rev uint64, evs []lock.Event) error {
		le := api.LeaderEvent{Revision: rev}
		for _, ev := range evs {
			switch ev.Type {
			case lock.EventElected:
				le.Type = "elected"
				leader = &api.Leader{Session: api.SessionID(ev.Session), Owner: ev.Owner, Value: ev.Value, Term: ev.Token, Since: unixTime(ev.Time)}
			case lock.EventProclaimed:
				le.Type = "proclaimed"
				if leader != nil {
					l := *leader
					l.Value = ev.Value
					leader = &l
				} else {
					leader = &api.Leader{Session: api.SessionID(ev.Session), Owner: ev.Owner, Value: ev.Value, Term: ev.Token, Since: unixTime(ev.Time)}
				}
			case lock.EventResigned:
				le.Type, leader = "resigned", nil
			case lock.EventLeaderExpired:
				le.Type, leader = "expired", nil
			case lock.EventNoLeader:
				le.Type, leader = "no_leader", nil
			}
		}
		le.Leader = leader
		if len(evs) > 1 {
			for _, ev := range evs {
				switch ev.Type {
				case lock.EventElected:
					le.Changes = append(le.Changes, "elected")
				case lock.EventProclaimed:
					le.Changes = append(le.Changes, "proclaimed")
				case lock.EventResigned:
					le.Changes = append(le.Changes, "resigned")
				case lock.EventLeaderExpired:
					le.Changes = append(le.Changes, "expired")
				case lock.EventNoLeader:
					le.Changes = append(le.Changes, "no_leader")
				}
			}
		}
		return out.send(api.SSEChange, rev, le)
	})
}
