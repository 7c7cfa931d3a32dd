package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/client"
	"github.com/raftlock/raftlock/internal/await"
)

// TestElectorSurvivesSIGKILLOfRaftLeader: two Electors campaign against a
// 3-process cluster; the raft leader is SIGKILLed. The leading Elector keeps
// leading with the same term (its session survives the failover), the
// other never leads, and at no poll do both claim to lead.
func TestElectorSurvivesSIGKILLOfRaftLeader(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var started, stopped atomic.Int32
	newElector := func(id string) *client.Elector {
		return &client.Elector{
			Client:          sdkClient(t, c.members...),
			Name:            "e2e/elector",
			Identity:        id,
			TTL:             5 * time.Second,
			ReleaseOnCancel: true,
			Callbacks: client.Callbacks{
				OnStartedLeading: func(ctx context.Context) { started.Add(1); <-ctx.Done() },
				OnStoppedLeading: func() { stopped.Add(1) },
			},
		}
	}
	a, b := newElector("A"), newElector("B")
	// run starts e.Run; stop cancels it and waits for it to return, once.
	run := func(name string, e *client.Elector) (stop func()) {
		ectx, ecancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(ectx) }()
		var once sync.Once
		return func() {
			once.Do(func() {
				ecancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("%s's Run: %v", name, err)
					}
				case <-time.After(20 * time.Second):
					t.Errorf("%s's Run did not return", name)
				}
			})
		}
	}
	stopA := run("A", a)
	defer stopA()
	await.True(t, 20*time.Second, "A leads", a.IsLeader)
	stopB := run("B", b)
	defer stopB()
	obs := sdkClient(t, c.members...)
	await.True(t, 20*time.Second, "B queued, and B sees A leading", func() bool {
		el, err := obs.ElectionInfo(ctx, "e2e/elector")
		id, _, ok := b.Leader()
		return err == nil && len(el.Candidates) == 1 && ok && id == "A"
	})
	term := a.Term()

	c.kill(lead)
	rest := c.others(lead)
	newLead := c.leader(rest...)
	// Keep polling through and after the failover: for three TTLs after a
	// new raft leader has been agreed on, A leads with the same term and B
	// never does.
	deadline := time.Now().Add(15 * time.Second)
	polls := 0
	for time.Now().Before(deadline) {
		la, lb := a.IsLeader(), b.IsLeader()
		if la && lb {
			t.Fatalf("both electors lead (poll %d)", polls)
		}
		if lb {
			t.Fatalf("B took over after the SIGKILL of raft leader %d (poll %d)", lead.id, polls)
		}
		if !la || a.Term() != term {
			t.Fatalf("A stopped leading (term %d, was %d) after the SIGKILL of raft leader %d (poll %d)", a.Term(), term, lead.id, polls)
		}
		polls++
		time.Sleep(20 * time.Millisecond) // pace of sampling an invariant over a fixed window, not a wait
	}
	el, err := obs.ElectionInfo(ctx, "e2e/elector")
	if err != nil {
		t.Fatal(err)
	}
	if el.Leader == nil || el.Leader.Value != "A" || el.Leader.Term != term || len(el.Candidates) != 1 {
		t.Fatalf("election after the failover (raft leader now %d): %+v", newLead.id, el)
	}
	if id, lt, ok := b.Leader(); !ok || id != "A" || lt != term {
		t.Fatalf("B observes %q term %d (ok %v), want A with term %d", id, lt, ok, term)
	}
	if started.Load() != 1 || stopped.Load() != 0 {
		t.Fatalf("OnStartedLeading called %d times, OnStoppedLeading %d", started.Load(), stopped.Load())
	}

	// The surviving cluster hands over: A resigns, B leads with a larger
	// term.
	stopA()
	if a.IsLeader() || stopped.Load() != 1 {
		t.Fatalf("after A's Run returned: A leads %v, OnStoppedLeading called %d times", a.IsLeader(), stopped.Load())
	}
	await.True(t, 20*time.Second, "B leads", b.IsLeader)
	if b.Term() <= term {
		t.Fatalf("B's term %d, want > %d", b.Term(), term)
	}
	stopB()
}
