package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

const (
	exampleCampaign = `{"session":"42","value":"10.0.0.7:8080","wait":"30s"}`
	exampleProclaim = `{"session":"42","term":17,"value":"10.0.0.7:9090"}`
	exampleResign   = `{"session":"42","term":17}`
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

func checkValue(v string) error {
	if len(v) > api.MaxValueSize {
		return api.Errorf(api.CodeInvalidArgument, "value is %d bytes long: at most %d are allowed", len(v), api.MaxValueSize)
	}
	return nil
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

func notLeader(name string, l *lock.Leader, what string) error {
	e := &api.Error{Code: api.CodeNotLeader, Leader: apiLeader(l)}
	if l != nil {
		e.Message = fmt.Sprintf("%s: election %q is led by session %d (term %d)", what, name, l.Session, l.Term)
	} else {
		e.Message = fmt.Sprintf("%s: nobody leads election %q", what, name)
	}
	return e
}

// electionAction: POST /v1/elections/{name}/campaign, /proclaim, /resign.
func (s *Server) electionAction(c echo.Context) error {
	name, action, err := electionName(c, "campaign", "proclaim", "resign")
	if err != nil && action == "" {
		return err
	}
	switch action {
	case "campaign":
		if err != nil {
			return err
		}
		return s.campaign(c, name)
	case "proclaim":
		if err != nil {
			return err
		}
		return s.proclaim(c, name)
	case "resign":
		if err != nil {
			return err
		}
		return s.resign(c, name)
	}
	c.Response().Header().Set(echo.HeaderAllow, http.MethodGet)
	return api.Errorf(api.CodeMethodNotAllowed, "method POST is not allowed on %s: POST to /v1/elections/{name}/campaign, /proclaim or /resign", c.Request().URL.Path)
}

// campaign serves POST /v1/elections/{name}/campaign: 200 api.Leadership
// once the session leads; 409 not_leader with the current leader when it
// did not wait, or its wait ran out (then it has left the queue, unless it
// won leadership in that race: then 200). A campaign by the leader answers its
// term and, like etcd's Campaign, proclaims its value if it differs; a
// campaign by a queued candidate keeps its place (and, if it waits, takes
// its value). A client that goes away while queued is
// withdrawn from the queue, never resigned (as for locks: its session may
// have retried elsewhere; a session whose client is gone ends with its TTL).
func (s *Server) campaign(c echo.Context, name string) error {
	var req api.CampaignRequest
	if err := decodeBody(c, &req, true, exampleCampaign); err != nil {
		return err
	}
	if req.Session == 0 {
		return api.Errorf(api.CodeInvalidArgument, "session is required, e.g. %s", exampleCampaign)
	}
	if err := checkValue(req.Value); err != nil {
		return err
	}
	if err := s.checkWait(req.Wait); err != nil {
		return err
	}
	wait := time.Duration(req.Wait)
	start := time.Now()
	sid := uint64(req.Session)
	ctx, cancel := s.writeCtx(c)
	res, idx, err := s.node.Propose(ctx, &lock.Command{Op: lock.OpCampaign, Session: sid, Name: name, Value: req.Value, Wait: wait > 0})
	cancel()
	if err != nil {
		return s.proposeFailed(c, err, wait)
	}
	leading := func(term uint64, value string) error {
		return writeJSON(c, http.StatusOK, api.Leadership{Name: name, Session: req.Session, Value: value, Term: term})
	}
	switch res.Code {
	case lock.CodeOK:
		value := req.Value
		if res.Leader != nil {
			value = res.Leader.Value
		}
		return leading(res.Token, value)
	case lock.CodeQueued:
	case lock.CodeNotLeader:
		return notLeader(name, res.Leader, "not leading")
	case lock.CodeSessionNotFound:
		return sessionNotFound(req.Session)
	default:
		return api.Errorf(api.CodeInvalidArgument, "session %d cannot campaign in %q (an ephemeral session is bound to its one lock)", sid, name)
	}

	withdraw := func(ctx context.Context) (lock.Result, error) {
		r, _, err := s.node.Propose(ctx, &lock.Command{Op: lock.OpResign, Session: sid, Name: name})
		return r, err
	}
	// clientGone withdraws the candidacy of a client that went away.
	clientGone := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		if _, err := withdraw(ctx); err != nil {
			s.log.Warn("withdraw the candidacy of a client that has gone", "election", name, "session", sid, "error", err)
		}
		return c.Request().Context().Err()
	}
	// giveUp ends a wait that ran out (or a subscription that fell
	// behind): leave the queue; if leadership won the race, answer it.
	giveUp := func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.RequestTimeout)
		defer cancel()
		r, err := withdraw(ctx)
		if err != nil {
			return api.Errorf(api.CodeTimeout, "the wait of %v for election %q ran out, but leaving its queue failed (%v): the session may still be a candidate and may yet lead; retrying the same campaign is safe and tells", wait, name, err)
		}
		if r.Code == lock.CodeSessionNotFound {
			return sessionNotFound(req.Session)
		}
		if r.Token > 0 {
			var value string
			_ = s.node.Read(ctx, true, func(m *lock.Machine) {
				if ei, ok := m.Election(name); ok && ei.Leader != nil {
					value = ei.Leader.Value
				}
			})
			return leading(r.Token, value)
		}
		var leader *lock.Leader
		_ = s.node.Read(ctx, true, func(m *lock.Machine) {
			if ei, ok := m.Election(name); ok {
				leader = ei.Leader
			}
		})
		return notLeader(name, leader, "the wait of "+wait.String()+" ran out and the session left the queue")
	}

	// Queued. Subscribe only now (most campaigns lead at once or are
	// refused): ReadWatch reads this node's state, which already holds the
	// entry that queued the session, and delivers every event after exactly
	// that state. What happened in between is in the state.
	var (
		term           uint64
		value          string
		gone, dequeued bool
	)
	ctx, cancel = s.writeCtx(c)
	events, unsubscribe, err := s.node.ReadWatch(ctx, true, func(m *lock.Machine) {
		if _, ok := m.Session(sid); !ok {
			gone = true
			return
		}
		ei, _ := m.Election(name)
		if ei.Leader != nil && ei.Leader.Session == sid {
			term, value = ei.Leader.Term, ei.Leader.Value
			return
		}
		dequeued = !slices.ContainsFunc(ei.Candidates, func(c lock.Candidate) bool { return c.Session == sid })
	}, subscribeBuf)
	cancel()
	if err != nil {
		if c.Request().Context().Err() != nil {
			return clientGone()
		}
		return giveUp()
	}
	defer unsubscribe()
	switch {
	case gone:
		return api.Errorf(api.CodeSessionNotFound, "session %d expired or was closed while it campaigned in %q", sid, name)
	case term != 0:
		return leading(term, value)
	case dequeued:
		// Taken out of the queue by another request of the same session
		// (a withdraw): settle it as a wait that ran out.
		return giveUp()
	}

	timer := time.NewTimer(wait - time.Since(start))
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return giveUp()
			}
			if ev.Revision <= idx || ev.Session != sid {
				continue
			}
			switch {
			case ev.Type == lock.EventElected && ev.Name == name:
				return leading(ev.Token, ev.Value)
			case ev.Type == lock.EventSessionExpired, ev.Type == lock.EventSessionClosed:
				return api.Errorf(api.CodeSessionNotFound, "session %d expired or was closed while it campaigned in %q", sid, name)
			}
		case <-timer.C:
			return giveUp()
		case <-c.Request().Context().Done():
			return clientGone()
		}
	}
}

