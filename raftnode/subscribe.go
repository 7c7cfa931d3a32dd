package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/raftlock/raftlock/lock"
)

// ErrCompacted is returned by Watch when the events after the asked
// revision are no longer all held by this node (its history is bounded and
// starts at its last restart). The caller must re-read the state and watch
// from there. The error is a *CompactedError.
var ErrCompacted = errors.New("raftnode: revision compacted")

// CompactedError says from which revision on this node can resume.
type CompactedError struct {
	// Oldest is the smallest revision a watch can resume after.
	Oldest uint64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("raftnode: events after revision %d are no longer held; resume after %d or re-read the state", e.Oldest, e.Oldest)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

type subscriber struct {
	c chan lock.Event
}

// history holds the most recent events for Watch. It is guarded by
// Node.subsMu; only the loop appends to it.
type history struct {
	events []lock.Event
	max    int
	// complete is the revision after which every event is held: a watch
	// may resume after any revision >= complete.
	complete uint64
}

func (h *history) add(evs []lock.Event) {
	if h.max <= 0 {
		return
	}
	if len(h.events)+len(evs) > h.max {
		drop := len(h.events) + len(evs) - h.max + h.max/4
		if drop > len(h.events) {
			drop = len(h.events)
		}
		if drop > 0 {
			h.complete = h.events[drop-1].Revision
			h.events = append(h.events[:0], h.events[drop:]...)
		}
	}
	h.events = append(h.events, evs...)
	if len(h.events) > h.max { // one entry larger than the whole history
		h.complete = h.events[len(h.events)-h.max-1].Revision
		h.events = append(h.events[:0], h.events[len(h.events)-h.max:]...)
	}
}

// after returns the held events with a revision greater than rev.
func (h *history) after(rev uint64) []lock.Event {
	i := len(h.events)
	for i > 0 && h.events[i-1].Revision > rev {
		i--
	}
	return h.events[i:]
}

// Subscribe implements Proposer. See Proposer.Subscribe for the contract.
// The channel is also closed when the node stops.
func (n *Node) Subscribe(buf int) (<-chan lock.Event, func()) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	return n.subscribeLocked(buf, nil)
}

// Watch implements Proposer. See Proposer.Watch for the contract.
func (n *Node) Watch(after uint64, buf int) (<-chan lock.Event, func(), error) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	if after < n.hist.complete {
		return nil, nil, &CompactedError{Oldest: n.hist.complete}
	}
	c, cancel := n.subscribeLocked(buf, n.hist.after(after))
	return c, cancel, nil
}

// ReadWatch implements Proposer. See Proposer.ReadWatch for the contract.
func (n *Node) ReadWatch(ctx context.Context, stale bool, fn func(m *lock.Machine), buf int) (<-chan lock.Event, func(), error) {
	// fn may run on the loop after Read has given up (ctx ended); mu and
	// abandoned make sure such a late subscription is cancelled, not leaked.
	var (
		mu        sync.Mutex
		abandoned bool
		c         <-chan lock.Event
		cancel    func()
	)
	err := n.Read(ctx, stale, func(m *lock.Machine) {
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			return
		}
		fn(m)
		// On the loop: no event can be published between fn and this.
		n.subsMu.Lock()
		c, cancel = n.subscribeLocked(buf, nil)
		n.subsMu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		abandoned = true
		if cancel != nil {
			cancel()
		}
		return nil, nil, err
	}
	return c, cancel, nil
}

// subscribeLocked registers a subscriber whose channel first holds backlog.
// n.subsMu must be held.
func (n *Node) subscribeLocked(buf int, backlog []lock.Event) (<-chan lock.Event, func()) {
	if buf < 1 {
		buf = 1
	}
	s := &subscriber{c: make(chan lock.Event, buf+len(backlog))}
	for _, ev := range backlog {
		s.c <- ev
	}
	select {
	case <-n.doneC:
		close(s.c)
		return s.c, func() {}
	default:
	}
	n.subs[s] = struct{}{}
	return s.c, func() {
		n.subsMu.Lock()
		if _, ok := n.subs[s]; ok {
			delete(n.subs, s)
			close(s.c)
		}
		n.subsMu.Unlock()
	}
}

// publishEvents records events in the history and fans them out without
// blocking; a subscriber whose buffer is full is dropped (its channel
// closed) so the loop never waits on it.
func (n *Node) publishEvents(evs []lock.Event) {
	if len(evs) == 0 {
		return
	}
	n.awaits.wake(evs, n.machine.PlaceState)
	// An end-of-entry marker (Type 0) closes the events of one entry, so
	// a stream can send them as one message however it reads them.
	evs = append(evs[:len(evs):len(evs)], lock.Event{Revision: evs[0].Revision, Seq: uint32(len(evs))})
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	n.hist.add(evs)
	for s := range n.subs {
		for _, ev := range evs {
			select {
			case s.c <- ev:
				continue
			default:
			}
			delete(n.subs, s)
			close(s.c)
			break
		}
	}
}

func (n *Node) closeSubscribers() {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for s := range n.subs {
		delete(n.subs, s)
		close(s.c)
	}
}
