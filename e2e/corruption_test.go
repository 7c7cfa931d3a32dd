package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A bit flipped in an acknowledged record must stop the node with a message
// that names the file; it must never start with that record silently gone.
func TestCorruptWALRefusesToStart(t *testing.T) {
	c := startCluster(t, 1)
	m := c.members[0]
	c.leader(m)
	const marker = "corruption-marker-0123456789"
	for i := 0; i < 5; i++ {
		c.must("POST", m.clientURL+"/v1/sessions", map[string]any{"ttl": "60s", "owner": marker}, 201)
	}
	c.kill(m)

	segs, err := filepath.Glob(filepath.Join(m.dataDir, "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segment in %s: %v", m.dataDir, err)
	}
	seg := segs[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte(marker))
	if at < 0 {
		t.Fatalf("marker not found in %s", seg)
	}
	b[at+3] ^= 0x01 // inside the first session's entry, not the last record
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	c.start(m, false)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("raftlockd started on a corrupt WAL")
	}
	if code := m.cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatal("raftlockd exited 0 on a corrupt WAL")
	}
	m.cmd = nil
	logb, _ := os.ReadFile(m.logPath)
	if !strings.Contains(string(logb), seg) {
		t.Fatalf("the error does not name the damaged file %s:\n%s", seg, lastLines(string(logb), 5))
	}
	t.Logf("raftlockd refused to start: %s", lastLines(strings.TrimSpace(string(logb)), 1))
}
