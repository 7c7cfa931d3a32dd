package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

func TestUsageAndExitCodes(t *testing.T) {
	none := map[string]string{}
	for _, c := range []struct {
		args     []string
		code     int
		stdout   string // substring of stdout
		stderr   string // substring of stderr
		noStdout bool
	}{
		{args: nil, code: exitUsage, stderr: "Usage: raftlock", noStdout: true},
		{args: []string{"--help"}, code: exitOK, stdout: "Commands:"},
		{args: []string{"-h"}, code: exitOK, stdout: "Examples:"},
		{args: []string{"help"}, code: exitOK, stdout: "lock-info"},
		{args: []string{"help", "lock"}, code: exitOK, stdout: "Usage: raftlock lock [flags] NAME -- CMD"},
		{args: []string{"frobnicate"}, code: exitUsage, stderr: `unknown command "frobnicate"`, noStdout: true},
		{args: []string{"--bogus", "status"}, code: exitUsage, stderr: "unknown flag: --bogus", noStdout: true},
		{args: []string{"locks", "--bogus"}, code: exitUsage, stderr: "Usage: raftlock locks", noStdout: true},
		{args: []string{"locks", "extra"}, code: exitUsage, stderr: "unexpected arguments", noStdout: true},
		{args: []string{"locks", "--prefix", "a b"}, code: exitUsage, stderr: "prefix", noStdout: true},
		{args: []string{"status", "--output", "yaml"}, code: exitUsage, stderr: `--output "yaml"`, noStdout: true},
		{args: []string{"lock-info"}, code: exitUsage, stderr: "exactly one lock NAME", noStdout: true},
		{args: []string{"lock-info", "a", "b"}, code: exitUsage, stderr: "exactly one lock NAME", noStdout: true},
		{args: []string{"lock-info", "no spaces"}, code: exitUsage, stderr: "only ASCII letters", noStdout: true},
		{args: []string{"lock"}, code: exitUsage, stderr: "missing lock NAME", noStdout: true},
		{args: []string{"lock", "x"}, code: exitUsage, stderr: "missing CMD", noStdout: true},
		{args: []string{"lock", "x", "--"}, code: exitUsage, stderr: "missing CMD", noStdout: true},
		{args: []string{"lock", "--try", "--wait", "1s", "x", "--", "true"}, code: exitUsage, stderr: "exclude each other", noStdout: true},
		{args: []string{"lock", "--ttl", "0s", "x", "--", "true"}, code: exitUsage, stderr: "--ttl", noStdout: true},
		{args: []string{"lock", "--kill-grace", "-1s", "x", "--", "true"}, code: exitUsage, stderr: "--kill-grace", noStdout: true},
		{args: []string{"lock", "x", "--wait", "soon", "--", "true"}, code: exitUsage, stderr: `invalid argument "soon"`, noStdout: true},
		{args: []string{"lock", "--shared", "-n", "2", "x", "--", "true"}, code: exitUsage, stderr: "--shared and -n exclude each other", noStdout: true},
		{args: []string{"lock", "-n", "2", "x", "--shared", "--", "true"}, code: exitUsage, stderr: "--shared and -n exclude each other", noStdout: true},
		{args: []string{"lock", "-n", "0", "x", "--", "true"}, code: exitUsage, stderr: "-n 0: a semaphore has 1 to 65536 permits", noStdout: true},
		{args: []string{"lock", "--limit", "70000", "x", "--", "true"}, code: exitUsage, stderr: "-n 70000", noStdout: true},
		{args: []string{"semaphore-info"}, code: exitUsage, stderr: "exactly one lock NAME", noStdout: true},
		{args: []string{"semaphores", "extra"}, code: exitUsage, stderr: "unexpected arguments", noStdout: true},
		{args: []string{"--endpoints", "localhost:7070", "status"}, code: exitUsage, stderr: "is not a URL", noStdout: true},
		{args: []string{"status", "--timeout", "0s"}, code: exitUsage, stderr: "--timeout", noStdout: true},
	} {
		r := runCLI(t, none, c.args...)
		if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || !strings.Contains(r.stderr, c.stderr) || (c.noStdout && r.stdout != "") {
			t.Errorf("raftlock %q: exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s", c.args, r.code, c.code, c.stdout, r.stdout, c.stderr, r.stderr)
		}
	}
}

// Every command has --help on stdout, with its synopsis, flags, and an example.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	for _, c := range commands() {
		r := runCLI(t, nil, c.name, "--help")
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("%s --help: exit %d, stderr %q", c.name, r.code, r.stderr)
		}
		for _, want := range []string{"Usage: raftlock " + c.name, "Example:", "raftlock " + c.name + " ", "-endpoints", "-timeout"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s --help lacks %q:\n%s", c.name, want, r.stdout)
			}
		}
	}
}

