//go:build raftlock_mutants

package raftnode

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// simMutantBudget is how many seeds each mutant may survive before
// TestMutantsAreCaught fails.
const simMutantBudget = 40

// This file is built only with the tag raftlock_mutants (.ci/run runs it:
// go test -tags raftlock_mutants -run TestMutantsAreCaught ./raftnode).

func init() {
	setSimMutant = func(name string) (func(), error) { return SetMutant(name) }
}

// TestMutantsAreCaught runs the simulation with each known bug of
// raftnode and lock (MutantNames, mutants.go) injected, on seeds 1, 2, ... (3 nodes for odd seeds, 5
// for even ones), until a check fails, and fails if a mutant survives its
// budget. It must not run in parallel with other tests: mutants are
// process-wide.
func TestMutantsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	steps := simStepsOr(0)
	for _, m := range MutantNames() {
		t.Run(m, func(t *testing.T) {
			restore, err := SetMutant(m)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			began := time.Now()
			var jobs []simJob
			for seed := uint64(1); seed <= simMutantBudget; seed++ {
				jobs = append(jobs, simJob{seed: seed, nodes: 3 + 2*int(1-seed%2), steps: steps})
			}
			results := runSims(jobs, nil, func(_ simJob, r simResult) bool { return r.failure != nil })
			for i, r := range results {
				if r.failure == nil {
					continue
				}
				j := jobs[i]
				first := strings.SplitN(r.failure.msg, "\n", 2)[0]
				t.Logf("caught by seed %d (%d nodes), the %d. seed tried, in %v: check %q: %s",
					j.seed, j.nodes, i+1, time.Since(began).Round(time.Millisecond), r.failure.check, first)
				t.Logf("replay: %s", strings.Replace(replayLine(j.seed, j.nodes, j.steps), "go test ./raftnode -run 'TestSimulation$'",
					fmt.Sprintf("go test -tags raftlock_mutants ./raftnode -run 'TestSimulation$' -sim.mutant=%s", m), 1))
				return
			}
			t.Errorf("mutant %v survived %d seeds: the simulation's checks cannot see this bug", m, simMutantBudget)
		})
	}
}
