package e2e

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
	"github.com/raftlock/raftlock/internal/await"
)

// TestSDKSemaphoreLimitHoldsAcrossLeaderSIGKILL: workers, each with its
// own client and session, take turns on a semaphore of two permits through
// a SIGKILL of the leader, which every client talks to first: never more
// than two are inside at once, every worker goes on after the failover,
// and the permits are all given back in the end, with no session lost.
func TestSDKSemaphoreLimitHoldsAcrossLeaderSIGKILL(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	fol := c.others(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const name, limit, workers = "e2e/sem-failover", 2, 5
	// Semaphores are command format 6: proposed once every member has
	// said it reads them.
	await.True(t, 20*time.Second, "cluster version 6", func() bool {
		r, err := do("GET", lead.clientURL+"/v1/status", nil)
		return err == nil && num(r.body["cluster_version"]) >= 6
	})

	var inside, most atomic.Int32
	var rounds atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sessions := make([]*client.Session, workers)
	for i := range workers {
		sessions[i] = sdkSession(t, ctx, sdkClient(t, append([]*member{lead}, fol...)...), "worker")
		sm := sessions[i].NewSemaphore(name, limit)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := sm.Acquire(ctx); err != nil {
					t.Errorf("worker %d: Acquire: %v", i, err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				// The pause widens the window in which a permit too many
				// would show; it synchronises nothing.
				time.Sleep(10 * time.Millisecond)
				inside.Add(-1)
				// A Release that fails during the failover keeps the
				// permit: release it again until the cluster answers.
				if _, ok := await.Within(30*time.Second, func() bool {
					err := sm.Release(ctx)
					if err != nil && !errors.Is(err, api.ErrUnavailable) && !errors.Is(err, api.ErrOutcomeUnknown) {
						t.Errorf("worker %d: Release: %v", i, err)
						return true
					}
					return err == nil
				}); !ok {
					t.Errorf("worker %d: Release did not succeed within 30s", i)
					return
				}
				rounds.Add(1)
			}
		})
	}
	await.True(t, 20*time.Second, "rounds before the kill", func() bool { return rounds.Load() >= 20 })

	c.kill(lead)
	killedAt := time.Now()
	before := rounds.Load()
	newLead := c.leader(fol...)
	t.Logf("new leader %d after %v", newLead.id, time.Since(killedAt))
	await.True(t, 30*time.Second, "rounds after the failover", func() bool { return rounds.Load() >= before+20 })
	close(stop)
	wg.Wait()

	if m := most.Load(); m > limit {
		t.Fatalf("%d workers inside at once, limit %d", m, limit)
	}
	t.Logf("%d rounds, at most %d of %d inside at once", rounds.Load(), most.Load(), limit)
	for i, s := range sessions {
		if s.Err() != nil {
			t.Errorf("session of worker %d ended: %v", i, s.Err())
		}
	}
	oc := sdkClient(t, fol...)
	sem, err := oc.SemaphoreInfo(ctx, name)
	if err != nil || len(sem.Holders) != 0 || len(sem.Waiters) != 0 {
		t.Fatalf("after the workers stopped: %+v %v, want no holder and no waiter", sem, err)
	}
}
