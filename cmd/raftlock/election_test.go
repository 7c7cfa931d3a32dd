package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// lineBuf collects what a command writes and hands out its complete lines
// as they come. It is safe for concurrent writes.
type lineBuf struct {
	mu   sync.Mutex
	all  bytes.Buffer
	part []byte
	C    chan string
}

func newLineBuf() *lineBuf { return &lineBuf{C: make(chan string, 10000)} }

func (b *lineBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all.Write(p)
	b.part = append(b.part, p...)
	for {
		i := bytes.IndexByte(b.part, '\n')
		if i < 0 {
			break
		}
		select {
		case b.C <- string(b.part[:i]):
		default:
			panic("lineBuf: too many unread lines")
		}
		b.part = b.part[i+1:]
	}
	return len(p), nil
}

func (b *lineBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all.String()
}

// next returns the next line, failing the test if none comes within d.
func (b *lineBuf) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l := <-b.C:
		return l
	case <-time.After(d):
		t.Fatalf("no line within %v; so far:\n%s", d, b)
	}
	return ""
}

// find returns the first line containing s, skipping others.
func (b *lineBuf) find(t *testing.T, s string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l := <-b.C:
			if strings.Contains(l, s) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line with %q within %v; so far:\n%s", s, d, b)
		}
	}
}

// bg is a CLI run in the test process, in the background.
type bg struct {
	cancel      context.CancelFunc
	out, errOut *lineBuf
	doneC       chan struct{}
	code        int
}

func startCLI(t *testing.T, env map[string]string, args ...string) *bg {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bg{cancel: cancel, out: newLineBuf(), errOut: newLineBuf(), doneC: make(chan struct{})}
	go func() {
		defer close(b.doneC)
		b.code = run(ctx, args, strings.NewReader(""), b.out, b.errOut, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.doneC:
		case <-time.After(30 * time.Second):
			t.Errorf("raftlock %q did not return after its ctx ended", args)
		}
	})
	return b
}

// wait waits for the run to end and returns its exit code.
func (b *bg) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-b.doneC:
		return b.code
	case <-time.After(d):
		t.Fatalf("still running after %v; stderr:\n%s", d, b.errOut)
	}
	return 0
}

func (r *rest) campaign(name string, id api.SessionID, value string) api.Leadership {
	var l api.Leadership
	r.do("POST", api.ElectionPath(name)+"/campaign", fmt.Sprintf(`{"session":"%d","value":%q}`, id, value), &l)
	return l
}

func (r *rest) election(name string) api.Election {
	var e api.Election
	r.do("GET", api.ElectionPath(name), "", &e)
	return e
}

