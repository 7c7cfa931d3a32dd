package httpapi

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

// waitCountingNode wraps a fakeNode: it counts the waits for a place
// (Await, and the event subscriptions that no wait may use any more), and
// runs a hook once (under the node's lock) at the first Await, i.e. between
// the entry that queued the session and the wait path's first read of the
// state.
type waitCountingNode struct {
	*fakeNode
	waits       atomic.Int64
	beforeAwait atomic.Pointer[func(f *fakeNode)]
}

func (w *waitCountingNode) Subscribe(buf int) (<-chan lock.Event, func()) {
	w.waits.Add(1)
	return w.fakeNode.Subscribe(buf)
}

func (w *waitCountingNode) Await(p lock.Place) (<-chan struct{}, func() (lock.PlaceState, bool), func()) {
	w.waits.Add(1)
	if h := w.beforeAwait.Swap(nil); h != nil {
		w.fakeNode.set(*h)
	}
	return w.fakeNode.Await(p)
}

func (w *waitCountingNode) hook(h func(f *fakeNode)) { w.beforeAwait.Store(&h) }

func newWaitCountingServer(t *testing.T) (*waitCountingNode, *httptest.Server) {
	t.Helper()
	w := &waitCountingNode{fakeNode: newFakeNode()}
	return w, serveOver(t, w, nil, nil)
}

// TestAcquireWaitsOnlyWhenQueued: a waiting acquire of a free lock is
// granted without any wait (the hot path of Mutex.Lock).
func TestAcquireWaitsOnlyWhenQueued(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	a := openSession(t, ts, "a")
	for range 3 {
		tok := must(t, ts, "POST", "/v1/locks/free/acquire", `{"session":"`+a+`","wait":"30s"}`, 200).num("token")
		must(t, ts, "POST", "/v1/locks/free/release", `{"session":"`+a+`","token":`+u(tok)+`}`, 200)
	}
	if n := w.waits.Load(); n != 0 {
		t.Fatalf("%d waits for acquires that were granted at once", n)
	}
}

// TestAcquireGrantedBeforeFirstRead: the grant comes between the entry that
// queued the session and the wait path's first read of the state; that
// read shows it, so the answer is the grant at once (no wait, no cancel).
func TestAcquireGrantedBeforeFirstRead(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	tok := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200).num("token")
	aid, _ := api.ParseSessionID(a)
	w.hook(func(f *fakeNode) {
		f.applyLocked(&lock.Command{Op: lock.OpRelease, Session: uint64(aid), Name: "job", Token: tok})
	})
	r := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"2s"}`, 200)
	if r.str("session") != b || r.num("token") <= tok {
		t.Fatalf("acquire granted before the watch: %s", r.raw)
	}
	for _, c := range w.proposals() {
		if c.Op == lock.OpCancel {
			t.Fatalf("a cancel was proposed: %+v", c)
		}
	}
}

// TestAcquireSessionGoneBeforeFirstRead: the session ends between the entry
// that queued it and the first read: 404 at once.
func TestAcquireSessionGoneBeforeFirstRead(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200)
	bid, _ := api.ParseSessionID(b)
	w.hook(func(f *fakeNode) {
		f.applyLocked(&lock.Command{Op: lock.OpCloseSession, Session: uint64(bid)})
	})
	mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"5m"}`, 404, api.CodeSessionNotFound)
}

// TestCampaignWaitsOnlyWhenQueued: a waiting campaign in a free
// election leads without any wait.
func TestCampaignWaitsOnlyWhenQueued(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	a := openSession(t, ts, "a")
	for i := range 3 {
		term := must(t, ts, "POST", "/v1/elections/web/campaign", `{"session":"`+a+`","value":"v","wait":"30s"}`, 200).num("term")
		if term == 0 {
			t.Fatalf("campaign %d: no term", i)
		}
		must(t, ts, "POST", "/v1/elections/web/resign", `{"session":"`+a+`","term":`+u(term)+`}`, 200)
	}
	if n := w.waits.Load(); n != 0 {
		t.Fatalf("%d waits for campaigns that led at once", n)
	}
}

// TestCampaignElectedBeforeFirstRead: the leader resigns between the entry
// that queued the candidate and the first read, which shows the candidate
// leading, so the answer is its leadership at once.
func TestCampaignElectedBeforeFirstRead(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	term := must(t, ts, "POST", "/v1/elections/web/campaign", `{"session":"`+a+`","value":"va"}`, 200).num("term")
	aid, _ := api.ParseSessionID(a)
	w.hook(func(f *fakeNode) {
		f.applyLocked(&lock.Command{Op: lock.OpResign, Session: uint64(aid), Name: "web", Token: term})
	})
	r := must(t, ts, "POST", "/v1/elections/web/campaign", `{"session":"`+b+`","value":"vb","wait":"2s"}`, 200)
	if r.str("session") != b || r.num("term") <= term || r.str("value") != "vb" {
		t.Fatalf("campaign elected before the watch: %s", r.raw)
	}
}

// staleNewsNode's Await says, once woken, that the place is still queued,
// whatever happened: news that a later entry may have outdated.
type staleNewsNode struct {
	*fakeNode
	waits atomic.Int64
}

func (s *staleNewsNode) Await(p lock.Place) (<-chan struct{}, func() (lock.PlaceState, bool), func()) {
	s.waits.Add(1)
	woken, _, cancel := s.fakeNode.Await(p)
	return woken, func() (lock.PlaceState, bool) { return lock.PlaceState{SessionExists: true, Queued: true}, true }, cancel
}

// TestWaitRereadsNewsOfAQueuedPlace: the news of a wake-up is taken only
// when it is an outcome; news that the session is still queued may be
// outdated by an entry applied before the waiter registered again, so the
// waiter reads the state: a grant is answered at once, not when the wait
// runs out.
func TestWaitRereadsNewsOfAQueuedPlace(t *testing.T) {
	n := &staleNewsNode{fakeNode: newFakeNode()}
	ts := serveOver(t, n, nil, nil)
	a, b := openSession(t, ts, "a"), openSession(t, ts, "b")
	tok := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200).num("token")
	done := make(chan reply, 1)
	go func() {
		done <- do(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"60s"}`)
	}()
	await.True(t, 10*time.Second, "b waiting", func() bool { return n.waits.Load() > 0 })
	must(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tok)+`}`, 200)
	select {
	case r := <-done:
		if r.status != 200 || r.str("session") != b {
			t.Fatalf("b: %d %s, want the grant", r.status, r.raw)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("b's grant was not answered: the waiter trusted news that it was still queued")
	}
}
