package raftnode

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

type fakeAsker struct {
	members []MemberInfo
	asked   atomic.Int64
}

func (f *fakeAsker) AskCluster(ctx context.Context, self uint64) []ClusterInfo {
	f.asked.Add(1)
	return []ClusterInfo{{Members: f.members}}
}

// A sender this node does not know, with an ID above all it knows, is
// accepted once a member it knows vouches for it; one nobody lists never
// is, and it is asked about at most once per vouchInterval.
func TestVouchForMembersAddedSince(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	n := c.leader().n
	asker := &fakeAsker{members: []MemberInfo{{ID: 1}, {ID: 5, PeerURL: "mem://5"}}}
	go n.runVouchers(asker)

	if n.IsMember(5) {
		t.Fatal("an unknown member accepted before anyone vouched for it")
	}
	await.True(t, 5*time.Second, "member 5 vouched for", func() bool { return n.IsMember(5) })

	for range 10 {
		if n.IsMember(9) {
			t.Fatal("a sender nobody lists was accepted")
		}
	}
	await.True(t, 5*time.Second, "the stranger looked up", func() bool { return asker.asked.Load() >= 2 })
	time.Sleep(50 * time.Millisecond) // no wait for a condition: counting that nothing more happens
	if got := asker.asked.Load(); got != 2 {
		t.Fatalf("%d lookups for two unknown senders within %v", got, vouchInterval)
	}
	// An ID at or below the highest known is never looked up: it is a
	// member this node knows, or not one.
	n.IsMember(1)
	if n.vouch(0); asker.asked.Load() != 2 {
		t.Fatal("looked up an ID this node knows")
	}
}
