// Package await is the tests' one way to wait for a condition that no
// channel announces: True polls it, with a short backoff, until it holds or
// a deadline passes, and then fails the test, naming what it waited for.
// It is never a fixed sleep: a condition that holds at once costs nothing,
// and one that takes long is not cut short by a guess. Only tests import
// it.
package await

import (
	"testing"
	"time"
)

// Poll intervals: from first, doubling, at most max.
const (
	first = time.Millisecond
	max   = 50 * time.Millisecond
)

// True waits until cond returns true and returns how long that took; if
// timeout passes first, it fails the test with "<what>: not within
// <timeout>". cond runs on the caller's goroutine, at least once, and must
// not block.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	if d, ok := Within(timeout, cond); ok {
		return d
	}
	t.Fatalf("%s: not within %v", what, timeout)
	return 0
}

// Within is True without a test: it reports whether cond became true within
// timeout, and after how long.
func Within(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(timeout)
	pause := first
	for {
		if cond() {
			return time.Since(start), true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return time.Since(start), false
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, max)
	}
}
