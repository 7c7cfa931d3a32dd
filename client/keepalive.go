package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/raftlock/raftlock/api"
)

// keeper keeps the sessions of one Client alive with one scheduling
// goroutine: it renews every session that is due, together with those due
// soon, in one request to POST /v1/sessions/keepalive (split into chunks of
// api.MaxKeepAliveIDs), and ends each session whose SafeUntil passes
// without an acknowledged renewal.
//
// Every session keeps its own schedule and semantics: a renewal is due
// TTL/3 after the send time of the last acknowledged one (TTL/10 after a
// failure), and SafeUntil is that send time + TTL − margin. Coalescing only
// sends a session early: with sessions that come due within
// coalesceWindow(ttl) of a due one, so that the sessions of a Client
// converge on a few shared renewal times instead of one request each.
//
// The goroutine runs while the Client has sessions and exits when the last
// one ends; a later session starts it again. Lock order: keeper.mu before
// Session.mu; nothing that holds Session.mu takes keeper.mu.
type keeper struct {
	c *Client
	// perSession renews each session with its own request to POST
	// /v1/sessions/{id}/keepalive (Config.PerSessionKeepAlives).
	perSession bool

	mu       sync.Mutex
	sessions map[*Session]struct{} // alive and registered
	running  bool                  // the scheduling goroutine runs
	wakeAt   time.Time             // when the goroutine plans to wake
	pokeC    chan struct{}         // buffered 1: re-plan now
}

// kaState is a session's place in its Client's keeper, guarded by
// keeper.mu.
type kaState struct {
	next     time.Time // when the next renewal is due
	inflight *kaBatch  // the batch renewing it now, or nil
}

// kaBatch is one renewal request in flight. Its context ends when every
// session in it has ended.
type kaBatch struct {
	cancel context.CancelFunc
	live   int // sessions of the batch that have not ended
}

// coalesceWindow is how early a session may be renewed to share a request
// with one that is due: a tenth of its renewal interval.
func coalesceWindow(ttl time.Duration) time.Duration { return ttl / 30 }

func (k *keeper) init(c *Client, perSession bool) {
	k.c = c
	k.perSession = perSession
	k.sessions = map[*Session]struct{}{}
	k.pokeC = make(chan struct{}, 1)
}

// add registers s, whose first renewal is due TTL/3 from now.
func (k *keeper) add(s *Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s.ka.next = time.Now().Add(s.ttl / 3)
	k.sessions[s] = struct{}{}
	if !k.running {
		k.running = true
		k.wakeAt = s.ka.next
		go k.run()
		return
	}
	if s.ka.next.Before(k.wakeAt) {
		k.poke()
	}
}

// remove unregisters s (it ended): it is renewed no more, and a request
// in flight that only renews ended sessions is cancelled.
func (k *keeper) remove(s *Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.sessions[s]; !ok {
		return
	}
	delete(k.sessions, s)
	if b := s.ka.inflight; b != nil {
		s.ka.inflight = nil
		if b.live--; b.live == 0 {
			b.cancel()
		}
	}
	if len(k.sessions) == 0 {
		k.poke() // let the goroutine exit
	}
}

// poke makes the scheduling goroutine re-plan. k.mu is held.
func (k *keeper) poke() {
	select {
	case k.pokeC <- struct{}{}:
	default:
	}
}

// run is the scheduling goroutine.
func (k *keeper) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		batch, lost, wake, ok := k.plan(now)
		if !ok {
			return
		}
		for _, l := range lost {
			l.s.end(&lostError{cause: fmt.Errorf("no keep-alive acknowledged before the safe-until time %s", l.su.Format(time.RFC3339Nano))})
		}
		if len(batch) > 0 {
			k.send(batch)
		}
		if len(lost) > 0 || len(batch) > 0 {
			continue // plan again: the state changed
		}
		timer.Reset(time.Until(wake))
		select {
		case <-timer.C:
		case <-k.pokeC:
			if !timer.Stop() {
				<-timer.C
			}
		}
	}
}

type lostSession struct {
	s  *Session
	su time.Time
}

// plan looks at every session at now: the ones whose SafeUntil passed are
// lost; the due ones (and those due within their coalescing window, if any
// is due) form the batch to send, marked in flight. wake is when to look
// again. ok is false when no session is left: the goroutine must exit
// (running is cleared under the lock, so a new session starts a new one).
func (k *keeper) plan(now time.Time) (batch []*Session, lost []lostSession, wake time.Time, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.sessions) == 0 {
		k.running = false
		return nil, nil, time.Time{}, false
	}
	wake = now.Add(time.Hour)
	var soon []*Session
	for s := range k.sessions {
		su, ended := s.safeState()
		if ended {
			continue // its end is under way and removes it
		}
		if !now.Before(su) {
			lost = append(lost, lostSession{s, su})
			continue
		}
		if su.Before(wake) {
			wake = su
		}
		if s.ka.inflight != nil {
			continue
		}
		switch {
		case now.Before(s.ka.next.Add(-coalesceWindow(s.ttl))):
			if s.ka.next.Before(wake) {
				wake = s.ka.next
			}
		case now.Before(s.ka.next):
			soon = append(soon, s)
			if s.ka.next.Before(wake) {
				wake = s.ka.next
			}
		case s.skipRenewals.Load():
			s.ka.next = now.Add(retryInterval(s.ttl))
			if s.ka.next.Before(wake) {
				wake = s.ka.next
			}
		default:
			batch = append(batch, s)
		}
	}
	if len(batch) > 0 && !k.perSession {
		for _, s := range soon {
			if !s.skipRenewals.Load() {
				batch = append(batch, s)
			}
		}
	}
	k.wakeAt = wake
	return batch, lost, wake, true
}

