package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// The wait path: every request that may wait in a queue of the state
// machine (an acquire of a lock, exclusive or shared, or of a semaphore, a
// campaign)
// proposes its join, and if the answer is "queued" hands the rest to
// awaitGrant, which waits for the session's own place (raftnode's Await:
// no event stream, nothing to fall behind on) and settles the wait the same
// way for every kind of queue:
//
//   - the session holds (leads): 200 with the grant;
//   - the session ended (closed, expired): 404 session_not_found;
//   - the session left the queue by another request of its own (a cancel):
//     409, "queued": false;
//   - the wait ran out: with keep_queued, 409 with "queued": true and the
//     place kept; without, a cancel is proposed, and its answer decides
//     (a grant that won the race is answered 200: the caller holds it);
//   - the client went away: with keep_queued nothing happens; without, the
//     same cancel (a fresh context bounded by RequestTimeout), but a grant
//     that won the race is never released: the session's owner may have
//     retried elsewhere and hold it legitimately (an ephemeral session is
//     closed instead: nobody else knows its token).

// queueKind is what the wait path needs to know of one kind of queue.
type queueKind struct {
	kind lock.Kind
	join string // the request that joins: "acquire", "campaign"
	// stake describes the stake of session in queue name from what the
	// state machine says of its place (lock.Machine.PlaceState).
	stake func(ps lock.PlaceState, name string, session uint64) stake
	// leave is the command that takes session out of queue name (and
	// answers its hold if the grant won the race: see cancelled).
	leave func(name string, session uint64) *lock.Command
	// cancelled reads the result of leave: whether it took the session out
	// of the queue, and its hold if it holds.
	cancelled func(res lock.Result, name string, session uint64) (left bool, held stake)
}

// stake is what a session has in one queue, as look read it.
type stake struct {
	gone   bool // the session no longer exists
	queued bool // the session waits in the queue
	// grant, when the session holds (leads), writes the 200 answer.
	grant func(c echo.Context) error
	// refusal is the 409 answer that names the current holder (leader),
	// for when the session does not hold; suffix ends its message.
	refusal func(suffix string, queued bool) error
	// The grant itself, for a cancel's answer: one of them is set with
	// grant.
	lockGrant  *api.LockGrant
	leadership *api.Leadership
	permit     *api.Permit
}

// queueWait is one request waiting in a queue.
type queueWait struct {
	kind      *queueKind
	name      string
	session   uint64
	wait      time.Duration // the request's wait, from start
	start     time.Time
	keep      bool // keep_queued
	ephemeral bool // an ephemeral session, bound to this one request
}

// awaitGrant waits for the queued session's grant (see the file comment)
// and writes the answer.
func (s *Server) awaitGrant(c echo.Context, w queueWait) error {
	s.waits.Add(1)
	defer s.waits.Add(-1)
	place := lock.Place{Kind: w.kind.kind, Name: w.name, Session: w.session}
	timer := time.NewTimer(w.wait - time.Since(w.start))
	defer timer.Stop()
	var news func() (lock.PlaceState, bool) // the last registration's, once woken
	for {
		// Register before reading: a change between the read and the
		// wait closes woken.
		woken, nextNews, unregister := s.node.Await(place)
		var st stake
		var err error
		ps, ok := newsOf(news)
		if ok {
			// The state as of the entry that woke us, read by the loop
			// as it applied it: no read queued behind the loop's next
			// WAL write on the way from a grant to its answer. Only an
			// outcome is taken from it (a grant, the session's end, the
			// place left), which is true at that entry: a session still
			// queued there may have changed since, before this
			// registration, so that is read again.
			st = w.stakeOf(ps)
			ok = st.grant != nil || st.gone || !st.queued
		}
		if !ok {
			st, err = s.look(c.Request().Context(), w)
		}
		news = nextNews
		if err != nil {
			unregister()
			if c.Request().Context().Err() != nil {
				return s.clientGone(c, w)
			}
			return s.waitEnded(c, w, stake{}, err)
		}
		switch {
		case st.grant != nil:
			unregister()
			return st.grant(c)
		case st.gone:
			unregister()
			return sessionEnded(w)
		case !st.queued:
			unregister()
			return st.refusal("; the session left the queue (cancelled by another request)", false)
		}
		select {
		case <-woken:
			unregister()
		case <-timer.C:
			unregister()
			return s.waitEnded(c, w, st, nil)
		case <-c.Request().Context().Done():
			unregister()
			return s.clientGone(c, w)
		case <-s.stopWaits:
			unregister()
			return s.nodeStopping(c, w)
		}
	}
}

// nodeStopping settles a wait on a node that stops (EndWaits): the session
// leaves the queue as for a client that has gone (a keep_queued one keeps
// its place; a grant that won the race is answered), and the answer is a
// 503 that sends the client to another member.
func (s *Server) nodeStopping(c echo.Context, w queueWait) error {
	if !w.keep {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.RequestTimeout)
		defer cancel()
		cmd := w.kind.leave(w.name, w.session)
		if w.ephemeral {
			cmd = &lock.Command{Op: lock.OpCloseSession, Session: w.session}
		}
		res, _, err := s.propose(c, ctx, cmd)
		if err != nil {
			s.log.Warn("leave a queue on shutdown", w.kind.kind.String(), w.name, "session", w.session, "error", err)
			return api.Errorf(api.CodeTimeout, "this node is stopping, and leaving the queue of %s %q failed (%v): the session may still be queued; retry on another node", w.kind.kind, w.name, err)
		}
		if _, held := w.kind.cancelled(res, w.name, w.session); held.grant != nil {
			return held.grant(c)
		}
	}
	what := "the session left the queue"
	if w.keep {
		what = "the session keeps its place in the queue (keep_queued)"
	}
	return api.Errorf(api.CodeUnavailable, "this node is stopping; %s of %s %q: retry on another node", what, w.kind.kind, w.name)
}

