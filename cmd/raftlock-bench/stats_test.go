package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ten []time.Duration
	for i := 1; i <= 10; i++ {
		ten = append(ten, time.Duration(i))
	}
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i))
	}
	for _, tc := range []struct {
		s    []time.Duration
		p    float64
		want time.Duration
	}{
		{ten, 0.5, 5},
		{ten, 0.99, 10},
		{ten, 1, 10},
		{ten, 0.01, 1},
		{ten, 0.55, 6},
		{hundred, 0.5, 50},
		{hundred, 0.99, 99},
		{hundred, 0.995, 100},
		{[]time.Duration{7}, 0.5, 7},
		{[]time.Duration{7}, 0.99, 7},
	} {
		if got := percentile(tc.s, tc.p); got != tc.want {
			t.Errorf("percentile(%d samples, %v) = %v, want %v", len(tc.s), tc.p, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var l latency
	if s := l.summarize(); s != (summary{}) {
		t.Fatalf("empty: %+v", s)
	}
	// Unsorted, and merged from two workers.
	var a, b latency
	for _, d := range []time.Duration{9, 3, 7, 1, 5} {
		a.add(d * time.Millisecond)
	}
	for _, d := range []time.Duration{2, 10, 4, 8, 6} {
		b.add(d * time.Millisecond)
	}
	l.merge(&a)
	l.merge(&b)
	want := summary{N: 10, P50: 5 * time.Millisecond, P99: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	if s := l.summarize(); s != want {
		t.Fatalf("summary %+v, want %+v", s, want)
	}
}
