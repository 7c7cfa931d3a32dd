package main

import (
	"slices"
	"time"
)

// latency collects the durations of one kind of operation (acquire or
// release) of one cell. It is not safe for concurrent use: every worker
// records into its own, and the cell merges them at the end.
type latency struct {
	samples []time.Duration
}

func (l *latency) add(d time.Duration) { l.samples = append(l.samples, d) }

// merge appends o's samples to l.
func (l *latency) merge(o *latency) { l.samples = append(l.samples, o.samples...) }

// summary is what a cell reports of a latency: count, p50, p99 and max.
type summary struct {
	N             int
	P50, P99, Max time.Duration
}

// summarize sorts the samples (in place) and returns their summary. The
// zero summary is returned for no samples.
func (l *latency) summarize() summary {
	if len(l.samples) == 0 {
		return summary{}
	}
	slices.Sort(l.samples)
	return summary{
		N:   len(l.samples),
		P50: percentile(l.samples, 0.50),
		P99: percentile(l.samples, 0.99),
		Max: l.samples[len(l.samples)-1],
	}
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted by the
// nearest-rank method: the smallest sample such that at least p of all
// samples are less than or equal to it. sorted must be sorted ascending
// and not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	// rank = ceil(p*n), computed without float rounding surprises for
	// exact products such as 0.5*10.
	rank := int(p * float64(n))
	if float64(rank) < p*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
