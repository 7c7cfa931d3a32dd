// Package mutant injects known bugs ("mutants") into raftlock for tests
// that must prove they can fail: the deterministic cluster simulation in
// raftnode runs with each mutant switched on and has to catch it.
//
// Each injection point in the product is one line,
//
//	if mutant.Enabled(mutant.X) { … }
//
// that costs one atomic load while no mutant is on, which is always the case
// outside tests: Set panics unless it runs in a test binary. The package
// uses the standard library only, so that lock (which imports nothing of
// ours but this) stays free of dependencies.
package mutant

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// Mutant names one injected bug.
type Mutant uint32

// The mutants. Each constant documents the bug and where it is injected.
const (
	// NoLeaseRecheckAfterWait (lock/machine.go, expire): sessions that
	// expire in the same entry do not leave their queues before their
	// locks are released, so a lock freed by one dying session is granted
	// to a waiter whose deadline has passed too (and which dies in the same
	// entry): a grant to a dead session, and its token handed out twice.
	NoLeaseRecheckAfterWait Mutant = iota + 1
	// AnswerBeforeCommit (raftnode/node.go, processReady): the leader
	// answers a proposal as soon as its entry is appended to its own log,
	// with the result the entry would have if everything appended committed,
	// before it is committed or applied.
	AnswerBeforeCommit
	// FollowerReadWithoutReadIndex (raftnode/node.go, handleRead): a
	// linearizable read is served from the node's local state at once,
	// without a ReadIndex round.
	FollowerReadWithoutReadIndex
	// TokenReusedAfterRestart (raftnode/node.go, newNode): a restarted node
	// replays only the entries its saved hard state knows committed and
	// forgets the rest of its log, although it acknowledged those entries
	// to the leader. Entries counted committed can vanish, and their
	// indexes (fencing tokens, session IDs) are used again.
	TokenReusedAfterRestart
	// ReleaseWithStaleToken (lock/machine.go, release): a release by the
	// holder's session succeeds whatever token it presents.
	ReleaseWithStaleToken
	// NoTermExtension (lock/machine.go, extendAll): the first command of a
	// new leader's term does not push session deadlines to clock + TTL.
	NoTermExtension

	numMutants = iota
)

var names = [...]string{
	NoLeaseRecheckAfterWait:      "NoLeaseRecheckAfterWait",
	AnswerBeforeCommit:           "AnswerBeforeCommit",
	FollowerReadWithoutReadIndex: "FollowerReadWithoutReadIndex",
	TokenReusedAfterRestart:      "TokenReusedAfterRestart",
	ReleaseWithStaleToken:        "ReleaseWithStaleToken",
	NoTermExtension:              "NoTermExtension",
}

// String returns the mutant's Go name.
func (m Mutant) String() string {
	if m > 0 && int(m) < len(names) {
		return names[m]
	}
	return fmt.Sprintf("Mutant(%d)", uint32(m))
}

// All returns every mutant, in declaration order.
func All() []Mutant {
	all := make([]Mutant, 0, numMutants)
	for m := Mutant(1); m <= numMutants; m++ {
		all = append(all, m)
	}
	return all
}

// active is the set of enabled mutants, one bit each.
var active atomic.Uint64

// Enabled reports whether mutant m is on. It is one atomic load.
func Enabled(m Mutant) bool {
	return active.Load()&(1<<m) != 0
}

// Set switches mutant m on (besides any already on) and returns a function
// that restores the previous set. It is for tests only and panics outside a
// test binary or for an unknown mutant. Mutants are process-wide: a test
// that sets one must not run in parallel with tests that expect none.
func Set(m Mutant) (restore func()) {
	if !testing.Testing() {
		panic("mutant: Set outside a test binary")
	}
	if m == 0 || m > numMutants {
		panic(fmt.Sprintf("mutant: unknown mutant %d", uint32(m)))
	}
	for {
		old := active.Load()
		if active.CompareAndSwap(old, old|1<<m) {
			return func() { active.Store(old) }
		}
	}
}