// proclaim serves POST /v1/elections/{name}/proclaim: the leader with term
// changes its value. 409 not_leader otherwise (nothing changes).
func (s *Server) proclaim(c echo.Context, name string) error {
	var req api.ProclaimRequest
	if err := decodeBody(c, &req, true, exampleProclaim); err != nil {
		return err
	}
	if req.Session == 0 || req.Term == 0 {
		return api.Errorf(api.CodeInvalidArgument, "session and term (> 0, from the campaign) are required, e.g. %s", exampleProclaim)
	}
	if err := checkValue(req.Value); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.node.Propose(ctx, &lock.Command{Op: lock.OpProclaim, Session: uint64(req.Session), Name: name, Token: req.Term, Value: req.Value})
	if err != nil {
		return s.proposeFailed(c, err, 0)
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
	if err := decodeBody(c, &req, true, exampleResign); err != nil {
		return err
	}
	if req.Session == 0 || req.Term == 0 {
		return api.Errorf(api.CodeInvalidArgument, "session and term (> 0, from the campaign) are required, e.g. %s", exampleResign)
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.node.Propose(ctx, &lock.Command{Op: lock.OpResign, Session: uint64(req.Session), Name: name, Token: req.Term})
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if res.Code != lock.CodeOK {
		var leader *lock.Leader
		_ = s.node.Read(ctx, true, func(m *lock.Machine) {
			if ei, ok := m.Election(name); ok {
				leader = ei.Leader
			}
		})
		return notLeader(name, leader, fmt.Sprintf("session %s does not lead with term %d", req.Session, req.Term))
	}
	return writeJSON(c, http.StatusOK, api.Leadership{Name: name, Session: req.Session, Term: req.Term})
}

// getElection: GET /v1/elections/{name} (and .../observe, see observe).
func (s *Server) getElection(c echo.Context) error {
	name, action, err := electionName(c, "observe")
	if err != nil {
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

// listElections: GET /v1/elections?prefix=p → 200 api.ElectionList.
func (s *Server) listElections(c echo.Context) error {
	prefix := c.QueryParam(api.QueryPrefix)
	if err := api.ValidateLockPrefix(prefix); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	out := api.ElectionList{Elections: []api.Election{}}
	if err := s.read(c, func(m *lock.Machine) {
		for _, ei := range m.Elections(prefix) {
			out.Elections = append(out.Elections, apiElection(ei))
		}
	}); err != nil {
		return err
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
