package httpapi

// The HTTP edge's state and its streams' shared event log (issue 11).
//
// Server (server.go) holds its configuration only; what the edge keeps
// between requests (rate-limit buckets, the stream slots, the event log
// every stream reads) lives in an edgeState per Server, found by edge().
//
// Streams (watch, observe) used to each subscribe to the node: a channel
// of 4,096 events per stream, and on resume one that also held a copy of
// the whole backlog since Last-Event-ID (up to the node's 10,000 events of
// history): 300 resumed streams that never read held 620 MB. Now one
// subscription per node feeds a bounded ring (eventLog) that every stream
// reads by position, in pieces of at most streamPiece events: a stream
// holds a position and one piece, never a copy of the backlog, whatever
// it resumes from and however slowly it reads. A stream that falls more
// than the ring behind is ended (its client resumes with Last-Event-ID,
// or re-reads the state if the events are gone), and so is a stream that
// cannot write for streamWriteTimeout.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// Bounds of the streams. Variables so that tests can make them small.
var (
	// streamRing is the number of events the event log holds: at least
	// the node's default history (10,000 events), so that a stream
	// resumes from whatever the node could resume from. A stream further
	// behind than this is ended.
	streamRing = 16384
	// streamFeedBuf is the buffer of the log's one subscription to the
	// node. The node drops a subscriber that falls this far behind (one
	// entry with more events, or a feeder starved of CPU): the log then
	// ends every stream, whose clients resume.
	streamFeedBuf = 16384
	// streamPiece is the most events a stream copies out of the log at
	// once, and so the most it holds besides its position.
	streamPiece = 64
	// streamWriteTimeout is how long one write of a stream may block: a
	// client that does not read for that long is cut.
	streamWriteTimeout = 10 * time.Second
)

// edgeState is what the HTTP edge keeps for one Server between requests.
type edgeState struct {
	limiter *rateLimiter // ratelimit.go; nil without a limit
	streams streamSlots
	log     *eventLog
}

// edge returns s's edgeState (made by New).
func (s *Server) edge() *edgeState { return s.edgeState }

func newEdgeState(cfg Config) *edgeState {
	return &edgeState{
		limiter: newRateLimiter(cfg.RateLimit, cfg.RateBurst),
		streams: streamSlots{max: cfg.MaxStreams, perPrincipal: cfg.MaxStreamsPerPrincipal, byPrincipal: map[string]int{},
			authOn: func() bool { return cfg.Node.Auth().Enabled() }},
		log: &eventLog{node: cfg.Node},
	}
}

// streamSlots counts the open streams of a node, in all and per
// principal. The per-principal cap applies to authenticated principals
// only: without auth every client is the principal "", and a cap on it
// would be a second, smaller cap on the whole node.
type streamSlots struct {
	max, perPrincipal int         // <= 0: no cap
	authOn            func() bool // the per-principal cap holds once auth is on

	mu          sync.Mutex
	open        int
	byPrincipal map[string]int
	cutSlow     atomic.Uint64 // streams ended because a write blocked
	cutBehind   atomic.Uint64 // streams ended because they fell behind the log
	maxWrite    atomic.Int64  // the most bytes a stream handed to one write
}

// noteBuffered records a write of n bytes by a stream.
func (ss *streamSlots) noteBuffered(n int) {
	for {
		m := ss.maxWrite.Load()
		if int64(n) <= m || ss.maxWrite.CompareAndSwap(m, int64(n)) {
			return
		}
	}
}

