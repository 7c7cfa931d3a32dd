package raftnode

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemNetwork is an in-memory network for tests: it connects Nodes in one
// process and can drop, delay and partition their messages. It is safe for
// concurrent use.
//
// It counts the messages in flight: a message is in flight from the Send
// that queues it until the receiver's Process has returned, or until it is
// lost (a cut link, a drop, a full queue, a stopped transport); a delay
// counts as flight. AwaitQuiet waits until none is. Process returning means
// the receiving node's loop has the message, not that it has handled it:
// what that handling sends is counted from its own Send.
type MemNetwork struct {
	mu       sync.Mutex
	nodes    map[uint64]Receiver
	cut      map[[2]uint64]bool // directed links that lose every message
	dropRate float64
	delay    time.Duration
	rng      *rand.Rand

	flightMu sync.Mutex
	inFlight int
	sent     int           // messages sent since the start
	quietC   chan struct{} // closed when inFlight is 0; replaced when it leaves 0
}

// NewMemNetwork returns a network with every link up. seed makes random
// drops repeatable.
func NewMemNetwork(seed uint64) *MemNetwork {
	quiet := make(chan struct{})
	close(quiet)
	return &MemNetwork{
		nodes:  map[uint64]Receiver{},
		cut:    map[[2]uint64]bool{},
		rng:    rand.New(rand.NewPCG(seed, seed)),
		quietC: quiet,
	}
}

// flying adds d (positive: sent, negative: delivered or lost) to the
// messages in flight.
func (nw *MemNetwork) flying(d int) {
	nw.flightMu.Lock()
	defer nw.flightMu.Unlock()
	was := nw.inFlight
	nw.inFlight += d
	if d > 0 {
		nw.sent += d
	}
	switch {
	case nw.inFlight < 0:
		panic("memnet: more messages delivered than sent")
	case was == 0 && nw.inFlight > 0:
		nw.quietC = make(chan struct{})
	case was > 0 && nw.inFlight == 0:
		close(nw.quietC)
	}
}

// Sent returns the number of messages sent since the network was made.
func (nw *MemNetwork) Sent() int {
	nw.flightMu.Lock()
	defer nw.flightMu.Unlock()
	return nw.sent
}

// InFlight returns the number of messages in flight now.
func (nw *MemNetwork) InFlight() int {
	nw.flightMu.Lock()
	defer nw.flightMu.Unlock()
	return nw.inFlight
}

// AwaitQuiet returns once no message is in flight (at once if none is),
// and fails t if that does not happen within timeout. It does not sleep:
// it waits for the last delivery or loss to say so. It must be called from
// the test's goroutine (it may call t.Fatalf).
func (nw *MemNetwork) AwaitQuiet(t testing.TB, timeout time.Duration) {
	t.Helper()
	nw.flightMu.Lock()
	quiet := nw.quietC
	nw.flightMu.Unlock()
	select {
	case <-quiet:
		return
	default:
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-quiet:
	case <-timer.C:
		t.Fatalf("memnet: %d messages still in flight after %v", nw.InFlight(), timeout)
	}
}

// Register makes id reachable through r (a restarted node registers again).
func (nw *MemNetwork) Register(id uint64, r Receiver) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.nodes[id] = r
}

// Isolate cuts every link to and from id.
func (nw *MemNetwork) Isolate(id uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for other := range nw.nodes {
		if other != id {
			nw.cut[[2]uint64{id, other}] = true
			nw.cut[[2]uint64{other, id}] = true
		}
	}
}

// Cut loses every message from one member to another (one way).
func (nw *MemNetwork) Cut(from, to uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.cut[[2]uint64{from, to}] = true
}

// Heal restores every link and stops drops and delays.
func (nw *MemNetwork) Heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
	nw.dropRate = 0
	nw.delay = 0
}

// SetDropRate loses each message with probability p.
func (nw *MemNetwork) SetDropRate(p float64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.dropRate = p
}

// SetDelay delays the delivery of every message by d.
func (nw *MemNetwork) SetDelay(d time.Duration) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.delay = d
}

// route returns the receiver for a message, or nil when it is lost.
func (nw *MemNetwork) route(from, to uint64) (Receiver, time.Duration) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.cut[[2]uint64{from, to}] {
		return nil, 0
	}
	if nw.dropRate > 0 && nw.rng.Float64() < nw.dropRate {
		return nil, 0
	}
	return nw.nodes[to], nw.delay
}

// Transport returns the sending side for member id. Each has one delivery
// goroutine and a bounded queue; Stop ends it, and loses what is queued.
func (nw *MemNetwork) Transport(id uint64) *MemTransport {
	t := &MemTransport{nw: nw, id: id, q: make(chan *raftpb.Message, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t
}

// MemTransport is one member's sending side of a MemNetwork.
type MemTransport struct {
	nw   *MemNetwork
	id   uint64
	q    chan *raftpb.Message
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex // orders Send's queueing before Stop's drain
	stopped bool
}

// Send implements Transport: it never blocks; a full queue, or a stopped
// transport, drops.
func (t *MemTransport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	for _, m := range msgs {
		t.nw.flying(1)
		select {
		case t.q <- proto.Clone(m).(*raftpb.Message):
		default:
			t.nw.flying(-1)
		}
	}
}

// AddPeer implements Transport; the network knows every member already.
func (t *MemTransport) AddPeer(uint64, string) {}

// RemovePeer implements Transport; the network knows every member.
func (t *MemTransport) RemovePeer(uint64) {}

// Stop implements Transport and waits for the delivery goroutine to end;
// the messages still queued are lost.
func (t *MemTransport) Stop() {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		close(t.stop)
	}
	t.mu.Unlock()
	<-t.done
	for {
		select {
		case <-t.q:
			t.nw.flying(-1)
		default:
			return
		}
	}
}

func (t *MemTransport) run() {
	defer close(t.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.stop
		cancel()
	}()
	for {
		select {
		case <-t.stop:
			return
		case m := <-t.q:
			ok := t.deliver(ctx, m)
			t.nw.flying(-1)
			if !ok {
				return
			}
		}
	}
}

// deliver hands m to its receiver, after the network's delay, or loses it.
// It returns false when the transport stopped meanwhile.
func (t *MemTransport) deliver(ctx context.Context, m *raftpb.Message) bool {
	r, delay := t.nw.route(t.id, m.GetTo())
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-t.stop:
			return false
		}
	}
	if r == nil {
		if m.GetType() == raftpb.MsgSnap {
			t.reportSnapshot(m.GetTo(), raft.SnapshotFailure)
		}
		return true
	}
	if err := r.Process(ctx, m); err == nil && m.GetType() == raftpb.MsgSnap {
		t.reportSnapshot(m.GetTo(), raft.SnapshotFinish)
	}
	return true
}

// reportSnapshot tells the sender how a snapshot send ended, as rafthttp
// does.
func (t *MemTransport) reportSnapshot(to uint64, st raft.SnapshotStatus) {
	t.nw.mu.Lock()
	self := t.nw.nodes[t.id]
	t.nw.mu.Unlock()
	if self != nil {
		self.ReportSnapshot(to, st)
	}
}
