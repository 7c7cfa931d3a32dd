package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// streamBuf is the event buffer of one stream. A stream that falls further
// behind is ended; its client reconnects with Last-Event-ID and resumes from
// the node's history.
const streamBuf = 4096

// sse writes Server-Sent Events to one response.
type sse struct {
	c echo.Context
}

func startSSE(c echo.Context) sse {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush()
	return sse{c: c}
}

// send writes one message; id 0 writes no id line.
func (s sse) send(event string, id uint64, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	var sb strings.Builder
	if id != 0 {
		sb.WriteString("id: ")
		sb.WriteString(strconv.FormatUint(id, 10))
		sb.WriteByte('\n')
	}
	sb.WriteString("event: ")
	sb.WriteString(event)
	sb.WriteString("\ndata: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	if _, err := s.c.Response().Write([]byte(sb.String())); err != nil {
		return err
	}
	s.c.Response().Flush()
	return nil
}

func (s sse) comment(text string) error {
	if _, err := s.c.Response().Write([]byte(": " + text + "\n\n")); err != nil {
		return err
	}
	s.c.Response().Flush()
	return nil
}

// lastEventID parses the Last-Event-ID header (or ?after= for clients that
// cannot set headers); ok is false when neither is present.
func lastEventID(c echo.Context) (rev uint64, ok bool, err error) {
	v := c.Request().Header.Get(api.HeaderLastEventID)
	src := api.HeaderLastEventID
	if v == "" {
		v, src = c.QueryParam("after"), "after"
	}
	if v == "" {
		return 0, false, nil
	}
	rev, perr := strconv.ParseUint(v, 10, 64)
	if perr != nil {
		return 0, false, api.Errorf(api.CodeInvalidArgument, "%s %q is not a revision: send back the id of the last event received", src, clipValue(v))
	}
	return rev, true, nil
}

func clipValue(v string) string {
	if len(v) > 40 {
		return v[:40] + "…"
	}
	return v
}

// subscription is where a stream's events come from, and the revision the
// stream starts after.
type subscription struct {
	events <-chan lock.Event
	cancel func()
	after  uint64
}

// subscribe starts the events of a stream: from the node's history after
// Last-Event-ID when the client resumes (compacted → a 410-like error
// message in the stream), else at a consistent read of the current state,
// which initial receives. Streams are served from this node's own applied
// state (a follower serves its own).
func (s *Server) subscribe(c echo.Context, initial func(m *lock.Machine, rev uint64)) (*subscription, error) {
	after, resume, err := lastEventID(c)
	if err != nil {
		return nil, err
	}
	if resume {
		evs, cancel, err := s.node.Watch(after, streamBuf)
		if err != nil {
			return nil, err
		}
		return &subscription{events: evs, cancel: cancel, after: after}, nil
	}
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	var rev uint64
	evs, unsub, err := s.node.ReadWatch(ctx, true, func(m *lock.Machine) {
		rev = m.AppliedIndex()
		initial(m, rev)
	}, streamBuf)
	if err != nil {
		return nil, err
	}
	return &subscription{events: evs, cancel: unsub, after: rev}, nil
}

