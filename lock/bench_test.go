package lock

import (
	"fmt"
	"testing"
)

// bigMachine holds locks held locks spread over sessions sessions, plus one
// waiter per 100 locks.
func bigMachine(b *testing.B, sessions, locks int) *Machine {
	m := New()
	idx := uint64(0)
	apply := func(c *Command) Result { idx++; return m.Apply(idx, 1, c) }
	for range sessions {
		apply(&Command{Op: OpOpenSession, Now: 1, TTL: MaxTTL})
	}
	for i := range locks {
		s := uint64(i%sessions + 1)
		apply(&Command{Op: OpAcquire, Now: 1, Session: s, Name: fmt.Sprint("lock/", i)})
		if i%100 == 0 {
			apply(&Command{Op: OpAcquire, Now: 1, Session: s%uint64(sessions) + 1, Name: fmt.Sprint("lock/", i), Wait: true})
		}
	}
	return m
}

func BenchmarkAcquireRelease(b *testing.B) {
	m := bigMachine(b, 10_000, 100_000)
	idx := m.AppliedIndex()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprint("bench/", i)
		idx++
		r := m.Apply(idx, 1, &Command{Op: OpAcquire, Now: 2, Session: 1, Name: name})
		idx++
		m.Apply(idx, 1, &Command{Op: OpRelease, Now: 2, Session: 1, Name: name, Token: r.Token})
	}
}

func BenchmarkKeepAliveExpire(b *testing.B) {
	m := bigMachine(b, 10_000, 100_000)
	idx := m.AppliedIndex()
	ids := make([]uint64, 1000)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	b.ResetTimer()
	for range b.N {
		idx++
		m.Apply(idx, 1, &Command{Op: OpKeepAlive, Now: 2, Sessions: ids})
		idx++
		m.Apply(idx, 1, &Command{Op: OpExpire, Now: 2})
	}
}

func BenchmarkSnapshotRestoreMillion(b *testing.B) {
	m := bigMachine(b, 10_000, 1_000_000)
	b.ResetTimer()
	for range b.N {
		snap := m.Snapshot()
		if err := New().Restore(snap); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(snap)))
	}
}

// BenchmarkApplyKeepAlive1000 is the apply of one batched keep-alive of
// 1,000 sessions (what POST /v1/sessions/keepalive proposes) on a machine
// with 10,000 sessions and 100,000 locks.
func BenchmarkApplyKeepAlive1000(b *testing.B) {
	m := bigMachine(b, 10_000, 100_000)
	idx := m.AppliedIndex()
	ids := make([]uint64, 1000)
	for i := range ids {
		ids[i] = uint64(i*10 + 1) // spread over the sessions
	}
	now := int64(2)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		idx++
		now++ // every renewal moves the deadline, as time passes
		if r := m.Apply(idx, 1, &Command{Op: OpKeepAlive, Now: now, Sessions: ids}); len(r.Missing) != 0 {
			b.Fatalf("missing %v", r.Missing)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/renewal")
}

// benchCommands are commands of a lock cycle and a keep-alive batch, for
// the encoding benchmarks.
var benchCommands = map[string]*Command{
	"acquire":       {Op: OpAcquire, Now: 1_780_000_000_000_000_000, Session: 123456, Name: "bench-1/u/42", Wait: true},
	"release":       {Op: OpRelease, Now: 1_780_000_000_000_000_000, Session: 123456, Name: "bench-1/u/42", Token: 9_876_543},
	"keepalive1000": {Op: OpKeepAlive, Now: 1_780_000_000_000_000_000, Sessions: seqIDs(1_000_000, 1000)},
}

func seqIDs(first uint64, n int) []uint64 {
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = first + uint64(i)*3
	}
	return ids
}

