package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// holdScript is a CMD that says "in $RAFTLOCK_TOKEN" once it holds, then
// holds until a line is written to the FIFO named by its first argument.
const holdScript = `echo "in $RAFTLOCK_TOKEN"; read x < "$0"`

// newFIFO returns the path of a new FIFO in dir.
func newFIFO(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// letGo ends a holdScript CMD: it writes a line to its FIFO (the open
// waits for the CMD to open its end).
func letGo(t *testing.T, fifo string) {
	t.Helper()
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// expectIn waits for a holdScript's "in TOKEN" line and returns the token.
func (p *proc) expectIn(t *testing.T, within time.Duration) uint64 {
	t.Helper()
	select {
	case l, ok := <-p.lineC:
		tok, err := strconv.ParseUint(strings.TrimPrefix(l.text, "in "), 10, 64)
		if !ok || !strings.HasPrefix(l.text, "in ") || err != nil || tok == 0 {
			t.Fatalf("stdout line %q (open %v), want \"in TOKEN\"; stderr:\n%s", l.text, ok, p.stderr)
		}
		return tok
	case <-time.After(within):
		t.Fatalf("CMD did not start within %v; stderr:\n%s", within, p.stderr)
	}
	return 0
}

func (r *rest) semaphore(name string) api.Semaphore {
	var s api.Semaphore
	r.do("GET", "/v1/semaphores/"+name, "", &s)
	return s
}

// Two "raftlock lock -n 2" runs hold a permit each at once; a third waits,
// says so, and runs when one of them is done, with a larger token.
func TestBinarySemaphoreTwoHoldThirdWaits(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	dir := t.TempDir()
	fifos := []string{newFIFO(t, dir, "a"), newFIFO(t, dir, "b"), newFIFO(t, dir, "c")}
	start := func(fifo string) *proc {
		return startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "2s", "-n", "2", "pool", "--", "sh", "-c", holdScript, fifo)
	}
	a := start(fifos[0])
	ta := a.expectIn(t, 10*time.Second)
	b := start(fifos[1])
	tb := b.expectIn(t, 10*time.Second)
	if sem := r.semaphore("pool"); sem.Limit != 2 || len(sem.Holders) != 2 {
		t.Fatalf("two runs hold: %+v", sem)
	}
	c := start(fifos[2])
	await.True(t, 10*time.Second, "the third run queued", func() bool { return len(r.semaphore("pool").Waiters) == 1 })
	await.True(t, 10*time.Second, "the third run says it waits", func() bool {
		return strings.Contains(c.stderr.String(), "semaphore pool is full (2 of 2 permits held, by sessions ")
	})
	if !strings.Contains(c.stderr.String(), "waiting until a permit is free") {
		t.Errorf("stderr of the waiting run: %q", c.stderr)
	}

	letGo(t, fifos[0])
	if code := a.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("first run: exit %d; stderr:\n%s", code, a.stderr)
	}
	if tc := c.expectIn(t, 10*time.Second); tc <= max(ta, tb) {
		t.Errorf("the third permit's token %d is not above %d and %d", tc, ta, tb)
	}
	for i, p := range []*proc{b, c} {
		letGo(t, fifos[i+1])
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("run %d: exit %d; stderr:\n%s", i+2, code, p.stderr)
		}
	}
	if sem := r.semaphore("pool"); len(sem.Holders) != 0 || len(sem.Waiters) != 0 {
		t.Errorf("after the runs: %+v", sem)
	}
}

