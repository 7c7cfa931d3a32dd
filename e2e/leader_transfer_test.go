package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// TestLeaderTransfer: POST /v1/leader/transfer hands leadership to the
// member named (through a follower, which forwards it) or to the most
// caught-up voter, and answers once that member leads; held locks and
// their tokens are kept.
func TestLeaderTransfer(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	awaitReady(t, c)
	s := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "10s"}, 201).body["id"]
	g := c.must("POST", lead.clientURL+"/v1/locks/kept/acquire", map[string]any{"session": s}, 200)

	var target, via *member
	for _, m := range c.members {
		if m != lead && target == nil {
			target = m
		} else if m != lead {
			via = m
		}
	}
	r := c.must("POST", via.clientURL+"/v1/leader/transfer", map[string]any{"to": target.id}, 200)
	if int(num(r.body["leader"])) != target.id {
		t.Fatalf("transfer to %d answered %v", target.id, r)
	}
	for _, m := range c.members {
		await.True(t, 5*time.Second, fmt.Sprintf("member %d sees member %d lead", m.id, target.id), func() bool {
			l, ok := status(m)
			return ok && int(l) == target.id
		})
	}
	// To the most caught-up voter: someone else leads.
	r = c.must("POST", target.clientURL+"/v1/leader/transfer", nil, 200)
	if l := int(num(r.body["leader"])); l == target.id || l == 0 {
		t.Fatalf("transfer without a target answered %v", r)
	}
	// The lock and its token survived both changes.
	h := c.must("GET", target.clientURL+"/v1/locks/kept", nil, 200).body["holder"].(map[string]any)
	if h["session"] != s || num(h["token"]) != num(g.body["token"]) {
		t.Fatalf("holder after the transfers: %v, want session %v token %v", h, s, g.body["token"])
	}
	// A member that does not exist is refused, and nothing moves.
	c.must("POST", target.clientURL+"/v1/leader/transfer", map[string]any{"to": 99}, 400)
}
