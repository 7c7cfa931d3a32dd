package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
)

// addMember announces a new member to the cluster (POST /v1/members on
// via, which forwards to the leader), then starts it as a joiner with an
// empty data dir. It returns the member, not yet in c.members.
func (c *cluster) addMember(via *member, learner bool) *member {
	c.t.Helper()
	ports := freePorts(c.t, 2)
	scheme := c.opts.scheme
	if scheme == "" {
		scheme = "http"
	}
	m := &member{
		clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[0]),
		peerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[1]),
		dataDir:   filepath.Join(c.t.TempDir(), "data"),
	}
	m.logPath = filepath.Join(filepath.Dir(m.dataDir), "raftlockd.log")
	r := c.must("POST", via.clientURL+api.MembersPath, api.MemberAddRequest{PeerURL: m.peerURL, Learner: learner}, http.StatusCreated)
	added, _ := r.body["member"].(map[string]any)
	m.id = int(num(added["id"]))
	if m.id == 0 {
		c.t.Fatalf("member add answered no ID: %v", r)
	}
	var parts []string
	for _, x := range r.body["members"].([]any) {
		mb := x.(map[string]any)
		parts = append(parts, fmt.Sprintf("%d=%s", num(mb["id"]), mb["peer_url"]))
	}
	if c.opts.args != nil {
		m.extra = c.opts.args(m)
	}
	m.extra = append(m.extra, "--id", strconv.Itoa(m.id), "--initial-cluster-state", "existing", "--initial-cluster", strings.Join(parts, ","))
	c.start(m, false)
	c.t.Cleanup(func() { c.kill(m) })
	return m
}

// promote promotes learner m once it has caught up (the leader refuses
// until then: 409 learner_not_ready).
func (c *cluster) promote(via *member, m *member) {
	c.t.Helper()
	var last reply
	if _, ok := await.Within(30*time.Second, func() bool {
		r, err := do("POST", via.clientURL+api.MemberPath(uint64(m.id))+"/promote", nil)
		last = r
		return err == nil && r.status == http.StatusOK
	}); !ok {
		c.t.Fatalf("member %d not promoted within 30s: %v", m.id, last)
	}
}

// removeMember removes m (DELETE on via) and waits until m's process has
// stopped by itself, saying why.
func (c *cluster) removeMember(via, m *member) {
	c.t.Helper()
	c.must("DELETE", via.clientURL+api.MemberPath(uint64(m.id)), nil, http.StatusOK)
	select {
	case <-m.exited:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("removed member %d did not stop by itself", m.id)
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Errorf("removed member %d exited with %d, want 0", m.id, code)
	}
	b, _ := os.ReadFile(m.logPath)
	if !strings.Contains(string(b), "removed from the cluster") {
		c.t.Errorf("removed member %d's log does not say why it stopped:\n%s", m.id, lastLines(string(b), 10))
	}
	m.cmd = nil
}

func memberIDs(c *cluster, via *member) []int {
	r := c.must("GET", via.clientURL+api.MembersPath, nil, http.StatusOK)
	var ids []int
	for _, x := range r.body["members"].([]any) {
		mb := x.(map[string]any)
		if l, _ := mb["learner"].(bool); !l {
			ids = append(ids, int(num(mb["id"])))
		}
	}
	return ids
}

// TestMembershipGrowAndShrinkUnderLoad grows a cluster from 1 to 3 to 5
// members and shrinks it to 3 (its leader removed first) while clients
// take and release locks through whichever members serve at the time:
// the history must be linearizable, no fenced write may be stale, and
// every member must end with the same state.
func TestMembershipGrowAndShrinkUnderLoad(t *testing.T) {
	c := startCluster(t, 1)
	first := c.leader(c.members...)
	await.True(t, 20*time.Second, "the single member raises the cluster version", func() bool {
		r, err := do("GET", first.clientURL+"/v1/status", nil)
		return err == nil && num(r.body["cluster_version"]) >= 4
	})

	r := newChaosRun(t, c, nil, 7, 3*time.Second, true)
	serving := slices.Clone(c.members)
	c.serving.Store(&serving)
	soft, stopSoft := context.WithCancel(context.Background())
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	defer stopSoft()
	var workers, keepers sync.WaitGroup
	for i := 0; i < 4; i++ {
		lw := &lockWorker{worker: worker{r: r, id: i, rng: rand.New(rand.NewPCG(7, uint64(i))), owner: fmt.Sprintf("grow-%d", i), soft: soft, hard: hard},
			names: []string{"grow/a", "grow/b"}, pauseAt: map[int]bool{}}
		workers.Add(1)
		keepers.Add(1)
		go func() { defer keepers.Done(); lw.keepAlives(rand.New(rand.NewPCG(7, uint64(100+i)))) }()
		go func() { defer workers.Done(); lw.run() }()
	}
	stopClients := func() {
		stopSoft()
		if !waitTimeout(&workers, 30*time.Second) {
			t.Errorf("the clients did not finish within 30s")
		}
		stopHard()
		if !waitTimeout(&keepers, 30*time.Second) {
			t.Errorf("the keep-alives did not stop within 30s")
		}
	}
	serve := func(ms []*member) {
		s := slices.Clone(ms)
		c.serving.Store(&s)
	}

	// Grow 1 → 3 → 5: each member joins as a learner and is promoted once
	// it has caught up.
	for want := 2; want <= 5; want++ {
		began := time.Now()
		m := c.addMember(c.members[len(c.members)-1], true)
		if m.id != want {
			t.Fatalf("the cluster chose ID %d for its %dth member, want %d", m.id, want, want)
		}
		c.promote(first, m)
		c.members = append(c.members, m)
		serve(c.members)
		c.leader(c.members...)
		t.Logf("FIGURE: member %d added, caught up and promoted in %v", m.id, time.Since(began).Round(time.Millisecond))
		sleep(context.Background(), 300*time.Millisecond)
	}
	if ids := memberIDs(c, c.members[2]); !slices.Equal(ids, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("voters %v, want 1..5", ids)
	}

	// Shrink 5 → 3, the leader first: it hands leadership over, then the
	// new leader removes it, and it stops itself.
	for range 2 {
		lead := c.leader(c.members...)
		rest := slices.DeleteFunc(slices.Clone(c.members), func(m *member) bool { return m == lead })
		serve(rest)
		began := time.Now()
		c.removeMember(lead, lead)
		c.members = rest
		next := c.leader(c.members...)
		t.Logf("FIGURE: leader %d removed (it stopped itself) in %v; member %d leads", lead.id, time.Since(began).Round(time.Millisecond), next.id)
		sleep(context.Background(), 300*time.Millisecond)
	}
	if ids := memberIDs(c, c.members[0]); len(ids) != 3 {
		t.Fatalf("voters %v after shrinking, want 3", ids)
	}
	sleep(context.Background(), time.Second)
	stopClients()

	res := r.hist.Check(60 * time.Second)
	if !res.Ok {
		t.Errorf("history of %d operations is not linearizable (timed out: %v): %s", res.Ops, res.TimedOut, res.Failed)
	}
	if stale := r.store.check(t); len(stale) > 0 {
		t.Errorf("the fenced resource accepted %d stale writes, the first %+v", len(stale), stale[0])
	}
	applied := r.converge()
	grants := r.counted("op ")
	t.Logf("FIGURE: %d operations (%s) linearizable: %v; all members converged at index %d", res.Ops, sortedCounts(grants), res.Ok, applied)
	if grants["Acquire Granted"]+grants["TryAcquire Granted"] == 0 {
		t.Errorf("no lock was granted while the membership changed: %v", grants)
	}
}

