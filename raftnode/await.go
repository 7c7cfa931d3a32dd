package raftnode

import (
	"sync"

	"github.com/raftlock/raftlock/lock"
)

// awaitRegistry wakes the requests that wait for a change of one session's
// place in one queue (lock.Place): a waiting acquire or campaign is woken
// by the events of its own (session, queue), never by the rest of the
// cluster's traffic, and a wake-up is a closed channel, so a slow waiter
// can fall behind by nothing and lose nothing. After a wake-up the waiter
// reads the state again to learn what happened (a condition variable, as
// etcd's pkg/wait). A waiter woken by an applied entry also gets its
// place's state as of that entry (news), read on the loop while it wakes
// it, so that the waiter need not queue a read behind the loop's next
// WAL write to learn it was granted: the wake-up path of a lock hand-off.
//
// The loop wakes them after it applies an entry (wake), on a snapshot
// from the leader (wakeAll) and when it stops (stop); requests register
// and cancel from their own goroutines.
type awaitRegistry struct {
	mu      sync.Mutex
	places  map[lock.Place]map[*awaiter]struct{}
	session map[uint64]map[*awaiter]struct{} // the same awaiters, by session
	stopped bool
}

type awaiter struct {
	place lock.Place
	c     chan struct{}
	// news is the place's state right after the entry that woke the
	// awaiter (has: it was woken by an entry). Written under the
	// registry's mu before c is closed, read only after c is closed.
	news lock.PlaceState
	has  bool
}

func (r *awaitRegistry) init() {
	r.places = map[lock.Place]map[*awaiter]struct{}{}
	r.session = map[uint64]map[*awaiter]struct{}{}
}

// add registers a waiter for p; see Node.Await.
func (r *awaitRegistry) add(p lock.Place) (<-chan struct{}, func() (lock.PlaceState, bool), func()) {
	a := &awaiter{place: p, c: make(chan struct{})}
	news := func() (lock.PlaceState, bool) {
		select {
		case <-a.c:
			return a.news, a.has
		default:
			return lock.PlaceState{}, false
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		close(a.c)
		return a.c, news, func() {}
	}
	addTo(r.places, p, a)
	addTo(r.session, p.Session, a)
	return a.c, news, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.remove(a)
	}
}

func addTo[K comparable](m map[K]map[*awaiter]struct{}, k K, a *awaiter) {
	set := m[k]
	if set == nil {
		set = map[*awaiter]struct{}{}
		m[k] = set
	}
	set[a] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*awaiter]struct{}, k K, a *awaiter) {
	if set := m[k]; set != nil {
		delete(set, a)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// remove unregisters a, closing its channel if it is still registered.
// r.mu must be held.
func (r *awaitRegistry) remove(a *awaiter) {
	if _, ok := r.places[a.place][a]; !ok {
		return
	}
	removeFrom(r.places, a.place, a)
	removeFrom(r.session, a.place.Session, a)
	close(a.c)
}

// wake wakes the waiters of every place the events changed: the event's
// own place, or every place of a session that ended. state reads a
// place's state from the machine that applied the events (the loop's).
func (r *awaitRegistry) wake(evs []lock.Event, state func(lock.Place) lock.PlaceState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.session) == 0 {
		return
	}
	for _, ev := range evs {
		p, ok := ev.Place()
		if !ok {
			continue
		}
		set := r.places[p]
		if p.Kind == 0 {
			set = r.session[p.Session]
		}
		for a := range set {
			a.news, a.has = state(a.place), true
			r.remove(a)
		}
	}
}

// wakeAll wakes every waiter (the state was replaced by a snapshot).
func (r *awaitRegistry) wakeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wakeAllLocked()
}

func (r *awaitRegistry) wakeAllLocked() {
	for _, set := range r.session {
		for a := range set {
			r.remove(a)
		}
	}
}

// stop wakes every waiter, and every later one at once: the node stopped.
func (r *awaitRegistry) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.wakeAllLocked()
}