// acquire takes a slot for a stream of principal p, or returns a 429
// quota_exceeded error that names the cap reached. release gives the slot
// back; call it exactly once.
func (ss *streamSlots) acquire(p string) (release func(), err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.max > 0 && ss.open >= ss.max {
		return nil, api.Errorf(api.CodeQuotaExceeded, "this node already serves %d watch and observe streams, its maximum (MaxStreams): close a stream or use another node", ss.max)
	}
	if p != "" && ss.perPrincipal > 0 && ss.byPrincipal[p] >= ss.perPrincipal && ss.authOn() {
		return nil, api.Errorf(api.CodeQuotaExceeded, "principal %q already has %d watch and observe streams open on this node, its maximum (MaxStreamsPerPrincipal): close one first", p, ss.perPrincipal)
	}
	ss.open++
	if p != "" {
		ss.byPrincipal[p]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ss.mu.Lock()
			defer ss.mu.Unlock()
			ss.open--
			if p != "" {
				if ss.byPrincipal[p]--; ss.byPrincipal[p] <= 0 {
					delete(ss.byPrincipal, p)
				}
			}
		})
	}, nil
}

// count returns the number of open streams and of principals with some.
func (ss *streamSlots) count() (open, principals int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.open, len(ss.byPrincipal)
}

// Why a stream's reading of the log ends.
var (
	// errLogEnded: the log's subscription to the node ended (the node is
	// stopping, or dropped the log for falling behind). The stream ends;
	// its client resumes, on this node or another.
	errLogEnded = errors.New("stream ended; reconnect with Last-Event-ID to resume")
	// errFellBehind: the log dropped events the stream had not sent yet.
	errFellBehind = errors.New("stream ended: it fell too far behind; reconnect with Last-Event-ID to resume")
)

// eventLog is the node's recent events, as the streams of one Server read
// them: one subscription to the node, started by the first stream and
// cancelled when the last one ends, feeds a ring of at most streamRing
// events. Streams read it by position (cursor), in pieces; nothing is
// copied per stream. It is safe for concurrent use.
type eventLog struct {
	node raftnode.Proposer

	mu       sync.Mutex
	ring     []lock.Event // ring[pos%len(ring)] for start <= pos < end
	start    uint64
	end      uint64
	complete uint64 // every event with a revision > complete is held
	gen      uint64 // incremented at each start and stop
	live     bool
	users    int
	cancel   func()             // the node subscription's
	fence    chan chan struct{} // to the feeder: take in what the node has sent, then reply
	wake     chan struct{}      // closed and replaced when events arrive or the log ends
	ended    chan struct{}      // closed when the current generation ends
	most     int                // the most events held at once
}

// cursor is one stream's position in the log.
type cursor struct {
	gen uint64
	pos uint64
}

// acquire registers a user of the log, starting it if it is not live:
// a subscription to the node from the oldest event the node still holds.
// release ends the use; the last user's release stops the log.
func (l *eventLog) acquire() (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.live {
		if err := l.startLocked(); err != nil {
			return nil, err
		}
	}
	l.users++
	var once sync.Once
	return func() { once.Do(l.release) }, nil
}

func (l *eventLog) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.users--; l.users > 0 {
		return
	}
	if l.live {
		l.cancel() // the feeder exits
		l.endLocked()
	}
	l.ring = nil
}

// startLocked subscribes to the node from its oldest held event (Watch
// copies that backlog once, for the log, not per stream) and starts the
// feeder.
func (l *eventLog) startLocked() error {
	var after uint64
	var (
		src    <-chan lock.Event
		cancel func()
		err    error
	)
	for range 3 {
		src, cancel, err = l.node.Watch(after, streamFeedBuf)
		var ce *raftnode.CompactedError
		if !errors.As(err, &ce) {
			break
		}
		after = ce.Oldest // compacted meanwhile: try from the new oldest
	}
	if err != nil {
		return fmt.Errorf("start the event log: %w", err)
	}
	if len(l.ring) != streamRing {
		l.ring = make([]lock.Event, streamRing)
	}
	l.gen++
	l.start, l.end, l.complete = 0, 0, after
	l.live, l.cancel = true, cancel
	l.fence = make(chan chan struct{})
	l.wake = make(chan struct{})
	l.ended = make(chan struct{})
	go l.feed(l.gen, src, l.fence, l.ended)
	return nil
}

