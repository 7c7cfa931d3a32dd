package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// spawnScript is the CMD whose descendants must all die with raftlock: a
// background sleep, a sleep that left the process group and the session
// (setsid), and a shell that ignores SIGTERM with a sleep that inherited
// that (both need SIGKILL). Every PID goes to $PIDS, one per line.
const spawnScript = `
sleep 60 & echo $! >> "$PIDS"
setsid sleep 60 & echo $! >> "$PIDS"
sh -c 'trap "" TERM; sleep 60 & echo $! >> "$PIDS"; wait' & echo $! >> "$PIDS"
echo $$ >> "$PIDS"
wait
`

// supervisedProc identifies a process across PID reuse: its PID and start time.
type supervisedProc struct {
	pid   int
	start string // field 22 of /proc/PID/stat
}

// readProcStat reads /proc/PID/stat: the state letter and the start time
// ("" if there is no such process).
func readProcStat(pid int) (state, start string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", ""
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", ""
	}
	return f[0], f[19]
}

// alive reports whether p still runs (a zombie does not).
func (p supervisedProc) alive() bool {
	state, start := readProcStat(p.pid)
	return start == p.start && state != "Z"
}

// TestSupervisorEndsCmdWhenRaftlockIsKilled: raftlock lock (and elect)
// runs a CMD that spawns background processes, one that escapes with
// setsid, and two that ignore SIGTERM. raftlock is SIGKILLed. Every one of
// those processes is gone before another raftlock acquires the lock (or
// leads the election), which CMD of the second raftlock checks too.
func TestSupervisorEndsCmdWhenRaftlockIsKilled(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1) on this machine")
	}
	c := startCluster(t, 1)
	url := c.leader(c.members[0]).clientURL
	bin := raftlockCLI(t)
	const ttl = 2 * time.Second

	for _, tc := range []struct {
		what       string
		first, sec func(check ...string) []string
	}{
		{"lock",
			func(cmd ...string) []string {
				return append([]string{"--endpoints", url, "lock", "--ttl", ttl.String(), "victim", "--"}, cmd...)
			},
			func(cmd ...string) []string {
				return append([]string{"--endpoints", url, "lock", "--ttl", ttl.String(), "victim", "--"}, cmd...)
			}},
		{"elect",
			func(cmd ...string) []string {
				return append([]string{"--endpoints", url, "elect", "--ttl", ttl.String(), "victim-election", "first", "--"}, cmd...)
			},
			func(cmd ...string) []string {
				return append([]string{"--endpoints", url, "elect", "--ttl", ttl.String(), "victim-election", "second", "--"}, cmd...)
			}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			first := exec.Command(bin, tc.first("sh", "-c", spawnScript)...)
			first.Env = append(os.Environ(), "PIDS="+pidFile)
			var firstErr lockedBuf
			first.Stdout, first.Stderr = &firstErr, &firstErr
			first.WaitDelay = 5 * time.Second
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			firstDone := make(chan struct{})
			go func() { _ = first.Wait(); close(firstDone) }()
			t.Cleanup(func() { first.Process.Kill(); <-firstDone })

			// The five PIDs: sleep, setsid sleep, the inner sh, its sleep, CMD.
			var procs []supervisedProc
			await.True(t, 10*time.Second, "CMD and its four descendants started", func() bool {
				b, _ := os.ReadFile(pidFile)
				fields := strings.Fields(string(b))
				if len(fields) < 5 {
					return false
				}
				procs = procs[:0]
				for _, f := range fields {
					pid, err := strconv.Atoi(f)
					if err != nil {
						t.Fatalf("PID file: %q", b)
					}
					_, start := readProcStat(pid)
					procs = append(procs, supervisedProc{pid, start})
				}
				return true
			})
			for _, p := range procs {
				if !p.alive() {
					t.Fatalf("process %d is not running before the kill", p.pid)
				}
				t.Cleanup(func() { _ = killIfStill(p) }) // should the test fail
			}

			if err := first.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			<-firstDone

			// The second raftlock's CMD runs once it holds the lock (leads):
			// it lists what still runs of the PIDs, then says it holds.
			check := `for p in "$@"; do if [ -e "/proc/$p" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$p/stat"; then echo "alive $p"; fi; done; echo holding`
			args := []string{"sh", "-c", check, "sh"}
			for _, p := range procs {
				args = append(args, strconv.Itoa(p.pid))
			}
			second := exec.Command(bin, tc.sec(args...)...)
			var out, errb lockedBuf
			second.Stdout, second.Stderr = &out, &errb
			if err := second.Start(); err != nil {
				t.Fatal(err)
			}
			secondDone := make(chan error, 1)
			go func() { secondDone <- second.Wait() }()
			t.Cleanup(func() { second.Process.Kill() })

			// Meanwhile: every process goes, well within the TTL.
			await.True(t, ttl, "every process of CMD gone after raftlock's SIGKILL", func() bool {
				for _, p := range procs {
					if p.alive() {
						return false
					}
				}
				return true
			})
			t.Logf("FIGURE: %s: SIGKILL of raftlock to the last of CMD's processes gone: %v (session TTL %v)", tc.what, time.Since(killed).Round(time.Millisecond), ttl)

			select {
			case err := <-secondDone:
				if err != nil {
					t.Fatalf("second raftlock: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the second raftlock never held it; stderr:\n%s", errb.String())
			}
			held := time.Since(killed)
			// (elect prints its own "leading ..." line first.)
			if got := out.String(); strings.Contains(got, "alive") || !strings.HasSuffix(got, "holding\n") {
				t.Errorf("when the second raftlock held it, its CMD saw:\n%s", got)
			}
			t.Logf("FIGURE: %s: SIGKILL of raftlock to the next holder's CMD: %v", tc.what, held.Round(time.Millisecond))
			if !strings.Contains(firstErr.String(), "raftlock: supervisor: raftlock (pid "+strconv.Itoa(first.Process.Pid)+") is gone") {
				t.Errorf("the supervisor did not report raftlock's death:\n%s", firstErr.String())
			}
		})
	}
}

// killIfStill sends SIGKILL to p if it is still the process recorded.
func killIfStill(p supervisedProc) error {
	if !p.alive() {
		return nil
	}
	proc, err := os.FindProcess(p.pid)
	if err != nil {
		return err
	}
	return proc.Kill()
}
