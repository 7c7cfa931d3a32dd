package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// proc is a running raftlock binary whose stdout lines arrive on lineC.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	lineC  chan line // closed at EOF of stdout
	doneC  chan struct{}
	err    error // of Wait, once doneC is closed
}

// syncBuffer is a bytes.Buffer safe to read while the process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type line struct {
	text string
	at   time.Time
}

func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(t), args...), stderr: new(syncBuffer), lineC: make(chan line, 100), doneC: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	// A pipe of our own rather than StdoutPipe: Wait then waits for the
	// process only, not for every holder of its stdout (such as a CMD that
	// outlives raftlock).
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = pw
	err = p.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.lineC <- line{sc.Text(), time.Now()}
		}
		close(p.lineC)
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.doneC)
	}()
	t.Cleanup(func() {
		select {
		case <-p.doneC:
		default:
			p.cmd.Process.Kill()
			<-p.doneC
		}
		pr.Close()
	})
	return p
}

// expectLine waits for the next stdout line and fails unless it is want.
func (p *proc) expectLine(t *testing.T, want string, within time.Duration) line {
	t.Helper()
	select {
	case l, ok := <-p.lineC:
		if !ok {
			t.Fatalf("stdout ended before %q; stderr:\n%s", want, p.stderr)
		}
		if l.text != want {
			t.Fatalf("stdout line %q, want %q", l.text, want)
		}
		return l
	case <-time.After(within):
		t.Fatalf("no %q on stdout within %v; stderr:\n%s", want, within, p.stderr)
	}
	return line{}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.doneC:
	case <-time.After(within):
		t.Fatalf("raftlock still running after %v; stderr:\n%s", within, p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// Two raftlock processes take turns on one lock: the begin/end marks of
// their commands never interleave, and the fencing tokens strictly increase
// in the order of the file.
func TestBinaryMutualExclusion(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	marks := filepath.Join(t.TempDir(), "marks")
	const workers, rounds = 2, 4
	// The sleep widens the window in which a second holder would interleave
	// its marks; it synchronises nothing.
	script := `echo "begin $RAFTLOCK_TOKEN" >> "$MARKS"; sleep 0.05; echo "end $RAFTLOCK_TOKEN" >> "$MARKS"`
	var wg sync.WaitGroup
	errC := make(chan error, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				cmd := exec.Command(binary(t), "--endpoints", s.URL, "lock", "--ttl", "1s", "--wait", "20s", "shared", "--", "sh", "-c", script)
				cmd.Env = append(os.Environ(), "MARKS="+marks)
				if out, err := cmd.CombinedOutput(); err != nil {
					errC <- fmt.Errorf("worker %d round %d: %v\n%s", w, i, err, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errC)
	for err := range errC {
		t.Error(err)
	}
	b, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) != 2*workers*rounds {
		t.Fatalf("%d marks, want %d:\n%s", len(ls), 2*workers*rounds, b)
	}
	var last uint64
	for i := 0; i < len(ls); i += 2 {
		tok, err := strconv.ParseUint(strings.TrimPrefix(ls[i], "begin "), 10, 64)
		if err != nil || !strings.HasPrefix(ls[i], "begin ") || ls[i+1] != "end "+strconv.FormatUint(tok, 10) {
			t.Fatalf("marks %d and %d are %q, %q: not one whole interval (overlap?)\n%s", i, i+1, ls[i], ls[i+1], b)
		}
		if tok <= last {
			t.Fatalf("token %d after %d: tokens do not strictly increase\n%s", tok, last, b)
		}
		last = tok
	}
}

// An operator closes the holder's session: CMD gets SIGTERM well within the
// kill grace, and raftlock exits 4.
func TestBinaryLockLostTerminatesCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	const grace = 5 * time.Second
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "--kill-grace", grace.String(), "victim", "--",
		"sh", "-c", `trap 'echo got-term; exit 0' TERM; echo started; while true; do sleep 0.1; done`)
	p.expectLine(t, "started", 10*time.Second)

	l := r.lock("victim")
	if l.Holder == nil {
		t.Fatal("CMD runs but the lock has no holder")
	}
	deleted := time.Now()
	r.do("DELETE", api.SessionPath(l.Holder.Session), "", nil)
	term := p.expectLine(t, "got-term", grace)
	t.Logf("FIGURE: DELETE of the holder's session to CMD's SIGTERM trap: %v (session TTL 1s, kill grace %v)", term.at.Sub(deleted).Round(time.Millisecond), grace)

	if code := p.wait(t, 10*time.Second); code != exitLost {
		t.Errorf("exit %d, want %d (lock lost); stderr:\n%s", code, exitLost, p.stderr)
	}
	want := `raftlock: lock victim lost (`
	if !strings.Contains(p.stderr.String(), want) || !strings.Contains(p.stderr.String(), "sent SIGTERM to sh") {
		t.Errorf("stderr lacks %q and the SIGTERM:\n%s", want, p.stderr)
	}
	if strings.Contains(p.stderr.String(), "SIGKILL to process group") {
		t.Errorf("CMD needed SIGKILL although it exits on SIGTERM:\n%s", p.stderr)
	}
}

// A CMD that ignores SIGTERM gets SIGKILL after the kill grace.
func TestBinaryLockLostKillsStubbornCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "--kill-grace", "300ms", "stubborn", "--",
		"sh", "-c", `trap 'echo got-term' TERM; echo started; while true; do sleep 0.1; done`)
	p.expectLine(t, "started", 10*time.Second)
	r.do("DELETE", api.SessionPath(r.lock("stubborn").Holder.Session), "", nil)
	p.expectLine(t, "got-term", 5*time.Second)
	if code := p.wait(t, 10*time.Second); code != exitLost {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitLost, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "sent SIGKILL to process group") {
		t.Errorf("no SIGKILL reported:\n%s", p.stderr)
	}
}

