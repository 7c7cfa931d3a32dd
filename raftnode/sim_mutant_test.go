package raftnode

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/mutant"
)

// simMutantBudget is how many seeds each mutant may survive before
// TestMutantsAreCaught fails.
const simMutantBudget = 40

// TestMutantsAreCaught runs the simulation with each known bug of
// internal/mutant injected, on seeds 1, 2, ... (3 nodes for odd seeds, 5
// for even ones), until a check fails, and fails if a mutant survives its
// budget. It must not run in parallel with other tests: mutants are
// process-wide.
func TestMutantsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	steps := simStepsOr(0)
	for _, m := range mutant.All() {
		t.Run(m.String(), func(t *testing.T) {
			restore := mutant.Set(m)
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
				t.Logf("replay: %s", strings.Replace(replayLine(j.seed, j.nodes, j.steps), "-sim.seed",
					fmt.Sprintf("-sim.mutant=%s -sim.seed", m), 1))
				return
			}
			t.Errorf("mutant %v survived %d seeds: the simulation's checks cannot see this bug", m, simMutantBudget)
		})
	}
}
