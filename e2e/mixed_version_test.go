package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
)

// preClusterVersion is the last commit whose raftlockd has no cluster
// version: it reads command formats 1 to 3 and answers 404 to
// /raftlock/version. It is built from the repository's history.
const preClusterVersion = "9139b1633d3adfa856dd286fba502fb37641c811"

// oldRaftlockd builds raftlockd as of commit rev into a temporary
// directory (git archive of the repository this test runs in, built with
// the module cache at hand).
func oldRaftlockd(t *testing.T, rev string) string {
	t.Helper()
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("the mixed-version test builds an older raftlockd from the repository's history, but git failed: %v (is this a git clone with its history?)", err)
	}
	src := t.TempDir()
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", strings.TrimSpace(string(root)), rev, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s (a shallow clone lacks it: fetch the history): %v\n%s", rev, err, out)
	}
	bin := filepath.Join(t.TempDir(), "raftlockd-old")
	build := exec.Command("go", "build", "-o", bin, "./cmd/raftlockd")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build raftlockd %s: %v\n%s", rev, err, out)
	}
	return bin
}

// TestMixedVersionsGateNewCommands runs a cluster of two members of this
// build and one of the build before the cluster version: locks work, but
// a membership change (command format 4, which the old member cannot
// read) is refused until the old member runs this build too; then the
// cluster version rises and the change goes through.
func TestMixedVersionsGateNewCommands(t *testing.T) {
	old := oldRaftlockd(t, preClusterVersion)
	c := &cluster{t: t, bin: raftlockd(t)}
	ports := freePorts(t, 6)
	var parts []string
	for i := 0; i < 3; i++ {
		m := &member{id: i + 1, clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]), peerURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dataDir: filepath.Join(t.TempDir(), "data")}
		m.logPath = filepath.Join(filepath.Dir(m.dataDir), "raftlockd.log")
		c.members = append(c.members, m)
		parts = append(parts, fmt.Sprintf("%d=%s", m.id, m.peerURL))
	}
	c.initial = strings.Join(parts, ",")
	c.members[2].bin = old
	for _, m := range c.members {
		c.start(m, true)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.kill(m)
		}
		if t.Failed() {
			for _, m := range c.members {
				b, _ := os.ReadFile(m.logPath)
				t.Logf("log of member %d:\n%s", m.id, lastLines(string(b), 30))
			}
		}
	})
	lead := c.leader(c.members...)
	sess := c.must("POST", lead.clientURL+"/v1/sessions", api.CreateSessionRequest{TTL: api.Duration(time.Minute)}, http.StatusCreated)
	sid := sess.body["id"].(string)
	g := c.must("POST", c.members[2].clientURL+api.LockPath("mixed/a")+"/acquire", map[string]any{"session": sid}, http.StatusOK)
	token := num(g.body["token"])

	// A leader of the old build knows no membership endpoint (404): let a
	// member of this build lead.
	newer := c.members[0]
	if lead == c.members[2] {
		c.must("POST", lead.clientURL+api.LeaderTransferPath, api.LeaderTransferRequest{To: uint64(newer.id)}, http.StatusOK)
		c.leader(c.members...)
	}
	// The old member reads format 3 at most: the membership change is
	// refused, and nothing reaches the log.
	r, err := do("POST", newer.clientURL+api.MembersPath, api.MemberAddRequest{PeerURL: "http://127.0.0.1:1", Learner: true})
	if err != nil || r.status != http.StatusConflict || !strings.Contains(fmt.Sprint(r.body), "cluster_version") {
		t.Fatalf("member add with an old member: %v %v, want 409 cluster_version", r, err)
	}
	if st := c.must("GET", newer.clientURL+"/v1/status", nil, http.StatusOK); num(st.body["cluster_version"]) != 3 {
		t.Fatalf("cluster version %v with an old member, want 3", st.body["cluster_version"])
	}
	// The old member is still there and serving.
	c.must("GET", c.members[2].clientURL+api.LockPath("mixed/a")+"?consistency=stale", nil, http.StatusOK)

	// Upgrade it: same data dir, this build.
	c.kill(c.members[2])
	c.members[2].bin = ""
	c.start(c.members[2], false)
	c.leader(c.members...)
	await.True(t, 30*time.Second, "the cluster version rises once every member runs this build", func() bool {
		st, err := do("GET", newer.clientURL+"/v1/status", nil)
		return err == nil && num(st.body["cluster_version"]) >= 4
	})
	r = c.must("POST", newer.clientURL+api.MembersPath, api.MemberAddRequest{PeerURL: "http://127.0.0.1:1", Learner: true}, http.StatusCreated)
	if id := num(r.body["member"].(map[string]any)["id"]); id != 4 {
		t.Fatalf("new member ID %d, want 4", id)
	}
	// The lock granted under the old build is still held, with its token.
	l := c.must("GET", c.members[2].clientURL+api.LockPath("mixed/a"), nil, http.StatusOK)
	if _, tok := holderOf(l); tok != token {
		t.Fatalf("after the upgrade the lock's token is %d, want %d", tok, token)
	}
}