// look reads the session's stake from this node's applied state (a stale
// read: the node applied the entry that queued the session, and a grant
// reaches it through its log, whether it leads or follows).
func (s *Server) look(ctx context.Context, w queueWait) (stake, error) {
	var ps lock.PlaceState
	err := s.node.Read(ctx, true, func(m *lock.Machine) {
		ps = m.PlaceState(lock.Place{Kind: w.kind.kind, Name: w.name, Session: w.session})
	})
	if err != nil {
		return stake{}, err
	}
	return w.stakeOf(ps), nil
}

// stakeOf is the session's stake as ps describes its place.
func (w queueWait) stakeOf(ps lock.PlaceState) stake {
	st := w.kind.stake(ps, w.name, w.session)
	st.gone, st.queued = !ps.SessionExists, ps.Queued
	return st
}

// newsOf returns what news (nil before the first wake-up) says.
func newsOf(news func() (lock.PlaceState, bool)) (lock.PlaceState, bool) {
	if news == nil {
		return lock.PlaceState{}, false
	}
	return news()
}

func sessionEnded(w queueWait) error {
	return api.Errorf(api.CodeSessionNotFound, "session %d expired or was closed while it waited in %s %q", w.session, w.kind.kind, w.name)
}

// waitEnded settles a wait that ran out (or whose state could not be read:
// readErr): it keeps the place (keep_queued) or leaves the queue, and
// answers. last is the stake last read.
func (s *Server) waitEnded(c echo.Context, w queueWait, last stake, readErr error) error {
	ranOut := "; the wait of " + w.wait.String() + " ran out"
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), s.cfg.RequestTimeout)
	defer cancel()
	if w.keep {
		st, err := s.look(ctx, w)
		switch {
		case err != nil && readErr != nil:
			return readErr
		case err != nil:
			st = last
		case st.grant != nil:
			return st.grant(c)
		case st.gone:
			return sessionEnded(w)
		}
		if st.refusal == nil {
			return readErr
		}
		return st.refusal(ranOut+" and the session keeps its place in the queue (keep_queued): "+w.kind.join+" again to go on waiting, or cancel", st.queued)
	}
	res, _, err := s.propose(c, ctx, w.kind.leave(w.name, w.session))
	if err != nil {
		s.log.Warn("leave a queue after a wait", w.kind.kind.String(), w.name, "session", w.session, "error", err)
		return api.Errorf(api.CodeTimeout, "the wait of %v in %s %q ran out, but leaving its queue failed (%v): the session may still be queued and may yet be granted; retrying the same request is safe and tells",
			w.wait, w.kind.kind, w.name, err)
	}
	if res.Code == lock.CodeSessionNotFound {
		return sessionEnded(w)
	}
	if err, ok := authResultError(res); ok {
		return err
	}
	_, held := w.kind.cancelled(res, w.name, w.session)
	if held.grant != nil {
		return held.grant(c)
	}
	// (An ephemeral session out of its queue was closed by the cancel.)
	st, err := s.look(ctx, w)
	if err != nil || st.refusal == nil {
		st = last
	}
	if st.refusal == nil {
		return errors.Join(readErr, api.Errorf(api.CodeUnavailable, "the wait ran out and the session left the queue"))
	}
	return st.refusal(ranOut+" and the session left the queue", false)
}

// clientGone settles a wait whose client went away: nothing with
// keep_queued; otherwise the session leaves the queue (an ephemeral one is
// closed), but a grant that won the race is not released.
func (s *Server) clientGone(c echo.Context, w queueWait) error {
	if w.keep {
		return c.Request().Context().Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	cmd := w.kind.leave(w.name, w.session)
	if w.ephemeral {
		cmd = &lock.Command{Op: lock.OpCloseSession, Session: w.session}
	}
	if _, _, err := s.propose(c, ctx, cmd); err != nil && !errors.Is(err, raftnode.ErrStopped) {
		s.log.Warn("leave the queue of a client that has gone", w.kind.kind.String(), w.name, "session", w.session, "error", err)
	}
	return c.Request().Context().Err()
}

// cancelQueue serves POST .../{name}/cancel {"session"} for kind: the
// session leaves the queue. 200 with whether it left and its hold (the
// grant won the race: the caller's to release), also when it was not
// queued (a retry is safe); 404 when the session does not exist.
func (s *Server) cancelQueue(c echo.Context, k *queueKind, name string, answer func(left bool, held stake) error) error {
	var req api.CancelRequest
	if err := decodeBody(c, &req, true, api.ExampleCancel); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, k.leave(name, uint64(req.Session)))
	if err != nil {
		return s.proposeFailed(c, err, 0)
	}
	if res.Code == lock.CodeSessionNotFound {
		return sessionNotFound(req.Session)
	}
	if res.Code != lock.CodeOK {
		return resultError(res, name, uint64(req.Session))
	}
	return answer(k.cancelled(res, name, uint64(req.Session)))
}

// leftQueue reports whether events hold the departure of session from
// queue name of kind (lock_cancelled, candidate_left).
func leftQueue(evs []lock.Event, kind lock.Kind, name string, session uint64) bool {
	for _, ev := range evs {
		if ev.Session != session || ev.Name != name {
			continue
		}
		if p, _ := ev.Place(); p.Kind == kind && (ev.Type == lock.EventLockCancelled || ev.Type == lock.EventCandidateLeft || ev.Type == lock.EventPermitCancelled) {
			return true
		}
	}
	return false
}
