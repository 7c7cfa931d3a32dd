package await

import (
	"testing"
	"time"
)

func TestWithin(t *testing.T) {
	if d, ok := Within(time.Second, func() bool { return true }); !ok || d > 100*time.Millisecond {
		t.Fatalf("a condition that holds at once: %v %v", d, ok)
	}
	n := 0
	if _, ok := Within(5*time.Second, func() bool { n++; return n == 5 }); !ok || n != 5 {
		t.Fatalf("a condition that holds at the 5th poll: %v after %d polls", ok, n)
	}
	start := time.Now()
	if _, ok := Within(30*time.Millisecond, func() bool { return false }); ok {
		t.Fatal("a condition that never holds was reported true")
	}
	if e := time.Since(start); e < 30*time.Millisecond || e > 2*time.Second {
		t.Fatalf("gave up after %v, want about 30ms", e)
	}
}
