package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
)

// progressOf returns member m's own view of its log: the commit index it
// knows and the index it applied.
func progressOf(m *member) (commit, applied uint64, ok bool) {
	r, err := do("GET", m.clientURL+"/v1/status?consistency=stale", nil)
	if err != nil || r.status != http.StatusOK {
		return 0, 0, false
	}
	return num(r.body["commit"]), num(r.body["applied"]), true
}

// vouchLines returns the lines of m's log about the members it trusts or
// that were vouched for (raftnode/vouch.go), and its first drops.
func vouchLines(m *member) string {
	b, _ := os.ReadFile(m.logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(out) < 20 && (strings.Contains(l, "vouched for") || strings.Contains(l, "trusting a member") || strings.Contains(l, "dropped an inbound")) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// behindWrites is how many locks the new leader grants while the member
// behind is down. Any number shows the gap: the leader's first probe is
// at its own last index, beyond the log of the member (which ends before
// the new member's addition), so the member rejects it, and it catches up
// only if the rejection reaches the leader. Once it does, one append
// message (up to MaxSizePerMsg, 1 MiB) carries all of them.
const behindWrites = 50

// TestBehindMemberCatchesUpFromANewLeader: a member that was down while a
// member was added, and that member took the lead, catches up from it
// once it is back. It does not know the new leader (its configuration
// predates it): the others vouch for it (raftnode/vouch.go), and its
// transport must be told the leader's peer URL, or every answer to the
// leader is dropped and the leader probes the same index for ever.
func TestBehindMemberCatchesUpFromANewLeader(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	awaitReady(t, c)
	// Before a member goes down: the cluster version cannot rise while
	// one's version is unknown.
	await.True(t, 20*time.Second, "the cluster version allows membership changes", func() bool {
		r, err := do("GET", lead.clientURL+"/v1/status", nil)
		return err == nil && num(r.body["cluster_version"]) >= 4
	})
	behind := c.members[2]
	c.kill(behind)
	live := c.members[:2]
	c.leader(live...)

	// A voter cannot be added while one of three is down (two started of
	// four): a learner, promoted once it has caught up.
	m := c.addMember(live[0], true)
	c.promote(live[0], m)
	c.members = append(c.members, m)
	r := c.must("POST", live[1].clientURL+api.LeaderTransferPath, api.LeaderTransferRequest{To: uint64(m.id)}, http.StatusOK)
	if int(num(r.body["leader"])) != m.id {
		t.Fatalf("transfer to member %d answered %v", m.id, r)
	}
	lead = c.leader(live[0], live[1], m)
	if lead != m {
		t.Fatalf("member %d leads, want the new member %d", lead.id, m.id)
	}

	sess := c.must("POST", m.clientURL+"/v1/sessions", api.CreateSessionRequest{TTL: api.Duration(time.Minute), Owner: "behind"}, http.StatusCreated)
	sid := sess.body["id"].(string)
	for i := range behindWrites {
		c.must("POST", m.clientURL+api.LockPath(fmt.Sprintf("behind-%03d", i))+"/acquire", map[string]any{"session": sid}, http.StatusOK)
	}
	target, _, ok := progressOf(m)
	if !ok {
		t.Fatalf("the leader's status did not answer")
	}

	c.start(behind, false)
	began := time.Now()
	if _, ok := await.Within(20*time.Second, func() bool {
		_, applied, ok := progressOf(behind)
		return ok && applied >= target
	}); !ok {
		commit, applied, _ := progressOf(behind)
		t.Fatalf("member %d, back after member %d was added and took the lead, is stuck: commit %d, applied %d, the leader's commit %d (20s after its restart); its log on vouching:\n%s",
			behind.id, m.id, commit, applied, target, vouchLines(behind))
	}
	t.Logf("FIGURE: member %d caught up to index %d from new leader %d in %v", behind.id, target, m.id, time.Since(began).Round(time.Millisecond))
	// Its answers reach the leader: the leader sees its log match.
	await.True(t, 10*time.Second, "the leader sees the member's log match its own", func() bool {
		r, err := do("GET", m.clientURL+"/v1/status?consistency=stale", nil)
		if err != nil || r.status != http.StatusOK {
			return false
		}
		for _, x := range r.body["members"].([]any) {
			mb := x.(map[string]any)
			p, _ := mb["progress"].(map[string]any)
			if int(num(mb["id"])) == behind.id && p != nil {
				return p["reachable"] == true && num(p["match"]) >= target
			}
		}
		return false
	})
}