// queue makes id a candidate of name in the background (a campaign that
// waits); it returns once the server lists it. The wait ends when the
// session is closed; the returned channel says how it ended.
func (r *rest) queue(t *testing.T, name string, id api.SessionID, value string) <-chan error {
	t.Helper()
	errC := make(chan error, 1)
	go func() {
		body := fmt.Sprintf(`{"session":"%d","value":%q,"wait":"20s"}`, id, value)
		resp, err := r.hc.Post(r.url+api.ElectionPath(name)+"/campaign", "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		errC <- err
	}()
	await.True(t, 10*time.Second, "candidate queued", func() bool {
		for _, c := range r.election(name).Candidates {
			if c.Session == id {
				return true
			}
		}
		return false
	})
	return errC
}

var leadingRE = regexp.MustCompile(`^leading (\S+) as (.+), term (\d+)$`)

// The elect command in process: the leading line, CMD's environment, its
// exit code passed through, resign afterwards, --wait → 3, 127.
func TestElectWithCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}

	// A long TTL: only a resign frees the election at once.
	got := runCLI(t, env, "elect", "--ttl", "30s", "jobs/e", "host-a", "--", "sh", "-c", `echo "$RAFTLOCK_NAME $RAFTLOCK_TERM $RAFTLOCK_VALUE"; exit 7`)
	ls := strings.Split(strings.TrimSpace(got.stdout), "\n")
	if got.code != 7 || len(ls) != 2 {
		t.Fatalf("elect -- sh: exit %d (want 7), stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	m := leadingRE.FindStringSubmatch(ls[0])
	if m == nil || m[1] != "jobs/e" || m[2] != "host-a" || m[3] == "0" {
		t.Fatalf("first line %q, want leading jobs/e as host-a, term N", ls[0])
	}
	if ls[1] != "jobs/e "+m[3]+" host-a" {
		t.Errorf("CMD saw %q, want %q", ls[1], "jobs/e "+m[3]+" host-a")
	}
	if el := r.election("jobs/e"); el.Leader != nil {
		t.Errorf("still led after CMD exited (no resign?): %+v", el.Leader)
	}

	if got := runCLI(t, env, "elect", "--ttl", "1s", "jobs/e", "host-a", "--", "/no/such/cmd"); got.code != exitNotFound {
		t.Errorf("missing CMD: exit %d, want %d: %s", got.code, exitNotFound, got.stderr)
	}

	// Another session leads: --wait runs out, exit 3, CMD does not run,
	// and the candidacy is withdrawn.
	holder := r.session("30s", "other-host")
	lead := r.campaign("jobs/e", holder, "the-leader")
	marker := filepath.Join(t.TempDir(), "ran")
	got = runCLI(t, env, "elect", "--ttl", "1s", "--wait", "300ms", "jobs/e", "host-b", "--", "touch", marker)
	if got.code != exitHeld || !strings.Contains(got.stderr, "led by session "+holder.String()) ||
		!strings.Contains(got.stderr, fmt.Sprintf("term %d", lead.Term)) || got.stdout != "" {
		t.Errorf("elect --wait on a led election: exit %d (want %d), stdout %q, stderr %q", got.code, exitHeld, got.stdout, got.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("CMD ran although another session leads")
	}
	if el := r.election("jobs/e"); el.Leader == nil || el.Leader.Session != holder || len(el.Candidates) != 0 {
		t.Errorf("after --wait ran out: %+v", el)
	}
}

// elect without CMD leads until its ctx ends (as on SIGTERM), then resigns
// and exits 0; it exits 4 when the leadership is lost.
func TestElectWithoutCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}

	b := startCLI(t, env, "elect", "--ttl", "30s", "--owner", "me", "sched", "10.0.0.7:8080")
	m := leadingRE.FindStringSubmatch(b.out.next(t, 10*time.Second))
	if m == nil || m[1] != "sched" || m[2] != "10.0.0.7:8080" {
		t.Fatalf("stdout %q", b.out)
	}
	el := r.election("sched")
	if el.Leader == nil || el.Leader.Value != "10.0.0.7:8080" || el.Leader.Owner != "me" || strconv.FormatUint(el.Leader.Term, 10) != m[3] {
		t.Fatalf("election while elect leads: %+v (printed term %s)", el.Leader, m[3])
	}
	b.cancel()
	if code := b.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("exit %d after its ctx ended, want 0; stderr:\n%s", code, b.errOut)
	}
	if el := r.election("sched"); el.Leader != nil {
		t.Errorf("still led after elect stopped (TTL 30s, so it did not resign): %+v", el.Leader)
	}

	// An operator closes the leader's session: exit 4.
	b = startCLI(t, env, "elect", "--ttl", "1s", "sched", "host-x")
	b.out.next(t, 10*time.Second)
	r.do("DELETE", api.SessionPath(r.election("sched").Leader.Session), "", nil)
	if code := b.wait(t, 10*time.Second); code != exitLost || !strings.Contains(b.errOut.String(), "leadership of election sched lost") {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitLost, b.errOut)
	}

	// With CMD: CMD gets SIGTERM, exit 4 whatever CMD's code.
	b = startCLI(t, env, "elect", "--ttl", "1s", "sched", "host-y", "--",
		"sh", "-c", `trap 'echo got-term; exit 0' TERM; echo started; while true; do sleep 0.1; done`)
	b.out.next(t, 10*time.Second) // leading ...
	if l := b.out.next(t, 10*time.Second); l != "started" {
		t.Fatalf("CMD said %q", l)
	}
	r.do("DELETE", api.SessionPath(r.election("sched").Leader.Session), "", nil)
	if l := b.out.next(t, 10*time.Second); l != "got-term" {
		t.Fatalf("CMD said %q, want got-term", l)
	}
	if code := b.wait(t, 10*time.Second); code != exitLost || !strings.Contains(b.errOut.String(), "sent SIGTERM to sh") {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitLost, b.errOut)
	}
}

var obsLineRE = regexp.MustCompile(`^(\d+) (\S+) (.+) (\S+) (\S+)$`)

