package client

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
)

// TestSessionEndLosesHoldsBeforeDone: code woken by a session's Done finds
// every hold of the session lost, and code woken by its Ctx finds Done
// closed. The order is what a caller relies on when it waits for Done and
// then asks a Mutex whether it still holds. The test ends many sessions,
// each with many holds, while a goroutine per session waits on Done (and
// another on Ctx), since a wrong order shows only when the waiter runs
// between the two closes.
func TestSessionEndLosesHoldsBeforeDone(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1") // never reached: nothing here sends
	const (
		sessions = 300
		holds    = 16
	)
	for range sessions {
		s := &Session{
			c: c, id: api.SessionID(1), ttl: time.Second, log: slog.New(slog.DiscardHandler),
			done: make(chan struct{}), holds: map[*hold]struct{}{},
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.loopCtx, s.loopCancel = context.WithCancel(context.Background())
		var hs []*hold
		for range holds {
			h := &hold{name: "l", lost: make(chan struct{})}
			if err := s.addHold(h); err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		woken := make(chan bool)
		go func() {
			<-s.Done()
			live := false
			for _, h := range hs {
				live = live || !h.isLost()
			}
			woken <- live
		}()
		ctxWoken := make(chan bool)
		go func() {
			<-s.Ctx().Done()
			ctxWoken <- !isClosed(s.Done())
		}()
		s.end(&lostError{cause: api.ErrSessionNotFound})
		if <-woken {
			t.Fatal("a goroutine woken by Done found a hold of the session not lost")
		}
		if <-ctxWoken {
			t.Fatal("a goroutine woken by Ctx found Done still open")
		}
	}
}
