package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// streamFlushBytes is the most a stream encodes before it writes: a
// message larger than this (one log entry with many events, a page of the
// state) goes out in pieces, so a stream never holds much more.
const streamFlushBytes = 32 << 10

// sse writes Server-Sent Events to one response. Every write must complete
// within streamWriteTimeout, or the stream ends: a client that stops
// reading is cut once the connection's buffers are full, holding at most
// streamFlushBytes and one event in this process.
type sse struct {
	c     echo.Context
	rc    *http.ResponseController
	slots *streamSlots // counts cut streams; nil in none
	buf   []byte
	open  bool // a message is begun and not ended
	jb    bytes.Buffer
	enc   *json.Encoder // into jb, without HTML escaping (as writeJSON)
}

// startSSE answers 200 with the event-stream headers. The stream lives as
// long as its client: the server's read deadline (if any) is lifted, and
// each write sets its own deadline.
func startSSE(c echo.Context) *sse {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	out := &sse{c: c, rc: http.NewResponseController(c.Response())}
	_ = out.rc.SetReadDeadline(time.Time{}) // ErrNotSupported in tests' recorders
	c.Response().WriteHeader(http.StatusOK)
	_ = out.flush()
	return out
}

// write writes b within streamWriteTimeout.
func (out *sse) write(b []byte) error {
	if out.slots != nil {
		out.slots.noteBuffered(len(b))
	}
	_ = out.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := out.c.Response().Write(b); err != nil {
		return out.failed(err)
	}
	return nil
}

// flush sends what is buffered within streamWriteTimeout.
func (out *sse) flush() error {
	_ = out.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if err := out.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return out.failed(err)
	}
	return nil
}

// failed counts a write that ran out of time: the client stopped reading.
func (out *sse) failed(err error) error {
	if out.slots != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		out.slots.cutSlow.Add(1)
	}
	return err
}

// writeBuf writes and empties out.buf when it holds at least
// streamFlushBytes, or at all when force.
func (out *sse) writeBuf(force bool) error {
	if len(out.buf) == 0 || !force && len(out.buf) < streamFlushBytes {
		return nil
	}
	err := out.write(out.buf)
	out.buf = out.buf[:0]
	return err
}

// begin starts a message: its id line (none when id is 0), its event line
// and the start of its data line.
func (out *sse) begin(event string, id uint64) {
	out.open = true
	if id != 0 {
		out.buf = append(out.buf, "id: "...)
		out.buf = strconv.AppendUint(out.buf, id, 10)
		out.buf = append(out.buf, '\n')
	}
	out.buf = append(out.buf, "event: "...)
	out.buf = append(out.buf, event...)
	out.buf = append(out.buf, "\ndata: "...)
}

// end ends the message begun by begin and sends it.
func (out *sse) end() error {
	out.open = false
	out.buf = append(out.buf, "\n\n"...)
	if err := out.writeBuf(true); err != nil {
		return err
	}
	return out.flush()
}

// appendJSON appends v's JSON to the message: compact, on one line (JSON
// escapes newlines in strings, and U+2028 and U+2029), with '<', '>' and
// '&' as they are, as in every answer (writeJSON).
func (out *sse) appendJSON(v any) error {
	if out.enc == nil {
		out.enc = json.NewEncoder(&out.jb)
		out.enc.SetEscapeHTML(false)
	}
	out.jb.Reset()
	if err := out.enc.Encode(v); err != nil {
		return fmt.Errorf("encode stream message: %w", err)
	}
	out.buf = append(out.buf, bytes.TrimSuffix(out.jb.Bytes(), []byte("\n"))...)
	return out.writeBuf(false)
}

// send writes one message whose data is v's JSON; id 0 writes no id line.
func (out *sse) send(event string, id uint64, v any) error {
	out.begin(event, id)
	if err := out.appendJSON(v); err != nil {
		return err
	}
	return out.end()
}