// pump delivers the events of sub to the stream, one message per revision
// with the events that match, until the client goes away or the
// subscription ends. It sends a keep-alive comment every KeepAlive.
func (s *Server) pump(out sse, sub *subscription, match func(ev lock.Event) bool, send func(rev uint64, evs []lock.Event) error) error {
	ctx := out.c.Request().Context()
	ka := time.NewTicker(s.cfg.StreamKeepAlive)
	defer ka.Stop()
	var pending *lock.Event
	for {
		var first lock.Event
		if pending != nil {
			first, pending = *pending, nil
		} else {
			select {
			case ev, ok := <-sub.events:
				if !ok {
					// Dropped for falling behind, or the node stopped:
					// the client resumes with Last-Event-ID.
					return out.comment("stream ended; reconnect with Last-Event-ID to resume")
				}
				first = ev
			case <-ka.C:
				if err := out.comment("keep-alive"); err != nil {
					return nil
				}
				continue
			case <-ctx.Done():
				return nil
			}
		}
		if first.Revision <= sub.after {
			continue
		}
		// Gather the entry's events up to its end-of-entry marker (Type
		// 0), which the node publishes together with them.
		batch := []lock.Event{first}
		for first.Type != 0 {
			ev, ok := <-sub.events
			if !ok {
				break
			}
			if ev.Revision != first.Revision {
				pending = &ev
				break
			}
			if ev.Type == 0 {
				break
			}
			batch = append(batch, ev)
		}
		matched := batch[:0]
		for _, ev := range batch {
			if ev.Type != 0 && match(ev) {
				matched = append(matched, ev)
			}
		}
		if len(matched) == 0 {
			continue
		}
		if err := send(first.Revision, matched); err != nil {
			return nil
		}
	}
}

// streamError reports a failure to start or resume a stream: as a JSON
// error before the stream started, as an "error" message after.
func streamError(out sse, err error) error {
	var ce *raftnode.CompactedError
	if errors.As(err, &ce) {
		return out.send(api.SSEError, 0, api.ErrorResponse{Error: api.Error{
			Code:    api.CodeCompacted,
			Message: fmt.Sprintf("cannot resume: this node no longer holds the events after that revision (it can resume after %d); re-read the state by reconnecting without Last-Event-ID", ce.Oldest),
		}})
	}
	return err
}

func isCompacted(err error) bool { return errors.Is(err, raftnode.ErrCompacted) }

func apiEvent(ev lock.Event) api.Event {
	return api.Event{
		Revision: ev.Revision,
		Seq:      ev.Seq,
		Type:     ev.Type.String(),
		Session:  api.SessionID(ev.Session),
		Owner:    ev.Owner,
		Name:     ev.Name,
		Value:    ev.Value,
		Token:    ev.Token,
		Time:     unixTime(ev.Time),
	}
}

// watch: GET /v1/watch?prefix=p → Server-Sent Events. Without
// Last-Event-ID the first message is "state" (the locks under the prefix and
// the revision they are at); then one "change" message per revision with
// that revision's matching events, its id the revision. Lock events match
// when the lock's name starts with the prefix; session events (which have
// no name) only when the prefix is empty. With Last-Event-ID (or ?after=N)
// the stream resumes after that revision with no gap and no duplicate, or
// sends an "error" message with code "compacted" when the node no longer
// holds those events. A comment line keeps the connection alive.
func (s *Server) watch(c echo.Context) error {
	prefix := c.QueryParam(api.QueryPrefix)
	if err := api.ValidateLockPrefix(prefix); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	if _, err := consistency(c); err != nil {
		return err
	}
	var state api.WatchState
	sub, err := s.subscribe(c, func(m *lock.Machine, rev uint64) {
		state.Revision = rev
		state.Locks = []api.Lock{}
		for _, li := range m.Locks(prefix) {
			state.Locks = append(state.Locks, apiLock(li))
		}
	})
	if err != nil && !isCompacted(err) {
		return err
	}
	out := startSSE(c)
	if err != nil {
		return streamError(out, err)
	}
	defer sub.cancel()
	if state.Locks != nil {
		if err := out.send(api.SSEState, state.Revision, state); err != nil {
			return nil
		}
	}
	match := func(ev lock.Event) bool {
		if ev.Name == "" {
			return prefix == ""
		}
		return strings.HasPrefix(ev.Name, prefix)
	}
	return s.pump(out, sub, match, func(rev uint64, evs []lock.Event) error {
		b := api.WatchBatch{Revision: rev, Events: make([]api.Event, len(evs))}
		for i, ev := range evs {
			b.Events[i] = apiEvent(ev)
		}
		return out.send(api.SSEChange, rev, b)
	})
}
