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
