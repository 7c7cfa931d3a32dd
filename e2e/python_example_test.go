package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// examples/python/lock_example.py, run with python3 against a real
// raftlockd, takes the lock (the cluster sees its session hold it), keeps
// its session alive past its TTL while it works, prints the fencing token
// of the grant, and leaves the lock free and its session closed.
//
// python3 is the Debian package python3: .ci/run installs it. Outside CI a
// machine without it skips the test; in CI (CI set) it fails.
func TestPythonExample(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("python3 is not installed (Debian package python3)")
		}
		t.Fatal("python3 is not installed: CI must install the Debian package python3")
	}
	c := startCluster(t, 1)
	m := c.leader(c.members[0])
	const name, path = "examples/python", "/v1/locks/examples%2Fpython"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	script := filepath.Join(repoRoot(t), "examples", "python", "lock_example.py")
	// A TTL of 2s (the server's least) and 4s of work: without its
	// keep-alives the session would expire while it holds the lock, and
	// the release would fail.
	cmd := exec.CommandContext(ctx, python, script, "--url", m.clientURL, "--lock", name, "--ttl", "2", "--work", "4")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var holder map[string]any
	await.True(t, 30*time.Second, "the script's session holds the lock", func() bool {
		r, err := do("GET", m.clientURL+path, nil)
		if err != nil || r.status != 200 {
			return false
		}
		holder, _ = r.body["holder"].(map[string]any)
		return holder != nil
	})
	if owner, _ := holder["owner"].(string); !regexp.MustCompile(`^python-example/\d+$`).MatchString(owner) {
		t.Errorf("the lock's holder: %v", holder)
	}

	if err := <-done; err != nil {
		t.Fatalf("lock_example.py: %v\n%s", err, out.String())
	}
	got := out.String()
	session := regexp.MustCompile(`(?m)^session (\d+) opened \(ttl 2s\)$`).FindStringSubmatch(got)
	token := regexp.MustCompile(`(?m)^lock examples/python acquired, fencing token (\d+)$`).FindStringSubmatch(got)
	if session == nil || token == nil ||
		!regexp.MustCompile(`(?m)^lock examples/python released \(token `+token[1]+`\)$`).MatchString(got) ||
		!regexp.MustCompile(`(?m)^session `+session[1]+` closed$`).MatchString(got) {
		t.Fatalf("lock_example.py printed:\n%s", got)
	}
	if holder["session"] != session[1] || strconv.FormatFloat(holder["token"].(float64), 'f', -1, 64) != token[1] {
		t.Errorf("the cluster saw holder %v, the script printed session %s and token %s", holder, session[1], token[1])
	}

	// The lock is free and the session closed.
	r := c.must("GET", m.clientURL+path, nil, 200)
	if r.body["holder"] != nil || len(r.body["holders"].([]any)) != 0 || len(r.body["waiters"].([]any)) != 0 {
		t.Fatalf("after the script, the lock is %v", r.body)
	}
	c.must("GET", m.clientURL+"/v1/sessions/"+session[1], nil, 404)
}

// syncBuffer is a bytes.Buffer safe for a process's two output pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