// Two "raftlock lock --shared" runs hold the lock together; an exclusive
// --try is refused (exit 3) while they do, and succeeds after.
func TestBinarySharedLock(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	dir := t.TempDir()
	fifos := []string{newFIFO(t, dir, "a"), newFIFO(t, dir, "b")}
	var ps []*proc
	for _, f := range fifos {
		p := startBinary(t, "--endpoints", s.URL, "lock", "--ttl", "2s", "--shared", "cfg", "--", "sh", "-c", holdScript, f)
		p.expectIn(t, 10*time.Second)
		ps = append(ps, p)
	}
	l := r.lock("cfg")
	if l.Holder != nil || len(l.Holders) != 2 || l.Holders[0].Mode != api.ModeShared {
		t.Fatalf("two --shared runs: %+v", l)
	}
	got := runCLI(t, env, "lock", "--ttl", "1s", "--try", "cfg", "--", "true")
	if got.code != exitHeld || !strings.Contains(got.stderr, "lock cfg is held shared by 2 sessions; CMD not run") {
		t.Errorf("exclusive --try while shared: exit %d, stderr %q", got.code, got.stderr)
	}
	// lock-info lists the shared holders; lock-check knows their tokens.
	got = runCLI(t, env, "lock-info", "cfg")
	if !strings.Contains(got.stdout, "shared by 2 sessions") || !strings.Contains(got.stdout, strconv.FormatUint(l.Holders[1].Token, 10)) {
		t.Errorf("lock-info of a shared lock:\n%s", got.stdout)
	}
	got = runCLI(t, env, "lock-check", "cfg", strconv.FormatUint(l.Holders[1].Token, 10))
	if got.code != exitOK || !strings.Contains(got.stdout, "(session "+l.Holders[1].Session.String()+")") {
		t.Errorf("lock-check of a shared token: exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	if got := runCLI(t, env, "locks"); !strings.Contains(got.stdout, "shared:2") {
		t.Errorf("locks of a shared lock:\n%s", got.stdout)
	}
	for i, p := range ps {
		letGo(t, fifos[i])
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Errorf("shared run %d: exit %d; stderr:\n%s", i, code, p.stderr)
		}
	}
	if got := runCLI(t, env, "lock", "--ttl", "1s", "--try", "cfg", "--", "true"); got.code != exitOK {
		t.Errorf("exclusive --try after the shared runs: exit %d, stderr %q", got.code, got.stderr)
	}
}

// In process: --try on a full semaphore exits 3 naming it; another -n
// fails (exit 1, limit_mismatch); a --shared --try behind a waiting
// writer exits 3; losing the permit while CMD runs exits 4.
func TestLockModesInProcess(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	holder := r.session("10s", "holder")
	r.do("POST", "/v1/semaphores/one/acquire", fmt.Sprintf(`{"session":"%d","limit":1}`, holder), nil)

	got := runCLI(t, env, "lock", "--ttl", "1s", "-n", "1", "--try", "one", "--", "true")
	if got.code != exitHeld || !strings.Contains(got.stderr, "semaphore one is full (1 of 1 permits held, by sessions "+holder.String()+"); CMD not run") {
		t.Errorf("--try on a full semaphore: exit %d, stderr %q", got.code, got.stderr)
	}
	got = runCLI(t, env, "lock", "--ttl", "1s", "-n", "1", "--wait", "200ms", "--quiet", "one", "--", "true")
	if got.code != exitHeld || !strings.Contains(got.stderr, "waited 200ms: semaphore one is full") {
		t.Errorf("--wait on a full semaphore: exit %d, stderr %q", got.code, got.stderr)
	}
	got = runCLI(t, env, "lock", "--ttl", "1s", "-n", "3", "one", "--", "true")
	if got.code != exitError || !strings.Contains(got.stderr, "limit_mismatch") {
		t.Errorf("another limit: exit %d, stderr %q", got.code, got.stderr)
	}
	if sem := r.semaphore("one"); len(sem.Waiters) != 0 || len(sem.Holders) != 1 {
		t.Errorf("the refused runs left %+v", sem)
	}

	// A writer waits behind a reader: a --shared --try is refused.
	reader, writer := r.session("10s", "reader"), r.session("10s", "writer")
	r.do("POST", api.LockPath("doc")+"/acquire", fmt.Sprintf(`{"session":"%d","mode":"shared"}`, reader), nil)
	waitErr := make(chan error, 1)
	go func() {
		resp, err := r.hc.Post(s.URL+api.LockPath("doc")+"/acquire", "application/json",
			strings.NewReader(fmt.Sprintf(`{"session":"%d","wait":"20s"}`, writer)))
		if err == nil {
			resp.Body.Close()
		}
		waitErr <- err
	}()
	await.True(t, 10*time.Second, "the writer queued", func() bool { return len(r.lock("doc").Waiters) == 1 })
	got = runCLI(t, env, "lock", "--ttl", "1s", "--shared", "--try", "doc", "--", "true")
	if got.code != exitHeld || !strings.Contains(got.stderr, "held shared by 1 sessions, and an exclusive request waits ahead") {
		t.Errorf("--shared --try behind a writer: exit %d, stderr %q", got.code, got.stderr)
	}
	r.do("DELETE", api.SessionPath(writer), "", nil)
	if err := <-waitErr; err != nil {
		t.Error(err)
	}

	// The permit lost while CMD runs: exit 4.
	r.do("DELETE", api.SessionPath(holder), "", nil)
	done := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- runCLIContext(ctx, env, "lock", "--ttl", "1s", "--kill-grace", "2s", "-n", "1", "one", "--", "sleep", "30")
	}()
	var sem api.Semaphore
	await.True(t, 10*time.Second, "the run holds the permit", func() bool { sem = r.semaphore("one"); return len(sem.Holders) == 1 })
	r.do("DELETE", api.SessionPath(sem.Holders[0].Session), "", nil)
	select {
	case got = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("raftlock did not end after its permit was lost")
	}
	if got.code != exitLost || !strings.Contains(got.stderr, "raftlock: semaphore one lost (") {
		t.Errorf("permit lost: exit %d, stderr %q", got.code, got.stderr)
	}
}

