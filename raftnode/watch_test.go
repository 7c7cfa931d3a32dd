package raftnode

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftlock/raftlock/lock"
)

func TestHistoryBoundsAndResume(t *testing.T) {
	var h history
	h.max = 8
	for rev := uint64(1); rev <= 20; rev++ {
		h.add([]lock.Event{{Revision: rev, Seq: 0}, {Revision: rev, Seq: 1}})
		if len(h.events) > h.max {
			t.Fatalf("history holds %d events, max %d", len(h.events), h.max)
		}
		// Everything after complete is held, without a gap.
		want := (rev - h.complete) * 2
		if got := uint64(len(h.after(h.complete))); got != want {
			t.Fatalf("at rev %d: %d events after complete=%d, want %d", rev, got, h.complete, want)
		}
	}
	got := h.after(18)
	if len(got) != 4 || got[0].Revision != 19 || got[0].Seq != 0 || got[3].Revision != 20 || got[3].Seq != 1 {
		t.Fatalf("after(18) = %+v", got)
	}
}

func TestWatchResumesWithoutGapsAndRefusesCompacted(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.EventHistory = 16 })
	lead := c.leader()
	s, _ := c.mustPropose(lead, &lock.Command{Op: lock.OpOpenSession, TTL: int64(time.Minute)})

	// ReadWatch: the state seen by fn plus every later event, nothing lost.
	var held int
	evs, cancel, err := lead.n.ReadWatch(context.Background(), false, func(m *lock.Machine) { held = len(m.Locks("")) }, 64)
	if err != nil || held != 0 {
		t.Fatalf("read watch: %v, %d locks", err, held)
	}
	defer cancel()
	var last lock.Event
	for i := 0; i < 5; i++ {
		r, idx := c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: s.Session, Name: fmt.Sprintf("w%d", i)})
		ev := <-evs
		if end := <-evs; end.Type != 0 || end.Revision != ev.Revision {
			t.Fatalf("event %d: no end-of-entry marker after %+v: %+v", i, ev, end)
		}
		if ev.Type != lock.EventLockGranted || ev.Revision != idx || ev.Token != r.Token {
			t.Fatalf("event %d: %+v, want the grant at %d", i, ev, idx)
		}
		last = ev
	}
	// Resume after the third grant: exactly the last two come back.
	resumeAt := last.Revision - 2
	w, wcancel, err := lead.n.Watch(resumeAt, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{last.Revision - 1, last.Revision - 1, last.Revision, last.Revision} {
		if ev := <-w; ev.Revision != want {
			t.Fatalf("resumed event at %d, want %d", ev.Revision, want)
		}
	}
	select {
	case ev := <-w:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
	wcancel()
	// Push old events out of the bounded history: resuming there fails.
	for i := 0; i < 20; i++ {
		c.mustPropose(lead, &lock.Command{Op: lock.OpAcquire, Session: s.Session, Name: fmt.Sprintf("x%d", i)})
	}
	_, _, err = lead.n.Watch(resumeAt, 8)
	var ce *CompactedError
	if !errors.Is(err, ErrCompacted) || !errors.As(err, &ce) || ce.Oldest <= resumeAt {
		t.Fatalf("watch from a compacted revision: %v", err)
	}
}
