package raftnode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/wal"
)

// memDurable is a Durable that keeps nothing: the benchmarks below measure
// the loop (raft, encoding, apply, waiters) without the disk.
type memDurable struct{}

func (memDurable) Save(*raftpb.HardState, []*raftpb.Entry) error { return nil }
func (memDurable) SaveSnapshotFile(*raftpb.Snapshot) error       { return nil }
func (memDurable) SaveSnapshotRecord(*raftpb.Snapshot) error     { return nil }
func (memDurable) Close() error                                  { return nil }

// benchTransport is the transport of a single node: there is nobody to
// send to.
type benchTransport struct{}

func (benchTransport) Send([]*raftpb.Message) {}
func (benchTransport) AddPeer(uint64, string) {}
func (benchTransport) RemovePeer(uint64)      {}
func (benchTransport) Stop()                  {}

// idleNode returns a single-voter Node on memDurable that does not run:
// the caller may call the loop's methods itself, or Run it.
func idleNode(tb testing.TB) *Node {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.ID = 1
	cfg.DataDir = tb.TempDir()
	cfg.Peers = map[uint64]string{1: "mem://1"}
	cfg.ClientURL = "http://bench"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Now = time.Now
	cfg.Tick = make(chan struct{}) // no ticks: no expiry, no elections
	meta, err := json.Marshal(metadata{ID: 1, Peers: cfg.Peers})
	if err != nil {
		tb.Fatal(err)
	}
	n, err := newNode(cfg, memDurable{}, &wal.State{Created: true, Metadata: meta})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// benchNode runs a single-voter Node on memDurable until the benchmark
// ends, and returns it once it leads.
func benchNode(b *testing.B) *Node {
	b.Helper()
	n := idleNode(b)
	runLeader(b, n)
	return n
}

// runLeader runs n (an idleNode) until the test ends, and returns once it
// leads, with a context that ends with the test.
func runLeader(tb testing.TB, n *Node) context.Context {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errC := make(chan error, 1)
	go func() { errC <- n.Run(ctx, benchTransport{}) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-errC; err != nil {
			tb.Errorf("node: %v", err)
		}
	})
	await.True(tb, 10*time.Second, "the single node leads", func() bool { return n.Status().IsLeader })
	return ctx
}

func benchSession(b *testing.B, n *Node) uint64 {
	b.Helper()
	res, _, err := n.Propose(context.Background(), &lock.Command{Op: lock.OpOpenSession, TTL: lock.MaxTTL})
	if err != nil || res.Code != lock.CodeOK {
		b.Fatalf("open session: %v %v", res.Code, err)
	}
	return res.Session
}

// benchCycle acquires and releases lock name for session through n.
func benchCycle(n *Node, session uint64, name string) error {
	ctx := context.Background()
	res, _, err := n.Propose(ctx, &lock.Command{Op: lock.OpAcquire, Session: session, Name: name})
	if err != nil {
		return err
	}
	if res.Code != lock.CodeOK {
		return fmt.Errorf("acquire %s: %v", name, res.Code)
	}
	res, _, err = n.Propose(ctx, &lock.Command{Op: lock.OpRelease, Session: session, Name: name, Token: res.Token})
	if err != nil {
		return err
	}
	if res.Code != lock.CodeOK {
		return fmt.Errorf("release %s: %v", name, res.Code)
	}
	return nil
}

// BenchmarkProposeApply measures Propose → commit → apply → answer on a
// single in-memory node (no WAL, no network): one op is one acquire plus
// one release (two entries). serial is one caller at a time; parallel has
// 64 callers, each with its own session and lock, sharing Readies (group
// commit).
func BenchmarkProposeApply(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		n := benchNode(b)
		s := benchSession(b, n)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := benchCycle(n, s, fmt.Sprint("bench/", i%1024)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/entry")
	})
	b.Run("parallel64", func(b *testing.B) {
		n := benchNode(b)
		par := max(1, 64/testingProcs())
		sessions := make([]uint64, par*testingProcs())
		for i := range sessions {
			sessions[i] = benchSession(b, n)
		}
		var next atomic.Int64
		b.SetParallelism(par)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := next.Add(1) - 1
			s := sessions[w]
			name := fmt.Sprint("bench/p/", w)
			for pb.Next() {
				if err := benchCycle(n, s, name); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/entry")
	})
}

// testingProcs is GOMAXPROCS, which RunParallel multiplies SetParallelism
// by.
func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkBatch64 measures one batch of 64 acquires and then one of their
// 64 releases (128 entries per op) on a single in-memory node: all through
// ProposeAll (what POST /v1/batch does), or each command by a Propose of
// its own goroutine (what it did before ProposeAll).
func BenchmarkBatch64(b *testing.B) {
	const k = 64
	run := func(b *testing.B, propose func(n *Node, cmds []*lock.Command) []Outcome) {
		n := benchNode(b)
		s := benchSession(b, n)
		acq := make([]*lock.Command, k)
		for i := range acq {
			acq[i] = &lock.Command{Op: lock.OpAcquire, Session: s, Name: fmt.Sprint("batch/", i)}
		}
		rel := make([]*lock.Command, k)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			for i, o := range propose(n, acq) {
				if o.Err != nil || o.Result.Code != lock.CodeOK {
					b.Fatalf("acquire: %v %v", o.Result.Code, o.Err)
				}
				rel[i] = &lock.Command{Op: lock.OpRelease, Session: s, Name: acq[i].Name, Token: o.Result.Token}
			}
			for _, o := range propose(n, rel) {
				if o.Err != nil || o.Result.Code != lock.CodeOK {
					b.Fatalf("release: %v %v", o.Result.Code, o.Err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*k*b.N), "ns/entry")
	}
	b.Run("ProposeAll", func(b *testing.B) {
		run(b, func(n *Node, cmds []*lock.Command) []Outcome { return n.ProposeAll(context.Background(), cmds) })
	})
	b.Run("goroutines", func(b *testing.B) {
		run(b, func(n *Node, cmds []*lock.Command) []Outcome {
			out := make([]Outcome, len(cmds))
			var wg sync.WaitGroup
			for i, c := range cmds {
				wg.Go(func() { out[i].Result, out[i].Index, out[i].Err = n.Propose(context.Background(), c) })
			}
			wg.Wait()
			return out
		})
	})
}
