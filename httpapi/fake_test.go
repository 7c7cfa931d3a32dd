package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// fakeNode is a raftnode.Proposer that applies commands synchronously to a
// real lock.Machine (term 1, indexes counting up, Now from a fake clock).
// Switches make it fail the way a real node does.
type fakeNode struct {
	mu      sync.Mutex
	m       *lock.Machine
	index   uint64
	now     time.Time
	cmds    []lock.Command
	results []lock.Result
	subs    map[chan lock.Event]struct{}
	history []lock.Event  // every event, for Watch
	oldest  uint64        // Watch refuses to resume before this revision
	changed chan struct{} // closed and replaced on every apply

	status raftnode.Status

	// Failure switches.
	notLeader      *raftnode.NotLeaderError
	noLeader       bool
	stopped        bool
	outcomeUnknown bool // apply, then report the outcome as unknown
	block          bool // wait for ctx to end; nothing is proposed
	readNoLeader   bool // linearizable reads fail with ErrNoLeader
	panicRead      bool
	mute           bool // deliver no events to subscribers
	// onPropose, when set, runs under the lock before a command is
	// applied; it may apply others first with applyLocked.
	onPropose func(f *fakeNode, cmd *lock.Command)
}

func newFakeNode() *fakeNode {
	return &fakeNode{
		m:       lock.New(),
		now:     time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC),
		subs:    map[chan lock.Event]struct{}{},
		changed: make(chan struct{}),
		status: raftnode.Status{
			ID: 1, Leader: 1, LeaderClientURL: "http://leader.example:7070", IsLeader: true,
			Term: 1, Ready: true,
			Members: []raftnode.MemberStatus{{ID: 1, PeerURL: "http://leader.example:7071", ClientURL: "http://leader.example:7070"}},
		},
	}
}

func (f *fakeNode) Propose(ctx context.Context, cmd *lock.Command) (lock.Result, uint64, error) {
	f.mu.Lock()
	if f.block {
		f.mu.Unlock()
		<-ctx.Done()
		return lock.Result{}, 0, ctx.Err()
	}
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return lock.Result{}, 0, err
	}
	switch {
	case f.notLeader != nil:
		nle := *f.notLeader
		return lock.Result{}, 0, &nle
	case f.noLeader:
		return lock.Result{}, 0, raftnode.ErrNoLeader
	case f.stopped:
		return lock.Result{}, 0, raftnode.ErrStopped
	}
	if f.onPropose != nil {
		f.onPropose(f, cmd)
	}
	res := f.applyLocked(cmd)
	if f.outcomeUnknown {
		return lock.Result{}, 0, fmt.Errorf("propose: %w", raftnode.ErrOutcomeUnknown)
	}
	return res, f.index, nil
}

