package raftnode

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemNetwork is an in-memory network for tests: it connects Nodes in one
// process and can drop, delay and partition their messages. It is safe for
// concurrent use.
type MemNetwork struct {
	mu       sync.Mutex
	nodes    map[uint64]Receiver
	cut      map[[2]uint64]bool // directed links that lose every message
	dropRate float64
	delay    time.Duration
	rng      *rand.Rand
}

// NewMemNetwork returns a network with every link up. seed makes random
// drops repeatable.
func NewMemNetwork(seed uint64) *MemNetwork {
	return &MemNetwork{
		nodes: map[uint64]Receiver{},
		cut:   map[[2]uint64]bool{},
		rng:   rand.New(rand.NewPCG(seed, seed)),
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
// goroutine and a bounded queue; Stop ends it.
func (nw *MemNetwork) Transport(id uint64) *MemTransport {
	t := &MemTransport{nw: nw, id: id, q: make(chan *raftpb.Message, 4096), stop: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t
}

// MemTransport is one member's sending side of a MemNetwork.
type MemTransport struct {
	nw       *MemNetwork
	id       uint64
	q        chan *raftpb.Message
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// Send implements Transport: it never blocks; a full queue drops.
func (t *MemTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		select {
		case t.q <- proto.Clone(m).(*raftpb.Message):
		default:
		}
	}
}

// AddPeer implements Transport; the network knows every member already.
func (t *MemTransport) AddPeer(uint64, string) {}

// Stop implements Transport and waits for the delivery goroutine to end.
func (t *MemTransport) Stop() {
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
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
			r, delay := t.nw.route(t.id, m.GetTo())
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-t.stop:
					return
				}
			}
			if r == nil {
				if m.GetType() == raftpb.MsgSnap {
					t.reportSnapshot(m.GetTo(), raft.SnapshotFailure)
				}
				continue
			}
			if err := r.Process(ctx, m); err == nil && m.GetType() == raftpb.MsgSnap {
				t.reportSnapshot(m.GetTo(), raft.SnapshotFinish)
			}
		}
	}
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