func TestParseLock(t *testing.T) {
	e := &env{getenv: func(string) string { return "" }}
	for _, c := range []struct {
		args []string
		want lockOptions
	}{
		{[]string{"job", "--", "sh", "-c", "x"}, lockOptions{name: "job", argv: []string{"sh", "-c", "x"}, ttl: 10 * time.Second, grace: 5 * time.Second}},
		{[]string{"--ttl", "1s", "job", "--try", "--owner", "me", "--", "ls", "-l", "--", "x"},
			lockOptions{name: "job", argv: []string{"ls", "-l", "--", "x"}, ttl: time.Second, owner: "me", try: true, grace: 5 * time.Second}},
		{[]string{"job", "--wait", "30s", "--kill-grace", "0s", "ls", "-l"}, // CMD without --: from the first non-flag
			lockOptions{name: "job", argv: []string{"ls", "-l"}, ttl: 10 * time.Second, wait: 30 * time.Second}},
		{[]string{"--", "-dash-name", "--", "true"}, lockOptions{name: "-dash-name", argv: []string{"true"}, ttl: 10 * time.Second, grace: 5 * time.Second}},
		{[]string{"-n", "3", "backups", "--", "./backup.sh"}, lockOptions{name: "backups", argv: []string{"./backup.sh"}, ttl: 10 * time.Second, grace: 5 * time.Second, limit: 3}},
		{[]string{"cfg", "--shared", "--", "cat"}, lockOptions{name: "cfg", argv: []string{"cat"}, ttl: 10 * time.Second, grace: 5 * time.Second, shared: true}},
	} {
		_, o, err := parseLock(e, c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if c.want.owner == "" {
			host, _ := os.Hostname()
			c.want.owner = host + ":" + strconv.Itoa(os.Getpid())
		}
		if !reflect.DeepEqual(*o, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.args, *o, c.want)
		}
	}
}

func TestEndpoints(t *testing.T) {
	for _, c := range []struct {
		flag, env string
		want      []string
	}{
		{"", "", []string{"http://127.0.0.1:7070"}},
		{"", "http://a:1, http://b:2/", []string{"http://a:1", "http://b:2"}},
		{"https://c:3", "http://a:1", []string{"https://c:3"}},
	} {
		e := &env{endpoints: c.flag, getenv: func(k string) string {
			if k == "RAFTLOCK_ENDPOINTS" {
				return c.env
			}
			return ""
		}}
		got, err := e.endpointList()
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("flag %q env %q: %q %v, want %q", c.flag, c.env, got, err, c.want)
		}
	}
	e := &env{getenv: func(string) string { return "ftp://x" }}
	if _, err := e.endpointList(); err == nil || !strings.Contains(err.Error(), "RAFTLOCK_ENDPOINTS") {
		t.Errorf("bad env endpoint: %v", err)
	}
}

// A flag before or after the command, or RAFTLOCK_ENDPOINTS, all reach the server.
func TestGlobalFlagsAndEnvReachTheServer(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	for _, c := range []struct {
		env  map[string]string
		args []string
	}{
		{nil, []string{"--endpoints", s.URL, "status"}},
		{nil, []string{"status", "--endpoints", s.URL}},
		{map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}, []string{"status"}},
		{map[string]string{"RAFTLOCK_ENDPOINTS": "http://127.0.0.1:1"}, []string{"--endpoints", s.URL, "status"}},
	} {
		if r := runCLI(t, c.env, c.args...); r.code != exitOK || !strings.Contains(r.stdout, s.URL) {
			t.Errorf("env %v args %q: exit %d\n%s%s", c.env, c.args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestUnreachableIsAnError(t *testing.T) {
	// Port 1 on the loopback: nobody listens there.
	for _, args := range [][]string{{"status"}, {"locks"}, {"lock-info", "x"}, {"lock", "x", "--", "true"}} {
		r := runCLI(t, nil, append([]string{"--endpoints", "http://127.0.0.1:1", "--timeout", "2s"}, args...)...)
		if r.code != exitError || !strings.HasPrefix(r.stderr, "raftlock: ") || r.stdout != "" {
			t.Errorf("%q against nothing: exit %d, stdout %q, stderr %q; want exit 1 and a message", args, r.code, r.stdout, r.stderr)
		}
	}
}

// lines returns the non-empty lines of s, each split into its columns.
func lines(s string) [][]string {
	var out [][]string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.Fields(l))
		}
	}
	return out
}

