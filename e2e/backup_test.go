package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A backup of a running cluster (raftlock snapshot save) restored into a
// new cluster of three (raftlockd --restore-from, new ports, new data
// dirs, a cluster token): the holder, the waiter, the election's leader
// and candidate are there; sessions whose deadlines passed while the
// cluster was down are alive and stay so for more than an election
// timeout; new tokens are above every token of the old cluster; the new
// cluster has an ID of its own.
func TestBackupRestoreIntoNewCluster(t *testing.T) {
	cli := raftlockCLI(t)
	old := startCluster(t, 3)
	lead := old.leader(old.members...)
	u := lead.clientURL

	open := func(owner string) string {
		return old.must("POST", u+"/v1/sessions", map[string]any{"ttl": "3s", "owner": owner}, 201).body["id"].(string)
	}
	holder, waiter, leader, candidate := open("holder"), open("waiter"), open("leader"), open("candidate")
	token := num(old.must("POST", u+"/v1/locks/jobs/nightly/acquire", map[string]any{"session": holder}, 200).body["token"])
	old.must("POST", u+"/v1/locks/jobs/nightly/acquire", map[string]any{"session": waiter, "wait": "100ms", "keep_queued": true}, 409)
	term := num(old.must("POST", u+"/v1/elections/scheduler/campaign", map[string]any{"session": leader, "value": "host-l"}, 200).body["term"])
	old.must("POST", u+"/v1/elections/scheduler/campaign", map[string]any{"session": candidate, "value": "host-c", "wait": "100ms", "keep_queued": true}, 409)
	old.must("POST", u+"/v1/sessions/keepalive", map[string]any{"ids": []string{holder, waiter, leader, candidate}}, 200)

	file := filepath.Join(t.TempDir(), "backup.snapshot")
	var endpoints []string
	for _, m := range old.members {
		endpoints = append(endpoints, m.clientURL)
	}
	out, err := exec.Command(cli, "--endpoints", strings.Join(endpoints, ","), "snapshot", "save", file).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "saved "+file+": index ") {
		t.Fatalf("raftlock snapshot save: %v\n%s", err, out)
	}
	saved := time.Now() // every session's deadline is before saved + 3s
	st := old.must("GET", u+"/v1/status", nil, 200)
	oldCluster, _ := st.body["cluster_id"].(string)
	oldCommit := num(st.body["commit"])
	for _, m := range old.members {
		old.kill(m)
	}

	// The new cluster starts once every deadline of the old one has passed.
	time.Sleep(time.Until(saved.Add(3200 * time.Millisecond)))
	nc := startClusterWith(t, 3, clusterOptions{args: func(*member) []string {
		return []string{"--restore-from", file, "--initial-cluster-token", "restored-1"}
	}})
	nl := nc.leader(nc.members...)
	elected := time.Now()
	v := nc.members[0].clientURL // any member answers

	st = nc.must("GET", v+"/v1/status", nil, 200)
	if id, _ := st.body["cluster_id"].(string); id == "" || id == oldCluster {
		t.Errorf("the restored cluster's ID %q, the old one's %q: want another one", id, oldCluster)
	}
	l := nc.must("GET", v+"/v1/locks/jobs/nightly", nil, 200)
	ws, _ := l.body["waiters"].([]any)
	if s, tok := holderOf(l); s != holder || tok != token || len(ws) != 1 || ws[0].(map[string]any)["session"] != waiter {
		t.Errorf("restored lock: %v, want held by %s with token %d, %s waiting", l, holder, token, waiter)
	}
	e := nc.must("GET", v+"/v1/elections/scheduler", nil, 200)
	el, _ := e.body["leader"].(map[string]any)
	cs, _ := e.body["candidates"].([]any)
	if el["session"] != leader || num(el["term"]) != term || el["value"] != "host-l" || len(cs) != 1 || cs[0].(map[string]any)["session"] != candidate {
		t.Errorf("restored election: %v", e)
	}

	// No keep-alive since the backup, more than a TTL ago: the new term
	// gave every session its TTL again. Still alive after an election
	// timeout (500 ms).
	time.Sleep(time.Until(elected.Add(700 * time.Millisecond)))
	for _, s := range []string{holder, waiter, leader, candidate} {
		nc.must("GET", v+"/v1/sessions/"+s, nil, 200)
	}
	nc.must("POST", nl.clientURL+"/v1/sessions/keepalive", map[string]any{"ids": []string{holder, waiter, leader, candidate}}, 200)

	// The log goes on above the old one: every new token is larger than
	// any token of the old cluster.
	nc.must("POST", nl.clientURL+"/v1/locks/jobs/nightly/release", map[string]any{"session": holder, "token": token}, 200)
	l = nc.must("GET", v+"/v1/locks/jobs/nightly", nil, 200)
	if s, tok := holderOf(l); s != waiter || tok <= oldCommit {
		t.Errorf("after the release: %v, want %s to hold it with a token above %d", l, waiter, oldCommit)
	}
	fresh := nc.must("POST", nl.clientURL+"/v1/sessions", map[string]any{"ttl": "3s"}, 201).body["id"].(string)
	if tok := num(nc.must("POST", nl.clientURL+"/v1/locks/other/acquire", map[string]any{"session": fresh}, 200).body["token"]); tok <= oldCommit {
		t.Errorf("a new grant's token %d, not above the old cluster's commit index %d", tok, oldCommit)
	}

	// Restarted without --restore-from, a member goes on from its data dir.
	m := nc.members[1]
	nc.kill(m)
	m.extra = nil
	nc.start(m, false)
	nc.leader(nc.members...)
	nc.must("GET", m.clientURL+"/v1/locks/other", nil, 200)
}

// raftlockd --restore-from refuses a truncated file, naming it and saying
// so, and makes no data dir.
func TestBackupRestoreRefusesTruncatedFile(t *testing.T) {
	bin := raftlockd(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "cut.snapshot")
	// A valid header that announces 100 bytes of state, and 10 of them.
	b := append([]byte("RAFTLOCK-SNAPSHOT\n\x00\x00\x00\x01"), make([]byte, 8+8+8)...)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 100)
	b = append(b, make([]byte, 10)...)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(bin, "--restore-from", file, "--data-dir", data, "--id", "1",
		"--initial-cluster", "1=http://127.0.0.1:1,2=http://127.0.0.1:2,3=http://127.0.0.1:3",
		"--listen-client", "http://127.0.0.1:0", "--listen-peer", "http://127.0.0.1:0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("raftlockd: %v\n%s", err, out)
	}
	if want := file + ": api: invalid snapshot file: truncated"; !strings.Contains(string(out), want) {
		t.Errorf("raftlockd said:\n%s\nwant %q", out, want)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a data dir was made: %v", err)
	}
}
