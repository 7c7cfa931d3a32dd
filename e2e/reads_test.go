package e2e

import (
	"sync"
	"testing"
)

// TestConcurrentGETsShareReadIndex: on a 3-node cluster of real processes,
// 64 concurrent linearizable GETs to a follower cost fewer ReadIndex
// requests than GETs (read_index_requests of GET /v1/status counts them).
func TestConcurrentGETsShareReadIndex(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	var f *member
	for _, m := range c.members {
		if m != lead {
			f = m
			break
		}
	}
	requests := func() uint64 {
		return num(c.must("GET", f.clientURL+"/v1/status", nil, 200).body["read_index_requests"])
	}
	before := requests()
	const gets = 64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range gets {
		wg.Go(func() {
			<-start
			r, err := do("GET", f.clientURL+"/v1/locks/e2e/reads", nil)
			if err != nil || r.status != 200 {
				t.Errorf("GET: %v %v", r, err)
			}
		})
	}
	close(start)
	wg.Wait()
	sent := requests() - before
	t.Logf("%d concurrent linearizable GETs to a follower: %d ReadIndex requests", gets, sent)
	if sent == 0 || sent >= gets {
		t.Fatalf("%d ReadIndex requests for %d concurrent GETs, want at least 1 and fewer than %d", sent, gets, gets)
	}
}
