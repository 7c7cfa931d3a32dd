package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/raftlock/raftlock/client"
	"github.com/raftlock/raftlock/internal/await"
)

// sdkClient returns an SDK client for the given members, in that order.
func sdkClient(t *testing.T, ms ...*member) *client.Client {
	t.Helper()
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.clientURL)
	}
	c, err := client.New(client.Config{Endpoints: eps, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sdkSession(t *testing.T, ctx context.Context, c *client.Client, owner string) *client.Session {
	t.Helper()
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second), client.WithOwner(owner))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(cctx) // the cluster may be gone already
	})
	return s
}

func chanClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestSDKLockWaitSurvivesSIGKILLOfItsEndpoint: the node the waiting SDK
// talks to (the leader, its first endpoint) is SIGKILLed while Lock waits
// for another session's hold; Lock still completes after the holder
// unlocks, with a larger token.
func TestSDKLockWaitSurvivesSIGKILLOfItsEndpoint(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	fol := c.others(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	hc := sdkClient(t, fol...)
	hs := sdkSession(t, ctx, hc, "holder")
	hm := hs.NewMutex("e2e/sdk-wait")
	if err := hm.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	tokH := hm.Token()

	wc := sdkClient(t, append([]*member{lead}, fol...)...)
	ws := sdkSession(t, ctx, wc, "waiter")
	wm := ws.NewMutex("e2e/sdk-wait")
	done := make(chan error, 1)
	go func() { done <- wm.Lock(ctx) }()
	await.True(t, 10*time.Second, "the waiter queued", func() bool {
		l, err := hc.LockInfo(ctx, "e2e/sdk-wait")
		return err == nil && len(l.Waiters) == 1 && l.Waiters[0].Session == ws.ID()
	})

	c.kill(lead)
	killedAt := time.Now()
	newLead := c.leader(fol...)
	t.Logf("new leader %d after %v", newLead.id, time.Since(killedAt))
	select {
	case err := <-done:
		t.Fatalf("Lock returned while the lock was still held: %v", err)
	default:
	}

	if err := hm.Unlock(ctx); err != nil {
		t.Fatalf("holder's Unlock after the failover: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiting Lock: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waiting Lock did not complete within 30s of the release")
	}
	if wm.Token() <= tokH {
		t.Fatalf("waiter's token %d, not above the holder's %d", wm.Token(), tokH)
	}
	l, err := hc.LockInfo(ctx, "e2e/sdk-wait")
	if err != nil || l.Holder == nil || l.Holder.Session != ws.ID() || l.Holder.Token != wm.Token() {
		t.Fatalf("lock after the grant: %+v %v", l, err)
	}
	if ws.Err() != nil || hs.Err() != nil {
		t.Fatalf("a session ended: waiter %v, holder %v", ws.Err(), hs.Err())
	}
	if err := wm.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSDKSessionSurvivesLeaderSIGKILL: SIGKILL of the leader while a lock is
// held: the session survives (keep-alives continue on the new leader), the
// hold is not lost, and Unlock works afterwards.
func TestSDKSessionSurvivesLeaderSIGKILL(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	fol := c.others(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	sc := sdkClient(t, append([]*member{lead}, fol...)...)
	s := sdkSession(t, ctx, sc, "survivor")
	m := s.NewMutex("e2e/sdk-held")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	tok, lost := m.Token(), m.Lost()

	c.kill(lead)
	killedAt := time.Now()
	newLead := c.leader(fol...)
	t.Logf("new leader %d after %v", newLead.id, time.Since(killedAt))

	// A renewal sent after the kill was acknowledged: SafeUntil (send time
	// + TTL - TTL/10 for this TTL) moved past what any renewal sent before
	// the kill could give.
	await.True(t, 20*time.Second, "a keep-alive acknowledged by the new leader", func() bool {
		return s.SafeUntil().After(killedAt.Add(s.TTL() - s.TTL()/10))
	})
	// And a couple more keep-alive intervals pass without a loss.
	hold := time.NewTimer(2 * s.TTL() / 3)
	defer hold.Stop()
	select {
	case <-s.Done():
		t.Fatalf("session ended: %v", s.Err())
	case <-lost:
		t.Fatal("hold lost")
	case <-hold.C:
	}
	if chanClosed(s.Done()) || chanClosed(lost) || s.Ctx().Err() != nil || m.Token() != tok {
		t.Fatalf("after the failover: done %v lost %v ctx %v token %d (want %d)", chanClosed(s.Done()), chanClosed(lost), s.Ctx().Err(), m.Token(), tok)
	}
	info, err := sc.SessionInfo(ctx, s.ID())
	if err != nil || !slices.Contains(info.Locks, "e2e/sdk-held") {
		t.Fatalf("session on the new leader: %+v %v", info, err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatalf("Unlock after the failover: %v", err)
	}
	if l, err := sc.LockInfo(ctx, "e2e/sdk-held"); err != nil || l.Holder != nil {
		t.Fatalf("lock after Unlock: %+v %v", l, err)
	}
}