func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"acquire", "release", "keepalive1000"} {
		c := benchCommands[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for range b.N {
				n = len(Encode(c))
			}
			b.SetBytes(int64(n))
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, name := range []string{"acquire", "release", "keepalive1000"} {
		enc := Encode(benchCommands[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for range b.N {
				if _, err := Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshotMillion is Snapshot alone of 1,000,000 held locks (10,000
// sessions, 10,000 waiters): what a node's loop spends serialising before
// it writes a snapshot.
func BenchmarkSnapshotMillion(b *testing.B) {
	m := bigMachine(b, 10_000, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for range b.N {
		n = len(m.Snapshot())
	}
	b.SetBytes(int64(n))
}

// BenchmarkRestoreMillion is Restore alone of that snapshot: what a
// restarted node spends before it replays its WAL.
func BenchmarkRestoreMillion(b *testing.B) {
	snap := bigMachine(b, 10_000, 1_000_000).Snapshot()
	b.ReportAllocs()
	b.SetBytes(int64(len(snap)))
	b.ResetTimer()
	for range b.N {
		if err := New().Restore(snap); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotCaptureMillion is CaptureSnapshot of 1,000,000 held
// locks (10,000 sessions, 10,000 waiters): what a node's loop spends on a
// snapshot since the encoding and the write moved off it.
func BenchmarkSnapshotCaptureMillion(b *testing.B) {
	m := bigMachine(b, 10_000, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = m.CaptureSnapshot()
	}
}

// BenchmarkCaptureThenApplyMillion is CaptureSnapshot of 1,000,000 held
// locks followed by 10,000 acquire+release cycles on fresh names spread
// over the whole tree: the capture is O(1) because the machine copies the
// tree nodes it shares with the capture when it first changes them, and
// this is where that cost shows. Compare with BenchmarkApplyMillion, the
// same cycles without a capture.
func BenchmarkCaptureThenApplyMillion(b *testing.B) {
	benchApplyAfterCapture(b, true)
}

// BenchmarkApplyMillion is BenchmarkCaptureThenApplyMillion without the
// capture.
func BenchmarkApplyMillion(b *testing.B) {
	benchApplyAfterCapture(b, false)
}

func benchApplyAfterCapture(b *testing.B, capture bool) {
	m := bigMachine(b, 10_000, 1_000_000)
	idx := m.AppliedIndex()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if capture {
			_ = m.CaptureSnapshot()
		}
		for j := range 10_000 {
			name := fmt.Sprint("lock/", j*100+i%100, "/x")
			idx++
			r := m.Apply(idx, 1, &Command{Op: OpAcquire, Now: 2, Session: 1, Name: name})
			idx++
			m.Apply(idx, 1, &Command{Op: OpRelease, Now: 2, Session: 1, Name: name, Token: r.Token})
		}
	}
}

// BenchmarkSnapshotEncodeMillion is Encode of that capture (sorting
// included: every iteration encodes a fresh capture, which is not timed).
func BenchmarkSnapshotEncodeMillion(b *testing.B) {
	m := bigMachine(b, 10_000, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for range b.N {
		b.StopTimer()
		c := m.CaptureSnapshot()
		b.StartTimer()
		n = len(c.Encode())
	}
	b.SetBytes(int64(n))
}

// BenchmarkSnapshotCaptureManySessions is CaptureSnapshot of 200,000
// sessions holding one lock each: the sessions are a copy-on-write tree
// too, so the capture does not grow with their number.
func BenchmarkSnapshotCaptureManySessions(b *testing.B) {
	m := bigMachine(b, 200_000, 200_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = m.CaptureSnapshot()
	}
}

// BenchmarkTermRule100k is the apply of the first clocked command of a new
// term with 100,000 sessions: every deadline moves (the term rule), in the
// deadline heap and in the sessions' copy-on-write tree.
func BenchmarkTermRule100k(b *testing.B) {
	m := bigMachine(b, 100_000, 0)
	idx := m.AppliedIndex()
	term := uint64(1)
	now := int64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		idx++
		term++
		now += 1e9
		m.Apply(idx, term, &Command{Op: OpTick, Now: now})
	}
}

// BenchmarkAcquireRetry is the read that answers the wait of a session
// queued already (httpapi's acquire with keep_queued), against
// BenchmarkAcquireRetryEntry, the entry it replaces (a no-op Apply).
func BenchmarkAcquireRetry(b *testing.B) {
	m := bigMachine(b, 10_000, 100_000)
	// lock/0 is held by session 1, and session 2 waits for it.
	c := &Command{Op: OpAcquire, Session: 2, Name: "lock/0", Wait: true}
	if _, ok := m.AcquireRetry(c); !ok {
		b.Fatal("session 2 does not wait for lock/0")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if res, ok := m.AcquireRetry(c); !ok || res.Code != CodeQueued {
			b.Fatal(res)
		}
	}
}

func BenchmarkAcquireRetryEntry(b *testing.B) {
	m := bigMachine(b, 10_000, 100_000)
	idx := m.AppliedIndex()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		idx++
		if res := m.Apply(idx, 1, &Command{Op: OpAcquire, Now: 2, Session: 2, Name: "lock/0", Wait: true}); res.Code != CodeQueued {
			b.Fatal(res)
		}
	}
}

// BenchmarkHandOff64 is one hand-off of a lock that 64 sessions contend
// for, with the deadlock rule on: the holder releases (the head waiter is
// granted) and joins the queue again, at its tail (2 entries).
func BenchmarkHandOff64(b *testing.B) {
	m := New()
	idx := uint64(0)
	apply := func(c *Command) Result { idx++; c.Now = 1; return m.Apply(idx, 1, c) }
	apply(&Command{Op: OpClusterVersion, ClusterVersion: MaxCommandVersion})
	var ids []uint64
	for range 64 {
		ids = append(ids, apply(&Command{Op: OpOpenSession, TTL: MaxTTL}).Session)
	}
	holder := ids[0]
	token := apply(&Command{Op: OpAcquire, Session: holder, Name: "hot"}).Token
	for _, id := range ids[1:] {
		if r := apply(&Command{Op: OpAcquire, Session: id, Name: "hot", Wait: true}); r.Code != CodeQueued {
			b.Fatal(r)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r := apply(&Command{Op: OpRelease, Session: holder, Name: "hot", Token: token}); r.Code != CodeOK {
			b.Fatal(r)
		}
		if r := apply(&Command{Op: OpAcquire, Session: holder, Name: "hot", Wait: true}); r.Code != CodeQueued {
			b.Fatal(r)
		}
		l, _ := m.Lock("hot")
		holder, token = l.Holder.Session, l.Holder.Token
	}
}