// runCLIContext is runCLI with a context, for runs in another goroutine.
func runCLIContext(ctx context.Context, env map[string]string, args ...string) result {
	var out, errb strings.Builder
	code := run(ctx, args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

// semaphores and semaphore-info, text and JSON.
func TestSemaphoresOutput(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	if got := runCLI(t, env, "semaphores"); got.code != 0 || !strings.Contains(got.stdout, "no semaphores") {
		t.Fatalf("semaphores on an empty server: %+v", got)
	}
	a, b := r.session("10s", "owner-a"), r.session("10s", "owner-b")
	var pa api.Permit
	r.do("POST", "/v1/semaphores/jobs%2Fpool/acquire", fmt.Sprintf(`{"session":"%d","limit":2}`, a), &pa)
	r.do("POST", "/v1/semaphores/jobs%2Fpool/acquire", fmt.Sprintf(`{"session":"%d","limit":2}`, b), nil)
	r.do("POST", "/v1/semaphores/other/acquire", fmt.Sprintf(`{"session":"%d","limit":5}`, a), nil)

	got := runCLI(t, env, "semaphores", "--prefix", "jobs/")
	rows := lines(got.stdout)
	if got.code != 0 || len(rows) != 2 || strings.Join(rows[0], " ") != "NAME LIMIT HELD WAITERS" || strings.Join(rows[1], " ") != "jobs/pool 2 2 0" {
		t.Fatalf("semaphores --prefix jobs/:\n%s%s", got.stdout, got.stderr)
	}
	checkAligned(t, got.stdout)
	var list api.SemaphoreList
	got = runCLI(t, env, "semaphores", "-o", "json")
	if err := json.Unmarshal([]byte(got.stdout), &list); err != nil || len(list.Semaphores) != 2 || list.Semaphores[1].Limit != 5 {
		t.Fatalf("semaphores json: %v\n%s", err, got.stdout)
	}
	got = runCLI(t, env, "semaphore-info", "jobs/pool")
	for _, w := range []string{"LIMIT", "HELD", "owner-a", "owner-b", strconv.FormatUint(pa.Token, 10)} {
		if !strings.Contains(got.stdout, w) {
			t.Errorf("semaphore-info lacks %q:\n%s", w, got.stdout)
		}
	}
	var sem api.Semaphore
	got = runCLI(t, env, "semaphore-info", "-o", "json", "free")
	if err := json.Unmarshal([]byte(got.stdout), &sem); err != nil || sem.Limit != 0 || sem.Holders == nil || !strings.Contains(got.stdout, `"waiters": []`) {
		t.Errorf("semaphore-info json of a free semaphore: %v\n%s", err, got.stdout)
	}
}
