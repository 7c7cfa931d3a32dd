package e2e

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// TestRestartWithDataDirAlone: a killed member restarts with
// `raftlockd --data-dir DIR` alone (the data dir remembers its URLs), and
// serves on its old client URL as a member of the cluster again.
func TestRestartWithDataDirAlone(t *testing.T) {
	c := startCluster(t, 3)
	c.leader(c.members...)
	m := c.members[2]
	c.kill(m)
	logf, err := os.OpenFile(m.logPath, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "--data-dir", m.dataDir, "--tick", tick)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(m.exited)
	}()
	await.True(t, 20*time.Second, "the member restarted with --data-dir alone answers on its client URL and knows the leader", func() bool {
		l, ok := status(m)
		return ok && l != 0
	})
	c.leader(c.members...)
}