// retryInterval is the pause before the next renewal after a failed one.
func retryInterval(ttl time.Duration) time.Duration { return max(ttl/10, 10*time.Millisecond) }

// send starts the requests that renew batch: chunks of at most
// api.MaxKeepAliveIDs sessions, or one request per session with
// perSession. Each runs in its own goroutine, with a context that ends at
// the latest SafeUntil of its sessions or when all of them have ended.
func (k *keeper) send(batch []*Session) {
	size := api.MaxKeepAliveIDs
	if k.perSession {
		size = 1
	}
	for len(batch) > 0 {
		n := min(size, len(batch))
		chunk := batch[:n:n]
		batch = batch[n:]
		var last time.Time
		for _, s := range chunk {
			if su := s.SafeUntil(); su.After(last) {
				last = su
			}
		}
		ctx, cancel := context.WithDeadline(context.Background(), last)
		b := &kaBatch{cancel: cancel}
		k.mu.Lock()
		live := chunk[:0:0]
		for _, s := range chunk {
			if _, ok := k.sessions[s]; ok {
				s.ka.inflight = b
				live = append(live, s)
			}
		}
		b.live = len(live)
		k.mu.Unlock()
		if len(live) == 0 {
			cancel()
			continue
		}
		go func() {
			defer cancel()
			k.renew(ctx, live)
		}()
	}
}

// renew renews sessions with one request and applies the answer to each
// of them (acknowledged: SafeUntil moves; expired: the session is lost;
// otherwise it is retried after TTL/10), then schedules their next
// renewals.
func (k *keeper) renew(ctx context.Context, sessions []*Session) {
	sent := time.Now()
	var acked, failed []*Session
	if len(sessions) == 1 && k.perSession {
		if sessions[0].renewOne(ctx) {
			acked = sessions
		} else {
			failed = sessions
		}
	} else {
		acked, failed = k.renewBatch(ctx, sessions)
	}
	for _, s := range acked {
		s.acknowledged(sent)
	}
	now := time.Now()
	k.mu.Lock()
	for _, s := range sessions {
		if _, ok := k.sessions[s]; !ok {
			continue // ended meanwhile
		}
		s.ka.inflight = nil
	}
	for _, s := range acked {
		s.ka.next = sent.Add(s.ttl / 3)
	}
	for _, s := range failed {
		s.ka.next = now.Add(retryInterval(s.ttl))
	}
	k.poke()
	k.mu.Unlock()
	for _, s := range acked {
		s.startWatch()
	}
}

// renewBatch sends one batched keep-alive (with the transport's retries).
// Sessions the server reports expired are lost here. A server without the
// batch endpoint (an older version: 404 or 405) gets one request per
// session instead.
func (k *keeper) renewBatch(ctx context.Context, sessions []*Session) (acked, failed []*Session) {
	byID := make(map[api.SessionID]*Session, len(sessions))
	req := api.KeepAliveRequest{IDs: make([]api.SessionID, len(sessions))}
	for i, s := range sessions {
		req.IDs[i] = s.id
		byID[s.id] = s
	}
	var out api.KeepAliveResponse
	_, err := k.c.do(ctx, call{method: http.MethodPost, path: api.KeepAlivePath, write: true, retryUnknown: true, body: req}, &out)
	if errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrMethodNotAllowed) {
		for _, s := range sessions {
			if s.renewOne(ctx) {
				acked = append(acked, s)
			} else {
				failed = append(failed, s)
			}
		}
		return acked, failed
	}
	if err != nil {
		if ctx.Err() == nil {
			k.c.log.Debug("batched keep-alive failed", "sessions", len(sessions), "error", err)
		}
		return nil, sessions
	}
	for _, r := range out.Sessions {
		if s := byID[r.ID]; s != nil {
			acked = append(acked, s)
			delete(byID, r.ID)
		}
	}
	for _, id := range out.Expired {
		if s := byID[id]; s != nil {
			s.lost(fmt.Errorf("keep-alive: %w", &api.Error{Code: api.CodeSessionNotFound, Message: fmt.Sprintf("session %s expired or was closed", id)}))
			delete(byID, id)
		}
	}
	for _, s := range sessions {
		if byID[s.id] == s {
			failed = append(failed, s) // not in the answer: try again
		}
	}
	return acked, failed
}