// --try on a held lock exits 3 without running CMD; CMD's exit code is
// passed through.
func TestBinaryTryHeldAndExitCode(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	holder := r.session("10s", "someone-else")
	r.acquire("busy", holder)

	p := startBinary(t, "--endpoints", s.URL, "lock", "--try", "--ttl", "1s", "busy", "--", "touch", marker)
	if code := p.wait(t, 10*time.Second); code != exitHeld {
		t.Errorf("--try on a held lock: exit %d, want %d; stderr:\n%s", code, exitHeld, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "held by session "+holder.String()) {
		t.Errorf("stderr does not name the holder:\n%s", p.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("CMD ran although the lock is held")
	}

	for _, c := range []struct {
		script string
		code   int
	}{{"exit 7", 7}, {"exit 0", 0}, {"kill -KILL $$", 128 + int(syscall.SIGKILL)}} {
		p = startBinary(t, "--endpoints", s.URL, "lock", "--try", "--ttl", "1s", "free", "--", "sh", "-c", c.script)
		if code := p.wait(t, 10*time.Second); code != c.code {
			t.Errorf("sh -c %q: exit %d, want %d; stderr:\n%s", c.script, code, c.code, p.stderr)
		}
	}
	if l := r.lock("free"); l.Holder != nil {
		t.Errorf("lock still held after the runs: %+v", l.Holder)
	}
}

// SIGTERM to raftlock goes to CMD; raftlock exits with CMD's code and
// releases the lock after CMD exits.
func TestBinarySignalIsPassedToCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "sig", "--",
		"sh", "-c", `trap 'echo got-term; exit 5' TERM; echo started; while true; do sleep 0.1; done`)
	p.expectLine(t, "started", 10*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.expectLine(t, "got-term", 5*time.Second)
	if code := p.wait(t, 10*time.Second); code != 5 {
		t.Errorf("exit %d, want CMD's 5; stderr:\n%s", code, p.stderr)
	}
	if l := r.lock("sig"); l.Holder != nil {
		t.Errorf("lock still held after raftlock exited: %+v", l.Holder)
	}
	var rest bytes.Buffer
	for l := range p.lineC {
		io.WriteString(&rest, l.text)
	}
	if rest.Len() != 0 {
		t.Errorf("unexpected output %q", rest.String())
	}
}

// If raftlock dies without cleaning up (SIGKILL), CMD gets SIGTERM (from
// its supervisor, which saw raftlock go): CMD does not run on unprotected.
// (e2e's TestSupervisorEndsCmdWhenRaftlockIsKilled covers CMD's
// descendants and the SIGKILL.)
func TestBinaryKilledRaftlockTerminatesCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "orphan", "--",
		"sh", "-c", `trap 'echo got-term; exit 0' TERM; echo "$$"; while true; do sleep 0.1; done`)
	var first line
	select {
	case first = <-p.lineC:
	case <-time.After(10 * time.Second):
		t.Fatalf("CMD did not start; stderr:\n%s", p.stderr)
	}
	pid, err := strconv.Atoi(first.text)
	if err != nil {
		t.Fatalf("first line %q is not CMD's PID", first.text)
	}
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) }) // should the test fail
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.expectLine(t, "got-term", 5*time.Second)
	if code := p.wait(t, 10*time.Second); code != -1 {
		t.Errorf("raftlock exit %d, want -1 (killed)", code)
	}
}

// SIGINT while raftlock waits for the lock abandons the wait: exit 130, CMD
// never runs, and raftlock leaves the queue.
func TestBinarySignalWhileWaiting(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	holder := r.session("10s", "holder")
	r.acquire("queue", holder)
	p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "1s", "queue", "--", "echo", "ran")
	if _, ok := await.Within(10*time.Second, func() bool { return len(r.lock("queue").Waiters) > 0 }); !ok {
		t.Fatalf("raftlock never queued; stderr:\n%s", p.stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 128+int(syscall.SIGINT) {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, 128+int(syscall.SIGINT), p.stderr)
	}
	if l, ok := <-p.lineC; ok {
		t.Errorf("CMD ran: %q", l.text)
	}
	if l := r.lock("queue"); l.Holder == nil || l.Holder.Session != holder || len(l.Waiters) != 0 {
		t.Errorf("after SIGINT: %+v, want the holder alone", l)
	}
}