// checkAligned fails unless every line of the table starts its columns at
// the header's column offsets.
func checkAligned(t *testing.T, table string) {
	t.Helper()
	ls := strings.Split(strings.TrimRight(table, "\n"), "\n")
	var starts []int
	for i, c := range ls[0] {
		if c != ' ' && (i == 0 || ls[0][i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	for _, l := range ls[1:] {
		for _, st := range starts {
			if st >= len(l) || l[st] == ' ' || (st > 0 && l[st-1] != ' ') {
				t.Errorf("column at %d not aligned in %q\n%s", st, l, table)
			}
		}
	}
}

func TestLocksLockInfoStatusOutput(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}

	// No locks yet.
	if got := runCLI(t, env, "locks"); got.code != 0 || !strings.Contains(got.stdout, "no locks") {
		t.Fatalf("locks on an empty server: %+v", got)
	}
	if got := runCLI(t, env, "locks", "-o", "json"); got.code != 0 || strings.TrimSpace(got.stdout) != "{\n  \"locks\": []\n}" {
		t.Fatalf("locks json on an empty server: %+v", got)
	}

	a := r.session("10s", "owner-a")
	b := r.session("10s", "owner-b-with-a-long-name")
	ga := r.acquire("jobs/nightly", a)
	gb := r.acquire("x", b)
	// b waits for jobs/nightly in the background; the test sees it queued
	// through lock-info before going on.
	waitErr := make(chan error, 1)
	go func() {
		req := `{"session":"` + b.String() + `","wait":"20s"}`
		resp, err := r.hc.Post(s.URL+api.LockPath("jobs/nightly")+"/acquire", "application/json", strings.NewReader(req))
		if err == nil {
			resp.Body.Close()
		}
		waitErr <- err
	}()
	await.True(t, 10*time.Second, "the waiter queued", func() bool { return len(r.lock("jobs/nightly").Waiters) > 0 })

	// locks, text.
	got := runCLI(t, env, "locks")
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("locks: %+v", got)
	}
	rows := lines(got.stdout)
	if len(rows) != 3 || strings.Join(rows[0], " ") != "NAME SESSION OWNER TOKEN SINCE WAITERS" {
		t.Fatalf("locks table:\n%s", got.stdout)
	}
	if rows[1][0] != "jobs/nightly" || rows[1][1] != a.String() || rows[1][2] != "owner-a" || rows[1][3] != strconv.FormatUint(ga.Token, 10) || rows[1][len(rows[1])-1] != "1" {
		t.Errorf("row of jobs/nightly: %q", rows[1])
	}
	if rows[2][0] != "x" || rows[2][1] != b.String() || rows[2][2] != "owner-b-with-a-long-name" || rows[2][3] != strconv.FormatUint(gb.Token, 10) || rows[2][len(rows[2])-1] != "0" {
		t.Errorf("row of x: %q", rows[2])
	}
	checkAligned(t, got.stdout)

	// --prefix, after the command.
	got = runCLI(t, env, "locks", "--prefix", "jobs/")
	if rows := lines(got.stdout); got.code != 0 || len(rows) != 2 || rows[1][0] != "jobs/nightly" {
		t.Errorf("locks --prefix jobs/:\n%s%s", got.stdout, got.stderr)
	}

	// locks, JSON: the API's type, as the server has it.
	got = runCLI(t, env, "locks", "--output", "json")
	var list api.LockList
	if err := json.Unmarshal([]byte(got.stdout), &list); err != nil || got.code != 0 {
		t.Fatalf("locks json: %v\n%s", err, got.stdout)
	}
	if len(list.Locks) != 2 || list.Locks[0].Name != "jobs/nightly" || list.Locks[0].Holder.Token != ga.Token ||
		len(list.Locks[0].Waiters) != 1 || list.Locks[0].Waiters[0].Session != b || list.Locks[1].Holder.Session != b {
		t.Errorf("locks json: %+v", list)
	}

	// lock-info, text and JSON.
	got = runCLI(t, env, "lock-info", "jobs/nightly")
	want := []string{"NAME  ", "jobs/nightly", "HOLDER", "session " + a.String() + ` (owner "owner-a")`,
		"TOKEN", strconv.FormatUint(ga.Token, 10), "SINCE", "WAITERS", "SESSION", "owner-b-with-a-long-name"}
	for _, w := range want {
		if !strings.Contains(got.stdout, w) {
			t.Errorf("lock-info lacks %q:\n%s", w, got.stdout)
		}
	}
	var li api.Lock
	got = runCLI(t, env, "lock-info", "--output", "json", "jobs/nightly")
	if err := json.Unmarshal([]byte(got.stdout), &li); err != nil || li.Holder == nil || li.Holder.Session != a || len(li.Waiters) != 1 {
		t.Errorf("lock-info json: %v %+v\n%s", err, li, got.stdout)
	}
	got = runCLI(t, env, "lock-info", "free-lock", "-o", "json")
	if got.code != 0 || !strings.Contains(got.stdout, `"holder": null`) || !strings.Contains(got.stdout, `"waiters": []`) {
		t.Errorf("lock-info json of a free lock:\n%s%s", got.stdout, got.stderr)
	}
	got = runCLI(t, env, "lock-info", "free-lock")
	if got.code != 0 || !strings.Contains(got.stdout, "none (free)") {
		t.Errorf("lock-info of a free lock:\n%s%s", got.stdout, got.stderr)
	}

	// status, text and JSON.
	got = runCLI(t, env, "status")
	for _, w := range []string{"NODE", "LEADER   1 (" + s.URL + ")", "TERM", "COMMIT", "APPLIED", "READY    true", "MEMBER", "leader (answered)"} {
		if !strings.Contains(got.stdout, w) {
			t.Errorf("status lacks %q:\n%s", w, got.stdout)
		}
	}
	var st api.Status
	got = runCLI(t, env, "status", "--output", "json")
	if err := json.Unmarshal([]byte(got.stdout), &st); err != nil || st.Leader != 1 || st.LeaderURL != s.URL || !st.Ready || len(st.Members) != 1 || st.Applied == 0 {
		t.Errorf("status json: %v %+v", err, st)
	}

	// Free the waiter so its request ends before the server stops.
	r.do("DELETE", api.SessionPath(b), "", nil)
	if err := <-waitErr; err != nil {
		t.Errorf("waiter: %v", err)
	}
}

// The lock command, in process: environment, exit code, release, --try, --wait.
func TestLockInProcess(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	dir := t.TempDir()

	got := runCLI(t, env, "lock", "--ttl", "1s", "--owner", "tester", "job", "--", "sh", "-c", `echo "$RAFTLOCK_NAME $RAFTLOCK_TOKEN $RAFTLOCK_SESSION"`)
	f := strings.Fields(got.stdout)
	if got.code != 0 || len(f) != 3 || f[0] != "job" || f[1] == "0" || f[2] == "" {
		t.Fatalf("lock -- echo: %+v", got)
	}
	if l := r.lock("job"); l.Holder != nil {
		t.Errorf("lock still held after CMD exited: %+v", l.Holder)
	}
	if got := runCLI(t, env, "lock", "--ttl", "1s", "job", "--", "sh", "-c", "exit 7"); got.code != 7 {
		t.Errorf("exit 7 passed through as %d: %s", got.code, got.stderr)
	}
	if got := runCLI(t, env, "lock", "--ttl", "1s", "job", "--", "/no/such/cmd"); got.code != exitNotFound {
		t.Errorf("missing CMD: exit %d, want %d: %s", got.code, exitNotFound, got.stderr)
	}
	if got := runCLI(t, env, "lock", "--ttl", "1s", "job", "--", dir); got.code != exitCannotRun {
		t.Errorf("CMD a directory: exit %d, want %d: %s", got.code, exitCannotRun, got.stderr)
	}

	holder := r.session("10s", "other-host")
	g := r.acquire("job", holder)
	marker := filepath.Join(dir, "ran")
	for _, args := range [][]string{
		{"lock", "--ttl", "1s", "--try", "job", "--", "touch", marker},
		{"lock", "--ttl", "1s", "--wait", "300ms", "job", "--", "touch", marker},
	} {
		got := runCLI(t, env, args...)
		if got.code != exitHeld || !strings.Contains(got.stderr, "held by session "+holder.String()) ||
			!strings.Contains(got.stderr, `"other-host"`) || !strings.Contains(got.stderr, "token "+strconv.FormatUint(g.Token, 10)) {
			t.Errorf("%q on a held lock: exit %d, want %d; stderr %q", args, got.code, exitHeld, got.stderr)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%q ran CMD although the lock is held", args)
		}
	}
	// A wait is said once, naming the holder; --quiet says nothing.
	got = runCLI(t, env, "lock", "--ttl", "1s", "--wait", "200ms", "job", "--", "touch", marker)
	if n := strings.Count(got.stderr, "waiting at most 200ms"); n != 1 || !strings.Contains(got.stderr, "held by session "+holder.String()+` (owner "other-host"`) {
		t.Errorf("the wait was not said once with the holder: %q", got.stderr)
	}
	if got := runCLI(t, env, "lock", "--ttl", "1s", "--wait", "200ms", "--quiet", "job", "--", "touch", marker); strings.Contains(got.stderr, "waiting") || got.code != exitHeld {
		t.Errorf("--quiet: exit %d, stderr %q", got.code, got.stderr)
	}
	if got := runCLI(t, env, "lock", "--ttl", "1s", "--try", "job", "--", "touch", marker); strings.Contains(got.stderr, "waiting") {
		t.Errorf("--try said it waits: %q", got.stderr)
	}
	// No attempt left a session queued or holding.
	if l := r.lock("job"); l.Holder == nil || l.Holder.Session != holder || len(l.Waiters) != 0 {
		t.Errorf("after --try and --wait: %+v", l)
	}
	r.do("DELETE", api.SessionPath(holder), "", nil)
}