func TestObserveLines(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}

	b := startCLI(t, env, "observe", "web")
	first := obsLineRE.FindStringSubmatch(b.out.next(t, 10*time.Second))
	if first == nil || first[2] != "state" || first[3] != "-" || first[4] != "-" || first[5] != "-" {
		t.Fatalf("first line %q, want REVISION state - - -", b.out)
	}
	a := r.session("30s", "pod-a")
	lead := r.campaign("web", a, "pod a") // a space: quoted
	want := fmt.Sprintf(`%d elected "pod a" %d %s`, lead.Term, lead.Term, a)
	if l := b.out.next(t, 10*time.Second); l != want {
		t.Fatalf("line %q, want %q", l, want)
	}
	r.do("POST", api.ElectionPath("web")+"/proclaim", fmt.Sprintf(`{"session":"%d","term":%d,"value":"pod-a2"}`, a, lead.Term), nil)
	l := obsLineRE.FindStringSubmatch(b.out.next(t, 10*time.Second))
	if l == nil || l[2] != "proclaimed" || l[3] != "pod-a2" || l[4] != strconv.FormatUint(lead.Term, 10) || l[5] != a.String() {
		t.Fatalf("line after proclaim: %q", l)
	}
	r.do("POST", api.ElectionPath("web")+"/resign", fmt.Sprintf(`{"session":"%d","term":%d}`, a, lead.Term), nil)
	l2 := obsLineRE.FindStringSubmatch(b.out.next(t, 10*time.Second))
	if l2 == nil || (l2[2] != "resigned" && l2[2] != "no_leader") || l2[3] != "-" {
		t.Fatalf("line after resign: %q", l2)
	}
	if r1, _ := strconv.ParseUint(l[1], 10, 64); r1 <= lead.Term {
		t.Errorf("revision of proclaim %s not after the election's %d", l[1], lead.Term)
	}
	if r1, _ := strconv.ParseUint(l[1], 10, 64); mustUint(t, l2[1]) <= r1 {
		t.Errorf("revisions %s then %s do not increase", l[1], l2[1])
	}
	b.cancel()
	if code := b.wait(t, 10*time.Second); code != exitOK || b.errOut.String() != "" {
		t.Errorf("observe after its ctx ended: exit %d, stderr %q", code, b.errOut)
	}
}

func TestObserveJSON(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	a := r.session("30s", "pod-a")
	lead := r.campaign("web", a, "pod-a")

	b := startCLI(t, env, "observe", "--output", "json", "web")
	var evs []api.LeaderEvent
	next := func() api.LeaderEvent {
		t.Helper()
		line := b.out.next(t, 10*time.Second)
		var ev api.LeaderEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil || strings.Contains(line, "\n") {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, ev)
		return ev
	}
	if ev := next(); ev.Type != "state" || ev.Leader == nil || ev.Leader.Value != "pod-a" || ev.Leader.Term != lead.Term || ev.Leader.Session != a {
		t.Fatalf("first event %+v", ev)
	}
	bs := r.session("30s", "pod-b")
	errC := r.queue(t, "web", bs, "pod-b")
	r.do("DELETE", api.SessionPath(a), "", nil) // a resigns; b leads in the same entry
	ev := next()
	if ev.Type == "resigned" {
		ev = next()
	}
	if ev.Type != "elected" || ev.Leader == nil || ev.Leader.Value != "pod-b" || ev.Leader.Session != bs || ev.Revision != ev.Leader.Term || ev.Leader.Term <= lead.Term {
		t.Fatalf("event after a's session closed: %+v", ev)
	}
	if err := <-errC; err != nil {
		t.Fatal(err)
	}
	b.cancel()
	if code := b.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(b.out.String(), `"leader":{"session":"`+a.String()+`"`) {
		t.Errorf("not the API's JSON:\n%s", b.out)
	}
}

