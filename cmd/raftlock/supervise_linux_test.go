package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/testserver"
)

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// pidsOf reads the PIDs that a CMD printed, one per line, until want of them.
func pidsOf(t *testing.T, p *proc, want int) []int {
	t.Helper()
	var pids []int
	for len(pids) < want {
		select {
		case l, ok := <-p.lineC:
			if !ok {
				t.Fatalf("stdout ended after %d PIDs; stderr:\n%s", len(pids), p.stderr)
			}
			pid, err := strconv.Atoi(l.text)
			if err != nil {
				t.Fatalf("stdout line %q is not a PID", l.text)
			}
			pids = append(pids, pid)
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // should the test fail
		case <-time.After(10 * time.Second):
			t.Fatalf("no PID on stdout; stderr:\n%s", p.stderr)
		}
	}
	return pids
}

// When CMD exits, what it left behind (a background job, a process that
// left the group with setsid, one that ignores SIGTERM) is ended before
// raftlock releases the lock and exits with CMD's code.
func TestBinaryLeftoversEndBeforeRelease(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	// CMD exits once the process that ignores SIGTERM has set that up
	// (and said so with its PID and the file ready).
	ready := filepath.Join(t.TempDir(), "ready")
	start := time.Now()
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "--kill-grace", "300ms", "leftovers", "--", "sh", "-c",
		`sleep 60 & echo $!; setsid sleep 60 & echo $!; sh -c 'trap "" TERM; echo $$; touch "$1"; exec sleep 60' sh "$1" &
		while [ ! -e "$1" ]; do sleep 0.01; done; exit 3`, "sh", ready)
	pids := pidsOf(t, p, 3)
	if code := p.wait(t, 10*time.Second); code != 3 {
		t.Fatalf("exit %d, want CMD's 3; stderr:\n%s", code, p.stderr)
	}
	took := time.Since(start)
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("process %d left by CMD still runs after raftlock exited", pid)
		}
	}
	if took < 300*time.Millisecond {
		t.Errorf("raftlock exited after %v: before the kill grace, so the process that ignores SIGTERM was not waited for", took)
	}
	if l := r.lock("leftovers"); l.Holder != nil {
		t.Errorf("lock still held: %+v", l.Holder)
	}
}

// When the lock is lost, the SIGKILL after the kill grace reaches every
// descendant of CMD, also one that left CMD's process group and session.
func TestBinaryLockLostKillsEscapedDescendants(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1)")
	}
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "--kill-grace", "200ms", "escape", "--", "sh", "-c",
		`setsid sh -c 'trap "" TERM; echo $$; exec sleep 60' & trap '' TERM; echo $$; while true; do sleep 0.1; done`)
	pids := pidsOf(t, p, 2)
	r.do("DELETE", api.SessionPath(r.lock("escape").Holder.Session), "", nil)
	if code := p.wait(t, 10*time.Second); code != exitLost {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitLost, p.stderr)
	}
	for _, pid := range pids {
		if running(pid) {
			t.Errorf("process %d still runs after raftlock exited 4", pid)
		}
	}
}

// descendants finds a grandchild through its parent, and not this process.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var b [32]byte
	n, _ := out.Read(b[:])
	grandchild, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		t.Fatalf("%q", b[:n])
	}
	defer syscall.Kill(grandchild, syscall.SIGKILL)
	d := descendants(os.Getpid())
	has := func(pid int) bool {
		for _, x := range d {
			if x == pid {
				return true
			}
		}
		return false
	}
	if !has(cmd.Process.Pid) || !has(grandchild) || has(os.Getpid()) {
		t.Errorf("descendants %v: want the child %d and the grandchild %d, not self", d, cmd.Process.Pid, grandchild)
	}
}