// TestReplaceDeadMember replaces a member whose disk died: it is removed
// (the two others are a quorum of the two that remain), a new member with
// an empty data dir takes its place under a new ID, and the old member,
// started again from a copy of its data dir, is refused by the others and
// stops itself.
func TestReplaceDeadMember(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	sess := c.must("POST", lead.clientURL+"/v1/sessions", api.CreateSessionRequest{TTL: api.Duration(time.Minute), Owner: "replace"}, http.StatusCreated)
	sid := sess.body["id"].(string)
	grant := c.must("POST", lead.clientURL+api.LockPath("jobs/replace")+"/acquire", map[string]any{"session": sid}, http.StatusOK)
	token := num(grant.body["token"])

	var dead *member
	for _, m := range c.members {
		if m != lead {
			dead = m
			break
		}
	}
	c.kill(dead)
	saved := filepath.Join(t.TempDir(), "saved")
	if out, err := exec.Command("cp", "-a", dead.dataDir, saved).CombinedOutput(); err != nil {
		t.Fatalf("copy the dead member's data dir: %v: %s", err, out)
	}
	if err := os.RemoveAll(dead.dataDir); err != nil {
		t.Fatal(err)
	}
	live := slices.DeleteFunc(slices.Clone(c.members), func(m *member) bool { return m == dead })
	// The leader notices the dead member is gone before it lets it go:
	// removal is safe (2 started voters remain of 2).
	var last reply
	if _, ok := await.Within(20*time.Second, func() bool {
		r, err := do("DELETE", live[0].clientURL+api.MemberPath(uint64(dead.id)), nil)
		last = r
		return err == nil && r.status == http.StatusOK
	}); !ok {
		t.Fatalf("the dead member was not removed within 20s: %v", last)
	}
	c.members = live
	m := c.addMember(live[1], false)
	if m.id != 4 {
		t.Fatalf("the replacement got ID %d, want 4 (IDs are never reused)", m.id)
	}
	c.members = append(c.members, m)
	c.leader(c.members...)
	await.True(t, 20*time.Second, "the replacement has the lock granted before it existed", func() bool {
		r, err := do("GET", m.clientURL+api.LockPath("jobs/replace")+"?consistency=stale", nil)
		if err != nil || r.status != http.StatusOK {
			return false
		}
		_, tok := holderOf(r)
		return tok == token
	})
	// A new grant works, with a larger token.
	c.must("POST", m.clientURL+api.LockPath("jobs/replace")+"/release", map[string]any{"session": sid, "token": token}, http.StatusOK)
	g2 := c.must("POST", m.clientURL+api.LockPath("jobs/replace")+"/acquire", map[string]any{"session": sid}, http.StatusOK)
	if num(g2.body["token"]) <= token {
		t.Fatalf("token %d after the replacement, not above %d", num(g2.body["token"]), token)
	}

	// The removed member comes back from its old data dir: the others
	// answer it 410 Gone, and it stops itself.
	if err := os.Rename(saved, dead.dataDir); err != nil {
		t.Fatal(err)
	}
	c.start(dead, false)
	t.Cleanup(func() { c.kill(dead) })
	select {
	case <-dead.exited:
	case <-time.After(20 * time.Second):
		b, _ := os.ReadFile(dead.logPath)
		t.Fatalf("the removed member, restarted, did not stop by itself:\n%s", lastLines(string(b), 30))
	}
	b, _ := os.ReadFile(dead.logPath)
	if !strings.Contains(string(b), "removed from the cluster") {
		t.Errorf("the restarted removed member's log does not say why it stopped:\n%s", lastLines(string(b), 15))
	}
	dead.cmd = nil
	if ids := memberIDs(c, m); !slices.Equal(ids, []int{1, 2, 3, 4}[:0]) && !slices.Contains(ids, 4) || slices.Contains(ids, dead.id) {
		t.Fatalf("voters %v", ids)
	}
}
