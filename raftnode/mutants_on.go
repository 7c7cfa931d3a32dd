//go:build raftlock_mutants

package raftnode

import (
	"maps"
	"slices"
	"sync/atomic"

	"github.com/raftlock/raftlock/lock"
)

// This file exists only in a build with the tag raftlock_mutants, which
// only the simulation's mutant tests use (see mutants.go).

var mutantNames = map[string]mutant{
	"AnswerBeforeCommit":           answerBeforeCommit,
	"FollowerReadWithoutReadIndex": followerReadWithoutReadIndex,
	"TokenReusedAfterRestart":      tokenReusedAfterRestart,
	"LeaderStampsWallClock":        leaderStampsWallClock,
}

var activeMutants atomic.Uint64

func mutated(m mutant) bool { return activeMutants.Load()&(1<<m) != 0 }

// MutantNames returns the names of the known bugs that SetMutant can
// switch on: raftnode's and the state machine's (lock.MutantNames).
func MutantNames() []string {
	return append(slices.Sorted(maps.Keys(mutantNames)), lock.MutantNames()...)
}

// SetMutant switches on the known bug name (one of MutantNames), besides
// any already on, in the whole process, and returns a function that
// switches it off again. Tests that set one must not run in parallel with
// tests that expect none.
func SetMutant(name string) (restore func(), err error) {
	m, ok := mutantNames[name]
	if !ok {
		return lock.SetMutant(name)
	}
	for {
		old := activeMutants.Load()
		if activeMutants.CompareAndSwap(old, old|1<<m) {
			return func() { activeMutants.Store(old) }, nil
		}
	}
}