func TestElectionsAndElectionInfoOutput(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}

	if got := runCLI(t, env, "elections"); got.code != 0 || !strings.Contains(got.stdout, "no elections") {
		t.Fatalf("elections on an empty server: %+v", got)
	}
	if got := runCLI(t, env, "elections", "-o", "json"); got.code != 0 || strings.TrimSpace(got.stdout) != "{\n  \"elections\": []\n}" {
		t.Fatalf("elections json on an empty server: %+v", got)
	}
	a := r.session("30s", "owner-a")
	b := r.session("30s", "owner-b-with-a-long-name")
	la := r.campaign("jobs/compactor", a, "10.0.0.7:8080")
	lb := r.campaign("x", b, "host-b")
	errC := r.queue(t, "jobs/compactor", b, "host b")

	got := runCLI(t, env, "elections")
	rows := lines(got.stdout)
	if got.code != 0 || len(rows) != 3 || strings.Join(rows[0], " ") != "NAME LEADER TERM SESSION OWNER SINCE CANDIDATES" {
		t.Fatalf("elections table:\n%s%s", got.stdout, got.stderr)
	}
	if r1 := rows[1]; r1[0] != "jobs/compactor" || r1[1] != "10.0.0.7:8080" || r1[2] != strconv.FormatUint(la.Term, 10) || r1[3] != a.String() || r1[4] != "owner-a" || r1[len(r1)-1] != "1" {
		t.Errorf("row of jobs/compactor: %q", r1)
	}
	if r2 := rows[2]; r2[0] != "x" || r2[1] != "host-b" || r2[2] != strconv.FormatUint(lb.Term, 10) || r2[4] != "owner-b-with-a-long-name" || r2[len(r2)-1] != "0" {
		t.Errorf("row of x: %q", r2)
	}
	checkAligned(t, got.stdout)

	got = runCLI(t, env, "elections", "--prefix", "jobs/")
	if rows := lines(got.stdout); got.code != 0 || len(rows) != 2 || rows[1][0] != "jobs/compactor" {
		t.Errorf("elections --prefix jobs/:\n%s%s", got.stdout, got.stderr)
	}
	got = runCLI(t, env, "elections", "--output", "json")
	var list api.ElectionList
	if err := json.Unmarshal([]byte(got.stdout), &list); err != nil || got.code != 0 {
		t.Fatalf("elections json: %v\n%s", err, got.stdout)
	}
	if len(list.Elections) != 2 || list.Elections[0].Leader.Term != la.Term || len(list.Elections[0].Candidates) != 1 ||
		list.Elections[0].Candidates[0].Value != "host b" || list.Elections[1].Leader.Session != b {
		t.Errorf("elections json: %+v", list)
	}

	got = runCLI(t, env, "election-info", "jobs/compactor")
	for _, w := range []string{"NAME        jobs/compactor", `LEADER      "10.0.0.7:8080"`, "SESSION     " + a.String() + ` (owner "owner-a")`,
		"TERM        " + strconv.FormatUint(la.Term, 10), "SINCE", "CANDIDATES  1", `"host b"`, "owner-b-with-a-long-name"} {
		if !strings.Contains(got.stdout, w) {
			t.Errorf("election-info lacks %q:\n%s", w, got.stdout)
		}
	}
	var ei api.Election
	got = runCLI(t, env, "election-info", "-o", "json", "jobs/compactor")
	if err := json.Unmarshal([]byte(got.stdout), &ei); err != nil || ei.Leader == nil || ei.Leader.Session != a || len(ei.Candidates) != 1 || ei.Candidates[0].Session != b {
		t.Errorf("election-info json: %v %+v", err, ei)
	}
	got = runCLI(t, env, "election-info", "nobody", "--output", "json")
	if got.code != 0 || !strings.Contains(got.stdout, `"leader": null`) || !strings.Contains(got.stdout, `"candidates": []`) {
		t.Errorf("election-info json of an empty election:\n%s%s", got.stdout, got.stderr)
	}
	if got := runCLI(t, env, "election-info", "nobody"); got.code != 0 || !strings.Contains(got.stdout, "LEADER      none") {
		t.Errorf("election-info of an empty election:\n%s%s", got.stdout, got.stderr)
	}
	r.do("DELETE", api.SessionPath(b), "", nil)
	if err := <-errC; err != nil {
		t.Error(err)
	}
}

func TestElectionCommandsUsageAndUnreachable(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"elect"}, "missing election NAME"},
		{[]string{"elect", "x"}, "missing VALUE"},
		{[]string{"elect", "x", ""}, "VALUE is empty"},
		{[]string{"elect", "--ttl", "0s", "x", "v"}, "--ttl"},
		{[]string{"elect", "--wait", "-1s", "x", "v"}, "--wait"},
		{[]string{"elect", "no spaces", "v"}, "only ASCII letters"},
		{[]string{"observe"}, "exactly one election NAME"},
		{[]string{"observe", "x", "--output", "yaml"}, `--output "yaml"`},
		{[]string{"elections", "extra"}, "unexpected arguments"},
		{[]string{"election-info", "a", "b"}, "exactly one election NAME"},
		{[]string{"sidecar", "--id", "a"}, "missing --election"},
		{[]string{"sidecar", "--election", "e", "--id", "a", "--listen", "nope"}, "--listen"},
		{[]string{"sidecar", "--election", "e", "--id", "a", "--ttl", "-1s"}, "--ttl"},
	} {
		r := runCLI(t, nil, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.stderr) || r.stdout != "" {
			t.Errorf("raftlock %q: exit %d (want 2), stdout %q, stderr %q (want %q)", c.args, r.code, r.stdout, r.stderr, c.stderr)
		}
	}
	e := &env{getenv: func(string) string { return "" }}
	_, o, err := parseElect(e, []string{"--ttl", "2s", "n", "--wait", "1s", "v", "--kill-grace", "1s", "ls", "-l", "--", "x"})
	if err != nil || o.name != "n" || o.value != "v" || o.ttl != 2*time.Second || o.wait != time.Second || o.grace != time.Second || strings.Join(o.argv, " ") != "ls -l -- x" {
		t.Errorf("parseElect: %+v %v", o, err)
	}
	for _, args := range [][]string{{"elections"}, {"election-info", "x"}, {"observe", "x"}, {"elect", "x", "v"}} {
		r := runCLI(t, nil, append([]string{"--endpoints", "http://127.0.0.1:1", "--timeout", "2s"}, args...)...)
		if r.code != exitError || !strings.HasPrefix(r.stderr, "raftlock: ") || r.stdout != "" {
			t.Errorf("%q against nothing: exit %d, stdout %q, stderr %q; want exit 1 and a message", args, r.code, r.stdout, r.stderr)
		}
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

// nextLine returns the next stdout line of p.
func (p *proc) nextLine(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lineC:
		if !ok {
			t.Fatalf("stdout ended; stderr:\n%s", p.stderr)
		}
		return l.text
	case <-time.After(within):
		t.Fatalf("no stdout line within %v; stderr:\n%s", within, p.stderr)
	}
	return ""
}