// applyLocked applies cmd at the next index and fans its events out; f.mu
// is held.
func (f *fakeNode) applyLocked(cmd *lock.Command) lock.Result {
	c := *cmd
	c.Now = f.now.UnixNano()
	f.index++
	res := f.m.Apply(f.index, 1, &c)
	f.cmds = append(f.cmds, c)
	f.results = append(f.results, res)
	evs := res.Events
	if len(evs) > 0 {
		// The end-of-entry marker raftnode publishes after an entry's events.
		evs = append(evs[:len(evs):len(evs)], lock.Event{Revision: f.index, Seq: uint32(len(evs))})
	}
	f.history = append(f.history, evs...)
	for ch := range f.subs {
		if f.mute {
			break
		}
		for _, ev := range evs {
			select {
			case ch <- ev:
				continue
			default:
			}
			delete(f.subs, ch)
			close(ch)
			break
		}
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return res
}

func (f *fakeNode) Read(ctx context.Context, stale bool, fn func(m *lock.Machine)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.stopped {
		return raftnode.ErrStopped
	}
	if !stale && (f.readNoLeader || f.noLeader) {
		return raftnode.ErrNoLeader
	}
	if f.panicRead {
		panic("fake: read panics")
	}
	fn(f.m)
	return nil
}

func (f *fakeNode) Subscribe(buf int) (<-chan lock.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan lock.Event, buf)
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

func (f *fakeNode) Watch(after uint64, buf int) (<-chan lock.Event, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if after < f.oldest {
		return nil, nil, &raftnode.CompactedError{Oldest: f.oldest}
	}
	var backlog []lock.Event
	for _, ev := range f.history {
		if ev.Revision > after {
			backlog = append(backlog, ev)
		}
	}
	ch := make(chan lock.Event, buf+len(backlog))
	for _, ev := range backlog {
		ch <- ev
	}
	return ch, f.register(ch), nil
}

func (f *fakeNode) ReadWatch(ctx context.Context, stale bool, fn func(m *lock.Machine), buf int) (<-chan lock.Event, func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if f.stopped {
		return nil, nil, raftnode.ErrStopped
	}
	if !stale && (f.readNoLeader || f.noLeader) {
		return nil, nil, raftnode.ErrNoLeader
	}
	fn(f.m)
	ch := make(chan lock.Event, buf)
	return ch, f.register(ch), nil
}

// Await implements raftnode.Proposer more coarsely than a node: the
// channel closes at the next apply, whatever it changed (the contract
// allows a waiter to be woken for nothing: it reads the state again).
func (f *fakeNode) Await(lock.Place) (<-chan struct{}, func() (lock.PlaceState, bool), func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed, func() (lock.PlaceState, bool) { return lock.PlaceState{}, false }, func() {}
}

// register adds ch as a subscriber; f.mu must be held.
func (f *fakeNode) register(ch chan lock.Event) func() {
	f.subs[ch] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

func (f *fakeNode) TransferLeadership(ctx context.Context, to uint64) error { return nil }

func (f *fakeNode) ChangeMembership(ctx context.Context, ch raftnode.MemberChange) (uint64, error) {
	return 0, &raftnode.MemberChangeError{Code: "conf_change_in_progress", Reason: "the fake node changes nothing"}
}

func (f *fakeNode) Auth() *lock.AuthView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.Auth()
}

func (f *fakeNode) Status() raftnode.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Commit, st.Applied = f.index, f.index
	st.Members = append([]raftnode.MemberStatus(nil), f.status.Members...)
	return st
}

// set runs fn under the node's lock (to flip switches).
func (f *fakeNode) set(fn func(f *fakeNode)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// snapshot returns the machine's snapshot and the number of proposals.
func (f *fakeNode) snapshot() ([]byte, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.Snapshot(), len(f.cmds)
}

// proposals returns a copy of the commands applied so far.
func (f *fakeNode) proposals() []lock.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lock.Command(nil), f.cmds...)
}

func (f *fakeNode) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// await blocks until cond holds on the machine (checked after every apply),
// failing the test after 10 s.
func (f *fakeNode) await(t *testing.T, what string, cond func(m *lock.Machine) bool) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		ok := cond(f.m)
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// newTestServer starts an httptest server over a fresh fakeNode with the
// real echo handler.
func newTestServer(t *testing.T, mod func(*Config)) (*fakeNode, *httptest.Server) {
	t.Helper()
	f := newFakeNode()
	return f, serveOver(t, f, mod, nil)
}

// newTestHandler is newTestServer with a wrapper around the handler.
func newTestHandler(t *testing.T, wrap func(http.Handler) http.Handler) (*fakeNode, *httptest.Server) {
	t.Helper()
	f := newFakeNode()
	return f, serveOver(t, f, nil, wrap)
}

// serveOver starts an httptest server with the real handler over p, its
// config changed by mod and its handler wrapped by wrap (both may be nil).
// The server is closed when the test ends.
func serveOver(t *testing.T, p raftnode.Proposer, mod func(*Config), wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Node = p
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := specCheck(t, s.Handler()) // openapi_validate_test.go
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}