// endLocked marks the current generation ended and wakes every reader.
func (l *eventLog) endLocked() {
	l.live = false
	l.gen++
	close(l.ended)
	close(l.wake)
	l.wake = make(chan struct{})
}

// feed appends what the node sends to the ring until the subscription
// ends, and serves fences: a fence takes in every event the node sent
// before it was asked, so a reader that read the state at revision R and
// then fenced finds every event up to R in the ring.
func (l *eventLog) feed(gen uint64, src <-chan lock.Event, fence <-chan chan struct{}, ended <-chan struct{}) {
	take := func(ev lock.Event, ok bool) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.gen != gen {
			return false
		}
		for {
			if !ok {
				l.endLocked() // dropped by the node, or the node stopped
				return false
			}
			l.appendLocked(ev)
			select {
			case ev, ok = <-src:
				continue
			default:
			}
			break
		}
		close(l.wake)
		l.wake = make(chan struct{})
		return true
	}
	for {
		select {
		case ev, ok := <-src:
			if !take(ev, ok) {
				return
			}
		case reply := <-fence:
			select {
			case ev, ok := <-src:
				if !take(ev, ok) {
					close(reply)
					return
				}
			default:
			}
			close(reply)
		case <-ended:
			return
		}
	}
}

// appendLocked adds ev to the ring, dropping the oldest event when full.
func (l *eventLog) appendLocked(ev lock.Event) {
	if l.end-l.start == uint64(len(l.ring)) {
		l.complete = max(l.complete, l.ring[l.start%uint64(len(l.ring))].Revision)
		l.start++
	}
	l.ring[l.end%uint64(len(l.ring))] = ev
	l.end++
	l.most = max(l.most, int(l.end-l.start))
}

// cursorAfter returns a cursor at the first event with a revision greater
// than rev that the log holds or will hold, or a *raftnode.CompactedError
// when it no longer holds every event after rev.
func (l *eventLog) cursorAfter(rev uint64) (*cursor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.live {
		return nil, errLogEnded
	}
	if rev < l.complete {
		return nil, &raftnode.CompactedError{Oldest: l.complete}
	}
	n := l.end - l.start
	i := sort.Search(int(n), func(i int) bool {
		return l.ring[(l.start+uint64(i))%uint64(len(l.ring))].Revision > rev
	})
	return &cursor{gen: l.gen, pos: l.start + uint64(i)}, nil
}

// sync returns once the log holds every event the node published before
// the call (see feed), or when ctx ends or the log ends.
func (l *eventLog) sync(ctx context.Context, cur *cursor) error {
	l.mu.Lock()
	if l.gen != cur.gen || !l.live {
		l.mu.Unlock()
		return errLogEnded
	}
	fence, ended := l.fence, l.ended
	l.mu.Unlock()
	reply := make(chan struct{})
	select {
	case fence <- reply:
	case <-ended:
		return errLogEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read copies the events at cur into dst, at most len(dst), and returns
// how many, and the position of the first. With none to read it returns
// 0 and a channel closed when there may be more. It returns errLogEnded
// or errFellBehind when the stream cannot go on.
func (l *eventLog) read(cur *cursor, dst []lock.Event) (n int, first uint64, wake <-chan struct{}, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.gen != cur.gen || !l.live:
		return 0, 0, nil, errLogEnded
	case cur.pos < l.start:
		return 0, 0, nil, errFellBehind
	}
	first = cur.pos
	for n < len(dst) && cur.pos < l.end {
		dst[n] = l.ring[cur.pos%uint64(len(l.ring))]
		n++
		cur.pos++
	}
	if n == 0 {
		return 0, first, l.wake, nil
	}
	return n, first, nil, nil
}

// held returns the number of events the log holds and the most it ever
// held (for tests and status).
func (l *eventLog) held() (now, most int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.end - l.start), l.most
}