// SIGTERM to elect without CMD resigns (exit 0); SIGINT while campaigning
// abandons the campaign (exit 130) and leaves the queue.
func TestBinaryElectSignals(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)

	// TTL 30s: only a resign frees the election within the test.
	p := startBinary(t, "--endpoints", s.URL, "elect", "--ttl", "30s", "sig", "host-a")
	if l := p.nextLine(t, 10*time.Second); leadingRE.FindStringSubmatch(l) == nil {
		t.Fatalf("first line %q", l)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	if el := r.election("sig"); el.Leader != nil {
		t.Errorf("still led after SIGTERM: %+v", el.Leader)
	}

	holder := r.session("30s", "holder")
	r.campaign("sig", holder, "the-leader")
	p = startBinary(t, "--endpoints", s.URL, "elect", "--ttl", "30s", "sig", "host-b", "--", "echo", "ran")
	await.True(t, 10*time.Second, "elect queued", func() bool { return len(r.election("sig").Candidates) == 1 })
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != 128+int(syscall.SIGINT) {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, 128+int(syscall.SIGINT), p.stderr)
	}
	if l, ok := <-p.lineC; ok {
		t.Errorf("printed %q although it never led", l.text)
	}
	if el := r.election("sig"); el.Leader == nil || el.Leader.Session != holder || len(el.Candidates) != 0 {
		t.Errorf("after SIGINT: %+v, want the holder alone", el)
	}
}

// SIGTERM to elect with CMD goes to CMD; raftlock exits with CMD's code
// and resigns.
func TestBinaryElectSignalIsPassedToCmd(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	p := startBinary(t, "--endpoints", s.URL, "elect", "--ttl", "30s", "sig", "host-a", "--",
		"sh", "-c", `trap 'echo got-term; exit 5' TERM; echo started; while true; do sleep 0.1; done`)
	p.nextLine(t, 10*time.Second) // leading ...
	p.expectLine(t, "started", 10*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.expectLine(t, "got-term", 5*time.Second)
	if code := p.wait(t, 10*time.Second); code != 5 {
		t.Errorf("exit %d, want CMD's 5; stderr:\n%s", code, p.stderr)
	}
	if el := r.election("sig"); el.Leader != nil {
		t.Errorf("still led after raftlock exited: %+v", el.Leader)
	}
}

// SIGTERM to a sidecar binary: it resigns (the next sidecar leads at once,
// not after the TTL) and exits 0.
func TestBinarySidecarSIGTERMResigns(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	p := startBinary(t, "--endpoints", s.URL, "sidecar", "--election", "web", "--id", "pod-a", "--ttl", "30s", "--listen", "127.0.0.1:0")
	await.True(t, 10*time.Second, "pod-a leads", func() bool { el := r.election("web"); return el.Leader != nil && el.Leader.Value == "pod-a" })
	var m []string
	await.True(t, 10*time.Second, "the address on stderr", func() bool {
		m = listeningRE.FindStringSubmatch(p.stderr.String())
		return m != nil
	})
	// The server's view can run ahead of the sidecar's: it says leader only
	// once its own campaign call has returned.
	await.True(t, 10*time.Second, "pod-a's /ready says leader", func() bool {
		code, body := get(t, m[1]+"/ready")
		return code == 200 && body["is_leader"] == true
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	if el := r.election("web"); el.Leader != nil || len(el.Candidates) != 0 {
		t.Errorf("election after the sidecar stopped: %+v", el)
	}
}