// comment writes a comment line (": text").
func (out *sse) comment(text string) error {
	out.buf = append(out.buf, ": "...)
	out.buf = append(out.buf, text...)
	return out.end()
}

// lastEventID parses the Last-Event-ID header (or ?after= for clients that
// cannot set headers): a revision as the server writes one (digits, no
// leading zero); ok is false when neither is present.
func lastEventID(c echo.Context) (rev uint64, ok bool, err error) {
	v := c.Request().Header.Get(api.HeaderLastEventID)
	src := api.HeaderLastEventID
	if v == "" {
		v, src = c.QueryParam("after"), "after"
	}
	if v == "" {
		return 0, false, nil
	}
	rev, ok = parseDecimal(v)
	if !ok {
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

// subscription is one stream's place in the node's events: a slot of the
// stream caps, a use of the event log, a cursor in it, and the revision
// the stream starts after.
type subscription struct {
	log    *eventLog
	slots  *streamSlots
	cur    *cursor
	after  uint64
	cancel func() // releases the slot and the log; idempotent
}

// openStream takes a stream slot for the request's principal (429
// quota_exceeded beyond MaxStreams or MaxStreamsPerPrincipal) and a use of
// the event log (started by the first stream). Call cancel when done.
func (s *Server) openStream(c echo.Context) (*subscription, error) {
	e := s.edge()
	releaseSlot, err := e.streams.acquire(principalOf(c))
	if err != nil {
		return nil, err
	}
	releaseLog, err := e.log.acquire()
	if err != nil {
		releaseSlot()
		return nil, err
	}
	return &subscription{log: e.log, slots: &e.streams, cancel: func() { releaseLog(); releaseSlot() }}, nil
}

// subscribe starts the events of a stream (observe's): from the event log
// after Last-Event-ID when the client resumes (*raftnode.CompactedError when
// the log no longer holds them: the caller sends a "compacted" error
// message), else after a read of the current state on this node's loop,
// which initial receives. Streams are served from this node's own applied
// state (a follower serves its own). On error nothing is held.
func (s *Server) subscribe(c echo.Context, initial func(m *lock.Machine, rev uint64)) (*subscription, error) {
	after, resume, err := lastEventID(c)
	if err != nil {
		return nil, err
	}
	sub, err := s.openStream(c)
	if err != nil {
		return nil, err
	}
	if !resume {
		ctx, cancel := s.writeCtx(c)
		defer cancel()
		if err := s.node.Read(ctx, true, func(m *lock.Machine) {
			after = m.AppliedIndex()
			initial(m, after)
		}); err != nil {
			sub.cancel()
			return nil, err
		}
	}
	if sub.cur, err = sub.log.cursorAfter(after); err != nil {
		sub.cancel()
		if resume && isCompacted(err) {
			return nil, err
		}
		return nil, streamStartError(err)
	}
	sub.after = after
	return sub, nil
}

// streamStartError is the answer to a stream that could not take its
// place in the event log after reading the state: the log ended (the node
// is stopping, or dropped the log), or more events than the log holds
// came meanwhile. Both are rare and a retry is safe: 503 unavailable.
func streamStartError(err error) error {
	switch {
	case errors.Is(err, errLogEnded):
		return api.Errorf(api.CodeUnavailable, "this node's event stream restarted while the stream started; retry")
	case isCompacted(err):
		return api.Errorf(api.CodeUnavailable, "the node changed too fast while the stream started; retry")
	}
	return err
}

// entryWriter receives the matching events of one log entry (one
// revision), in order, and then the entry's end.
type entryWriter interface {
	event(ev lock.Event) error
	end(rev uint64) error
}

// errEndStream ends a stream quietly: its client went away or cannot be
// written to.
var errEndStream = errors.New("end of stream")

// pumpEntries reads sub's cursor and hands the events with a revision in
// (lower, until] that match to w, an entry at a time. With until 0 it goes
// on for the stream's life, waiting for new events and sending a
// keep-alive comment every StreamKeepAlive; otherwise it returns when the
// next event is past until (left unread) or the log holds no more (call
// the log's sync first, so that it holds everything up to until). It
// returns errEndStream when the client went away or a write failed, and
// errLogEnded or errFellBehind when the stream must end.
func (s *Server) pumpEntries(out *sse, sub *subscription, lower, until uint64, match func(ev lock.Event) bool, w entryWriter) error {
	ctx := out.c.Request().Context()
	var ka *time.Ticker
	var kaC <-chan time.Time
	if until == 0 {
		ka = time.NewTicker(s.cfg.StreamKeepAlive)
		defer ka.Stop()
		kaC = ka.C
	}
	piece := make([]lock.Event, streamPiece)
	var (
		open    bool // an entry's message is begun
		openRev uint64
	)
	closeEntry := func() error {
		if !open {
			return nil
		}
		open = false
		if err := w.end(openRev); err != nil {
			return errEndStream
		}
		return nil
	}
	for {
		n, first, wake, err := sub.log.read(sub.cur, piece)
		if err != nil {
			return err
		}
		if n == 0 {
			if until != 0 {
				// After sync the log holds every entry up to until whole.
				return closeEntry()
			}
			// Live: an entry's message stays open until its end-of-entry
			// marker, which the node sent with its events; no comment may
			// go into the middle of a message.
			select {
			case <-wake:
			case <-kaC:
				if !open && out.comment("keep-alive") != nil {
					return errEndStream
				}
			case <-ctx.Done():
				return errEndStream
			}
			continue
		}
		for i, ev := range piece[:n] {
			if ev.Revision <= lower {
				continue
			}
			if until != 0 && ev.Revision > until {
				sub.cur.pos = first + uint64(i) // unread
				clear(piece)
				return closeEntry()
			}
			if open && ev.Revision != openRev {
				if err := closeEntry(); err != nil {
					return err
				}
			}
			if ev.Type == 0 { // the entry's end-of-entry marker
				if err := closeEntry(); err != nil {
					return err
				}
				continue
			}
			if !match(ev) {
				continue
			}
			if err := w.event(ev); err != nil {
				return errEndStream
			}
			open, openRev = true, ev.Revision
		}
		clear(piece) // hold no strings of events already sent
		if ctx.Err() != nil {
			return errEndStream
		}
	}
}

// collectWriter gathers an entry's matching events and hands them to send
// at its end: for observe, whose entries match a handful of events at
// most (one election's changes in one entry).
type collectWriter struct {
	evs  []lock.Event
	send func(rev uint64, evs []lock.Event) error
}

func (w *collectWriter) event(ev lock.Event) error {
	w.evs = append(w.evs, ev)
	return nil
}

func (w *collectWriter) end(rev uint64) error {
	err := w.send(rev, w.evs)
	clear(w.evs)
	w.evs = w.evs[:0]
	return err
}

// pump delivers the events of sub to the stream, one message per revision
// with the events that match (send writes it), until the client goes away,
// a write fails or times out, or the stream falls too far behind. It
// sends a keep-alive comment every StreamKeepAlive.
func (s *Server) pump(out *sse, sub *subscription, match func(ev lock.Event) bool, send func(rev uint64, evs []lock.Event) error) error {
	out.slots = sub.slots
	return s.endStream(out, s.pumpEntries(out, sub, sub.after, 0, match, &collectWriter{send: send}))
}

// endStream ends a stream after pumpEntries returned err: with a comment
// telling the client to resume when the log ended or the stream fell
// behind, quietly otherwise. The handler returns its result (nil: the
// answer is already under way).
func (s *Server) endStream(out *sse, err error) error {
	if errors.Is(err, errFellBehind) && out.slots != nil {
		out.slots.cutBehind.Add(1)
	}
	if out.open {
		// A message is half written: the client drops it when the
		// connection closes; a comment now would complete it wrongly.
		out.buf = out.buf[:0]
		return nil
	}
	if errors.Is(err, errFellBehind) || errors.Is(err, errLogEnded) {
		_ = out.comment(err.Error())
	}
	return nil
}

// streamError reports a failure to start or resume a stream: as a JSON
// error before the stream started, as an "error" message after.
func streamError(out *sse, err error) error {
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
	var mode string
	if ev.Mode == lock.Shared {
		mode = api.ModeShared
	}
	return api.Event{
		Mode:     mode,
		Revision: ev.Revision,
		Seq:      ev.Seq,
		Type:     ev.Type.String(),
		Session:  api.SessionID(ev.Session),
		Owner:    ev.Owner,
		Name:     ev.Name,
		Value:    ev.Value,
		Token:    ev.Token,
		Time:     unixTime(ev.Time),
		By:       ev.By,
	}
}

// watchWriter writes a watch's "change" messages,
// {"revision":R,"events":[...]} with the id R (none while the state is
// still being sent), an event at a time: an entry with many events goes
// out in pieces of streamFlushBytes, never built whole.
type watchWriter struct {
	out   *sse
	ids   bool
	count int // events in the open message
}

func (w *watchWriter) event(ev lock.Event) error {
	out := w.out
	if w.count == 0 {
		id := uint64(0)
		if w.ids {
			id = ev.Revision
		}
		out.begin(api.SSEChange, id)
		out.buf = append(out.buf, `{"revision":`...)
		out.buf = strconv.AppendUint(out.buf, ev.Revision, 10)
		out.buf = append(out.buf, `,"events":[`...)
	} else {
		out.buf = append(out.buf, ',')
	}
	w.count++
	return out.appendJSON(apiEvent(ev))
}

func (w *watchWriter) end(uint64) error {
	w.count = 0
	w.out.buf = append(w.out.buf, "]}"...)
	return w.out.end()
}

// sendStatePage writes one "state" message of a watch: a page of locks
// at revision rev, next when more pages follow, with the id rev only on
// the last page. The locks are encoded one at a time.
func sendStatePage(out *sse, rev uint64, infos []lock.LockInfo, next string) error {
	id := rev
	if next != "" {
		id = 0
	}
	out.begin(api.SSEState, id)
	out.buf = append(out.buf, `{"revision":`...)
	out.buf = strconv.AppendUint(out.buf, rev, 10)
	out.buf = append(out.buf, `,"locks":[`...)
	for i, li := range infos {
		if i > 0 {
			out.buf = append(out.buf, ',')
		}
		if err := out.appendJSON(apiLock(li)); err != nil {
			return err
		}
	}
	out.buf = append(out.buf, ']')
	if next != "" {
		out.buf = append(out.buf, `,"next":`...)
		b, _ := json.Marshal(next)
		out.buf = append(out.buf, b...)
	}
	out.buf = append(out.buf, '}')
	return out.end()
}

// watchLimit parses the ?limit= of a watch: the size of the state's pages.
func watchLimit(c echo.Context) (int, error) {
	v := c.QueryParam(api.QueryLimit)
	if v == "" {
		return api.DefaultListLimit, nil
	}
	n, ok := parseDecimal(v)
	if !ok || n == 0 || n > api.MaxListLimit {
		return 0, api.Errorf(api.CodeInvalidArgument, "limit=%q: the state's page size is an integer between 1 and %d (default %d)", clipValue(v), api.MaxListLimit, api.DefaultListLimit)
	}
	return int(n), nil
}

// watch: GET /v1/watch?prefix=p&limit=n → Server-Sent Events.
//
// Without Last-Event-ID the stream starts with the state: the locks under
// the prefix, in "state" messages of at most limit locks each (default
// 1,000, at most 10,000), sorted by name, each read on this node's loop
// with a bounded query at its own revision (api.WatchState). Between two
// pages come the "change" messages (without ids) that bring the names of
// the earlier pages up to the next page's revision; the last page (no
// "next") carries the id of its revision. Then one "change" message per
// revision with that revision's matching events, its id the revision.
// Lock events match when the lock's name starts with the prefix; session
// events (which have no name) only when the prefix is empty.
//
// With Last-Event-ID (or ?after=N) the stream resumes after that revision
// with no gap and no duplicate, or sends an "error" message with code
// "compacted" when the node no longer holds those events. A client that
// loses the stream before the last state page has no id to resume from:
// it starts again.
//
// A comment line keeps the connection alive. The stream takes a slot of
// the node's stream caps (429 quota_exceeded beyond them), reads the
// node's events from the shared event log, and ends when its client
// cannot be written to for streamWriteTimeout or falls more than the log
// behind (a comment says to resume, unless a message is half written).
func (s *Server) watch(c echo.Context) error {
	prefix := c.QueryParam(api.QueryPrefix)
	if err := api.ValidateLockPrefix(prefix); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	if err := s.allowPrefix(c, lock.ActionRead, prefix); err != nil { // auth.go
		return err
	}
	if _, err := consistency(c); err != nil {
		return err
	}
	limit, err := watchLimit(c)
	if err != nil {
		return err
	}
	after, resume, err := lastEventID(c)
	if err != nil {
		return err
	}
	sub, err := s.openStream(c)
	if err != nil {
		return err
	}
	defer sub.cancel()
	match := func(ev lock.Event) bool {
		if ev.Name == "" {
			return prefix == ""
		}
		return strings.HasPrefix(ev.Name, prefix)
	}
	if resume {
		cur, err := sub.log.cursorAfter(after)
		if err != nil && !isCompacted(err) {
			return streamStartError(err)
		}
		out := startSSE(c)
		out.slots = sub.slots
		if err != nil {
			return streamError(out, err)
		}
		sub.cur = cur
		return s.endStream(out, s.pumpEntries(out, sub, after, 0, match, &watchWriter{out: out, ids: true}))
	}

	// The state, a page at a time.
	rev, infos, more, err := s.watchPage(c, prefix, "", limit)
	if err != nil {
		return err
	}
	if sub.cur, err = sub.log.cursorAfter(rev); err != nil {
		return streamStartError(err)
	}
	out := startSSE(c)
	out.slots = sub.slots
	catchUp := &watchWriter{out: out}
	lower := rev // every change up to lower is in what was sent
	for {
		next := ""
		if more {
			next = infos[len(infos)-1].Name
		}
		if err := sendStatePage(out, rev, infos, next); err != nil {
			return nil
		}
		if next == "" {
			break
		}
		if rev, infos, more, err = s.watchPage(c, prefix, next, limit); err != nil {
			_ = out.comment(fmt.Sprintf("stream ended: reading the state failed (%v); reconnect", err))
			return nil
		}
		// Bring the pages sent (names up to next) to the new page's
		// revision; the new page holds the changes of its own names.
		covered := func(ev lock.Event) bool { return match(ev) && (ev.Name == "" || ev.Name <= next) }
		if err := sub.log.sync(c.Request().Context(), sub.cur); err != nil {
			return s.endStream(out, err)
		}
		if err := s.pumpEntries(out, sub, lower, rev, covered, catchUp); err != nil {
			return s.endStream(out, err)
		}
		lower = rev
	}
	return s.endStream(out, s.pumpEntries(out, sub, lower, 0, match, &watchWriter{out: out, ids: true}))
}

// watchPage reads one page of a watch's state on this node's loop: at most
// limit locks under prefix after the name after, the revision they are at,
// and whether more follow. The read costs what it returns.
func (s *Server) watchPage(c echo.Context, prefix, after string, limit int) (rev uint64, infos []lock.LockInfo, more bool, err error) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.cfg.RequestTimeout)
	defer cancel()
	err = s.node.Read(ctx, true, func(m *lock.Machine) {
		rev = m.AppliedIndex()
		infos, more = m.ListLocks(prefix, after, limit)
	})
	return rev, infos, more && len(infos) > 0, err
}
