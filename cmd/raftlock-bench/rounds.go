package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// A cycle cell (lock-uncontended, lock-contended, election at one worker
// count) can run several rounds per target (--rounds N). The machine is
// shared and its speed drifts, so a single run per target can favour
// whichever target happened to run in a quiet minute: one 64-worker
// ratio swung from 2.5x to 4.4x between two runs. Rounds alternate the
// targets (round 1 against each target in order, then round 2, ...) so
// that slow drift hits every target alike, and the report gives the
// median over the rounds, their range, and the median of the per-round
// ratios: round i of raftlock over round i of etcd, two runs made next to
// each other in time.
//
// keepalive and scale run once whatever N is. They measure state more
// than speed: keepalive's leader RSS, data dir growth and disk writes,
// scale's RSS, snapshot size and restart time all depend on what the
// run before left in the members (a Go heap that does not shrink at
// once, WAL segments and snapshots that stay), so a second run measures
// a different cluster rather than the same one again, and its figures
// are no sample of the first's. They are also the long cells (a default
// keepalive cell takes about a minute per target, a 1M-lock scale cell
// eight), and a separate run is the honest way to repeat them.

// roundStep is one run of a cell: round (1-based) against the target
// with index target.
type roundStep struct {
	round, target int
}

// schedule returns the order in which one cell's rounds run against
// targets targets: round 1 against every target in their order, then
// round 2 likewise, and so on up to rounds.
func schedule(targets, rounds int) []roundStep {
	steps := make([]roundStep, 0, targets*rounds)
	for r := 1; r <= rounds; r++ {
		for t := range targets {
			steps = append(steps, roundStep{round: r, target: t})
		}
	}
	return steps
}

// cellRunner runs one cell against one target; runCell is the real one,
// tests pass a fake.
type cellRunner func(ctx context.Context, t Target, cl *cluster, workload string, workers int, cfg benchConfig) (result, error)

// runRounds runs one cell rounds times against every env, in the order
// of schedule, and returns the results in that order. With rounds above 1
// every result carries its round number (Round, from 1) and cfg tells
// run the round, for progress lines and profile names; with rounds 1 the
// one run per target has Round 0 and reads as it did before rounds
// existed. emit, if not nil, gets each result as soon as it is there (the
// JSON lines); an error from emit or run ends the cell, and the results
// so far are returned with it.
func runRounds(ctx context.Context, envs []env, workload string, workers, rounds int, cfg benchConfig, run cellRunner, emit func(result) error) ([]result, error) {
	var out []result
	for _, st := range schedule(len(envs), rounds) {
		e := envs[st.target]
		c := cfg
		if rounds > 1 {
			c.round, c.rounds = st.round, rounds
		}
		res, err := run(ctx, e.t, e.cl, workload, workers, c)
		if errors.Is(err, errUnsupported) {
			continue // e.g. etcd has no semaphore: raftlock's figures alone
		}
		if err != nil {
			if rounds > 1 {
				return out, fmt.Errorf("%s %s round %d: %w", e.t.Name(), workload, st.round, err)
			}
			return out, fmt.Errorf("%s %s: %w", e.t.Name(), workload, err)
		}
		res.Round = c.round
		out = append(out, res)
		if emit != nil {
			if err := emit(res); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// spread is what the rounds of a cell say of one figure of one target
// (or of one ratio): how many rounds have it, their median, minimum,
// maximum and sum.
type spread struct {
	N                     int
	Median, Min, Max, Sum float64
}

// spreadOf returns the spread of xs, leaving out NaN and infinite values
// (a figure a round could not measure). The median of an even count is
// the mean of the two middle values. The zero spread (N 0) is returned
// when no value is left. xs is not changed.
func spreadOf(xs []float64) spread {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return spread{}
	}
	slices.Sort(v)
	s := spread{N: len(v), Min: v[0], Max: v[len(v)-1]}
	for _, x := range v {
		s.Sum += x
	}
	if m := len(v) / 2; len(v)%2 == 1 {
		s.Median = v[m]
	} else {
		s.Median = (v[m-1] + v[m]) / 2
	}
	return s
}

// roundRatios returns, in the order of num's rounds, num's value over
// den's value of the same round, for every round that both have and
// whose ratio is defined (see ratio).
func roundRatios(num, den []roundValue) []float64 {
	var out []float64
	for _, a := range num {
		for _, b := range den {
			if b.round != a.round {
				continue
			}
			if r, ok := ratio(a.v, b.v); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// roundValue is the value of one figure in one round.
type roundValue struct {
	round int
	v     float64
}

// cellRuns holds the results of one cell: per target, its runs in the
// order they ran.
type cellRuns map[string][]*result

// values returns the value of metric key in every run of target that
// has it, with the run's round.
func (c cellRuns) values(target, key string) []roundValue {
	var out []roundValue
	for _, r := range c[target] {
		if v, ok := r.get(key); ok {
			out = append(out, roundValue{r.Round, v})
		}
	}
	return out
}

// rounds returns the most runs any target has in the cell.
func (c cellRuns) rounds() int {
	n := 0
	for _, rs := range c {
		n = max(n, len(rs))
	}
	return n
}

// stat returns the spread of metric key over target's runs.
func (c cellRuns) stat(target, key string) spread {
	return spreadOf(floats(c.values(target, key)))
}

// ratioStat returns the spread of the per-round ratios num/den of
// metric key.
func (c cellRuns) ratioStat(num, den, key string) spread {
	return spreadOf(roundRatios(c.values(num, key), c.values(den, key)))
}

// keys returns the metric keys of the cell, in order of first appearance
// over targets (in their order) and runs, with their kinds.
func (c cellRuns) keys(targets []string) ([]string, map[string]kind) {
	var keys []string
	kinds := map[string]kind{}
	for _, t := range targets {
		for _, r := range c[t] {
			for _, m := range r.Metrics {
				if _, seen := kinds[m.Key]; !seen {
					kinds[m.Key] = m.Kind
					keys = append(keys, m.Key)
				}
			}
		}
	}
	return keys, kinds
}

func floats(vs []roundValue) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = v.v
	}
	return out
}

// groupCells groups results by cell (workload and worker count), the
// cells in order of first appearance.
func groupCells(results []result) ([]cellKey, map[cellKey]cellRuns) {
	var cells []cellKey
	byCell := map[cellKey]cellRuns{}
	for i := range results {
		r := &results[i]
		k := cellKey{r.Workload, r.Workers}
		if byCell[k] == nil {
			byCell[k] = cellRuns{}
			cells = append(cells, k)
		}
		byCell[k][r.Target] = append(byCell[k][r.Target], r)
	}
	return cells, byCell
}

// ratioPairs returns the ratios the report shows for targets, numerator
// and denominator: raftlock/etcd, raftlock/raftlock-base when the
// baseline target is there, and raftlock-unbatched/etcd (--unbatched);
// each only when both of its targets are.
func ratioPairs(targets []string) [][2]string {
	var out [][2]string
	for _, den := range []string{"etcd", baseTarget} {
		if slices.Contains(targets, "raftlock") && slices.Contains(targets, den) {
			out = append(out, [2]string{"raftlock", den})
		}
	}
	if slices.Contains(targets, unbatchedTarget) && slices.Contains(targets, "etcd") {
		out = append(out, [2]string{unbatchedTarget, "etcd"})
	}
	return out
}
