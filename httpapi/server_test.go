package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

type reply struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r reply) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r reply) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

func (r reply) num(k string) uint64 { f, _ := r.body[k].(float64); return uint64(f) }

// doCtx sends a request; body "" sends none. hdr are key, value pairs.
func doCtx(ctx context.Context, t *testing.T, ts *httptest.Server, method, path, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return reply{}
		}
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: %d with a body that is not a JSON object: %q", method, path, resp.StatusCode, b)
		}
	}
	return r
}

func do(t *testing.T, ts *httptest.Server, method, path, body string, hdr ...string) reply {
	t.Helper()
	return doCtx(context.Background(), t, ts, method, path, body, hdr...)
}

// must sends a request and checks its status.
func must(t *testing.T, ts *httptest.Server, method, path, body string, want int) reply {
	t.Helper()
	r := do(t, ts, method, path, body)
	if r.status != want {
		t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, r.status, r.raw, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	if r.header.Get(api.HeaderLeader) == "" {
		t.Fatalf("%s %s: no %s header", method, path, api.HeaderLeader)
	}
	return r
}

// mustErr sends a request and checks its status and error code.
func mustErr(t *testing.T, ts *httptest.Server, method, path, body string, status int, code string) reply {
	t.Helper()
	r := must(t, ts, method, path, body, status)
	if r.errCode() != code || r.errMessage() == "" {
		t.Fatalf("%s %s %s: %s, want code %q and a message", method, path, body, r.raw, code)
	}
	return r
}

func openSession(t *testing.T, ts *httptest.Server, owner string) string {
	t.Helper()
	r := must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s","owner":"`+owner+`"}`, 201)
	id := r.str("id")
	if id == "" || r.str("ttl") != "10s" || r.str("owner") != owner {
		t.Fatalf("open session: %s", r.raw)
	}
	return id
}

func TestSessionLifecycle(t *testing.T) {
	f, ts := newTestServer(t, nil)
	id := openSession(t, ts, "host-a")

	r := must(t, ts, "GET", "/v1/sessions/"+id, "", 200)
	if r.str("id") != id || r.str("owner") != "host-a" || r.str("ttl") != "10s" || r.str("deadline") == "" {
		t.Fatalf("get session: %s", r.raw)
	}
	if !strings.Contains(r.raw, `"locks":[]`) || !strings.Contains(r.raw, `"waiting":[]`) {
		t.Fatalf("get session: want empty locks and waiting arrays: %s", r.raw)
	}
	if strings.Contains(r.raw, "\n") || strings.Contains(r.raw, "  ") {
		t.Fatalf("JSON is not compact: %q", r.raw)
	}

	r = must(t, ts, "POST", "/v1/sessions/"+id+"/keepalive", "", 200)
	if r.str("id") != id || r.str("ttl") != "10s" {
		t.Fatalf("keepalive: %s", r.raw)
	}
	must(t, ts, "POST", "/v1/sessions/"+id+"/keepalive", "{}", 200)

	// The session holds a lock; closing it releases the lock.
	must(t, ts, "POST", "/v1/locks/a/acquire", `{"session":"`+id+`"}`, 200)
	r = must(t, ts, "GET", "/v1/sessions/"+id+"?consistency=stale", "", 200)
	if got := r.body["locks"].([]any); len(got) != 1 || got[0] != "a" {
		t.Fatalf("session locks: %s", r.raw)
	}
	must(t, ts, "DELETE", "/v1/sessions/"+id, "", 200)
	r = must(t, ts, "GET", "/v1/locks/a", "", 200)
	if r.body["holder"] != nil {
		t.Fatalf("lock still held after close: %s", r.raw)
	}
	mustErr(t, ts, "GET", "/v1/sessions/"+id, "", 404, api.CodeSessionNotFound)
	mustErr(t, ts, "POST", "/v1/sessions/"+id+"/keepalive", "", 404, api.CodeSessionNotFound)
	mustErr(t, ts, "DELETE", "/v1/sessions/"+id, "", 404, api.CodeSessionNotFound)

	// Expiry: advance the fake clock past the TTL and let the "leader" expire.
	id2 := openSession(t, ts, "host-b")
	f.set(func(f *fakeNode) { f.now = f.now.Add(11 * time.Second) })
	if _, _, err := f.Propose(context.Background(), &lock.Command{Op: lock.OpExpire}); err != nil {
		t.Fatal(err)
	}
	mustErr(t, ts, "POST", "/v1/sessions/"+id2+"/keepalive", "", 404, api.CodeSessionNotFound)
}

func TestAcquireReleaseToken(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")

	r := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200)
	tok := r.num("token")
	if r.str("name") != "job" || r.str("session") != a || tok == 0 {
		t.Fatalf("acquire: %s", r.raw)
	}
	// A retry returns the same grant.
	if r := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200); r.num("token") != tok {
		t.Fatalf("retried acquire: %s, want token %d", r.raw, tok)
	}
	// Another session fails at once with the holder.
	r = mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`"}`, 409, api.CodeLockHeld)
	h := r.body["error"].(map[string]any)["holder"].(map[string]any)
	if h["session"] != a || uint64(h["token"].(float64)) != tok || h["owner"] != "a" {
		t.Fatalf("lock_held holder: %s", r.raw)
	}
	if since, _ := h["since"].(string); since != "2026-11-26T12:00:00.123456789Z" {
		t.Fatalf("holder since %q", since)
	}
	r = must(t, ts, "GET", "/v1/locks/job", "", 200)
	if r.body["holder"].(map[string]any)["session"] != a || !strings.Contains(r.raw, `"waiters":[]`) {
		t.Fatalf("get lock: %s", r.raw)
	}
	// Release by another session, and with a stale token: not_holder.
	mustErr(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+b+`","token":`+u(tok)+`}`, 409, api.CodeNotHolder)
	mustErr(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tok+100)+`}`, 409, api.CodeNotHolder)
	r = must(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tok)+`}`, 200)
	if r.str("name") != "job" || r.str("session") != a || r.num("token") != tok {
		t.Fatalf("release: %s", r.raw)
	}
	// A retried release changes nothing and answers not_holder.
	mustErr(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tok)+`}`, 409, api.CodeNotHolder)
	r = must(t, ts, "GET", "/v1/locks/job", "", 200)
	if r.raw != `{"name":"job","holder":null,"holders":[],"waiters":[]}` {
		t.Fatalf("free lock: %s", r.raw)
	}
	// The next grant has a larger token.
	r = must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`"}`, 200)
	if r.num("token") <= tok {
		t.Fatalf("second grant token %d, not above %d", r.num("token"), tok)
	}
	mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"999"}`, 404, api.CodeSessionNotFound)

	// List by prefix, sorted.
	must(t, ts, "POST", "/v1/locks/jobs/b/acquire", `{"session":"`+a+`"}`, 200)
	must(t, ts, "POST", "/v1/locks/jobs%2Fa/acquire", `{"session":"`+a+`"}`, 200)
	r = must(t, ts, "GET", "/v1/locks?prefix=jobs/", "", 200)
	locks := r.body["locks"].([]any)
	if len(locks) != 2 || locks[0].(map[string]any)["name"] != "jobs/a" || locks[1].(map[string]any)["name"] != "jobs/b" {
		t.Fatalf("list: %s", r.raw)
	}
	r = must(t, ts, "GET", "/v1/locks?consistency=stale", "", 200)
	if len(r.body["locks"].([]any)) != 3 {
		t.Fatalf("list all: %s", r.raw)
	}
	if r := must(t, ts, "GET", "/v1/locks?prefix=zzz", "", 200); r.raw != `{"locks":[]}` {
		t.Fatalf("empty list: %s", r.raw)
	}
}

func u(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestLockNamesWithSlash(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	r := must(t, ts, "POST", "/v1/locks/x/y/acquire", `{"session":"`+a+`"}`, 200)
	if r.str("name") != "x/y" {
		t.Fatalf("acquire x/y: %s", r.raw)
	}
	// The same lock, percent-encoded: a retry of the same grant.
	if r2 := must(t, ts, "POST", "/v1/locks/x%2Fy/acquire", `{"session":"`+a+`"}`, 200); r2.num("token") != r.num("token") {
		t.Fatalf("x%%2Fy is not x/y: %s vs %s", r2.raw, r.raw)
	}
	for _, p := range []string{"/v1/locks/x/y", "/v1/locks/x%2Fy", "/v1/locks/x%2fy"} {
		if r := must(t, ts, "GET", p, "", 200); r.str("name") != "x/y" || r.body["holder"] == nil {
			t.Fatalf("GET %s: %s", p, r.raw)
		}
	}
	// A name whose last segment is an action, percent-encoded.
	r = must(t, ts, "POST", "/v1/locks/q%2Frelease/acquire", `{"session":"`+a+`"}`, 200)
	if r.str("name") != "q/release" {
		t.Fatalf("acquire q/release: %s", r.raw)
	}
	if r := must(t, ts, "GET", "/v1/locks/q/release", "", 200); r.body["holder"] == nil {
		t.Fatalf("GET q/release: %s", r.raw)
	}
	// api.LockPath builds such paths.
	if r := must(t, ts, "GET", api.LockPath("q/release"), "", 200); r.str("name") != "q/release" {
		t.Fatalf("LockPath: %s", r.raw)
	}
	// x/y's release with q/release's token is refused.
	mustErr(t, ts, "POST", "/v1/locks/x/y/release", `{"session":"`+a+`","token":`+u(r.num("token"))+`}`, 409, api.CodeNotHolder)
}

func TestAcquireWaitGrantedAfterRelease(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	tok := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200).num("token")

	got := make(chan reply, 1)
	go func() {
		got <- do(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"30s"}`)
	}()
	f.await(t, "b queued", func(m *lock.Machine) bool {
		li, ok := m.Lock("job")
		return ok && len(li.Waiters) == 1
	})
	r := must(t, ts, "GET", "/v1/locks/job", "", 200)
	ws := r.body["waiters"].([]any)
	if len(ws) != 1 || ws[0].(map[string]any)["session"] != b || ws[0].(map[string]any)["owner"] != "b" {
		t.Fatalf("waiters: %s", r.raw)
	}
	must(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tok)+`}`, 200)
	r = <-got
	if r.status != 200 || r.str("session") != b || r.num("token") <= tok {
		t.Fatalf("waiting acquire: %d %s", r.status, r.raw)
	}
	if n := f.subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

func TestAcquireWaitTimeoutLeavesQueue(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200)

	r := mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"50ms"}`, 409, api.CodeLockHeld)
	if h := r.body["error"].(map[string]any)["holder"].(map[string]any); h["session"] != a {
		t.Fatalf("holder: %s", r.raw)
	}
	r = must(t, ts, "GET", "/v1/locks/job", "", 200)
	if len(r.body["waiters"].([]any)) != 0 {
		t.Fatalf("b still queued after its wait ran out: %s", r.raw)
	}
	r = must(t, ts, "GET", "/v1/sessions/"+b, "", 200)
	if len(r.body["waiting"].([]any)) != 0 {
		t.Fatalf("session b still waiting: %s", r.raw)
	}
	cmds := f.proposals()
	if last := cmds[len(cmds)-1]; last.Op != lock.OpCancel || last.Name != "job" {
		t.Fatalf("last proposal %+v, want a cancel", last)
	}
}

func TestAcquireWaitClientGoneCancels(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		doCtx(ctx, t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"1m"}`)
	}()
	f.await(t, "b queued", func(m *lock.Machine) bool {
		li, ok := m.Lock("job")
		return ok && len(li.Waiters) == 1
	})
	cancel()
	wg.Wait()
	f.await(t, "b left the queue", func(m *lock.Machine) bool {
		li, ok := m.Lock("job")
		return ok && len(li.Waiters) == 0
	})
	// The holder is untouched.
	if r := must(t, ts, "GET", "/v1/locks/job", "", 200); r.body["holder"].(map[string]any)["session"] != a {
		t.Fatalf("holder changed: %s", r.raw)
	}
}

func TestAcquireWaitSessionExpires(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := must(t, ts, "POST", "/v1/sessions", `{"ttl":"5s"}`, 201).str("id")
	must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200)
	got := make(chan reply, 1)
	go func() { got <- do(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"1m"}`) }()
	f.await(t, "b queued", func(m *lock.Machine) bool {
		li, ok := m.Lock("job")
		return ok && len(li.Waiters) == 1
	})
	f.set(func(f *fakeNode) { f.now = f.now.Add(6 * time.Second) })
	if _, _, err := f.Propose(context.Background(), &lock.Command{Op: lock.OpExpire}); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.status != 404 || r.errCode() != api.CodeSessionNotFound {
		t.Fatalf("waiter of an expired session: %d %s", r.status, r.raw)
	}
}

func TestEphemeralAcquire(t *testing.T) {
	f, ts := newTestServer(t, nil)
	r := must(t, ts, "POST", "/v1/locks/eph/acquire", `{"ttl":"30s","owner":"cron"}`, 200)
	sid, tok := r.str("session"), r.num("token")
	if sid == "" || tok == 0 || r.str("name") != "eph" {
		t.Fatalf("ephemeral acquire: %s", r.raw)
	}
	r = must(t, ts, "GET", "/v1/sessions/"+sid, "", 200)
	if r.str("bound") != "eph" || r.str("owner") != "cron" || r.str("ttl") != "30s" {
		t.Fatalf("ephemeral session: %s", r.raw)
	}
	// Held: another ephemeral try creates nothing.
	mustErr(t, ts, "POST", "/v1/locks/eph/acquire", `{"ttl":"30s"}`, 409, api.CodeLockHeld)
	f.set(func(f *fakeNode) {
		// The try consumed an index; no session may have it as its ID.
		if _, ok := f.m.Session(f.index); ok || f.results[len(f.results)-1].Session != 0 {
			t.Error("a failed ephemeral try opened a session")
		}
	})
	// An ephemeral waiter whose wait runs out is gone.
	mustErr(t, ts, "POST", "/v1/locks/eph/acquire", `{"ttl":"30s","wait":"30ms"}`, 409, api.CodeLockHeld)
	var waiterID uint64
	f.set(func(f *fakeNode) {
		for i, c := range f.cmds {
			if c.Op == lock.OpAcquire && f.results[i].Code == lock.CodeQueued {
				waiterID = f.results[i].Session
			}
		}
	})
	if waiterID == 0 {
		t.Fatal("the ephemeral waiter was never queued")
	}
	mustErr(t, ts, "GET", "/v1/sessions/"+u(waiterID), "", 404, api.CodeSessionNotFound)
	if r := must(t, ts, "GET", "/v1/locks/eph", "", 200); len(r.body["waiters"].([]any)) != 0 {
		t.Fatalf("ephemeral waiter still queued: %s", r.raw)
	}
	// Releasing closes the ephemeral session.
	must(t, ts, "POST", "/v1/locks/eph/release", `{"session":"`+sid+`","token":`+u(tok)+`}`, 200)
	mustErr(t, ts, "GET", "/v1/sessions/"+sid, "", 404, api.CodeSessionNotFound)
}

func TestEphemeralWaitGranted(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	tok := must(t, ts, "POST", "/v1/locks/e/acquire", `{"session":"`+a+`"}`, 200).num("token")
	got := make(chan reply, 1)
	go func() { got <- do(t, ts, "POST", "/v1/locks/e/acquire", `{"ttl":"10s","wait":"1m"}`) }()
	f.await(t, "ephemeral waiter queued", func(m *lock.Machine) bool {
		li, ok := m.Lock("e")
		return ok && len(li.Waiters) == 1
	})
	must(t, ts, "POST", "/v1/locks/e/release", `{"session":"`+a+`","token":`+u(tok)+`}`, 200)
	if r := <-got; r.status != 200 || r.num("token") <= tok || r.str("session") == a {
		t.Fatalf("ephemeral waiter: %d %s", r.status, r.raw)
	}
}

func TestForwardToLeader(t *testing.T) {
	var (
		mu        sync.Mutex
		forwarded []string
	)
	leader, lts := newTestHandler(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			forwarded = append(forwarded, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get(api.HeaderForwarded))
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	leader.set(func(f *fakeNode) { f.status.LeaderClientURL = lts.URL })
	follower, fts := newTestServer(t, nil)
	follower.set(func(f *fakeNode) {
		f.notLeader = &raftnode.NotLeaderError{LeaderID: 1, LeaderClientURL: lts.URL}
		f.status.IsLeader = false
		f.status.LeaderClientURL = lts.URL
	})

	r := must(t, fts, "POST", "/v1/sessions", `{"ttl":"20s","owner":"via-follower"}`, 201)
	if r.str("owner") != "via-follower" || r.str("ttl") != "20s" || r.header.Get(api.HeaderLeader) != lts.URL {
		t.Fatalf("forwarded create: %s %v", r.raw, r.header)
	}
	sid := r.str("id")
	cmds := leader.proposals()
	if len(cmds) != 1 || cmds[0].Op != lock.OpOpenSession || cmds[0].Owner != "via-follower" || cmds[0].TTL != int64(20*time.Second) {
		t.Fatalf("leader got %+v", cmds)
	}
	if _, n := follower.snapshot(); n != 0 {
		t.Fatalf("follower applied %d commands", n)
	}
	// Path with an encoded slash, and an error answer relayed as is.
	r = must(t, fts, "POST", "/v1/locks/a%2Fb/acquire", `{"session":"`+sid+`"}`, 200)
	if r.str("name") != "a/b" {
		t.Fatalf("forwarded acquire: %s", r.raw)
	}
	mustErr(t, fts, "POST", "/v1/locks/a%2Fb/acquire", `{"session":"424242"}`, 404, api.CodeSessionNotFound)
	mu.Lock()
	want := []string{"POST /v1/sessions 1", "POST /v1/locks/a%2Fb/acquire 1", "POST /v1/locks/a%2Fb/acquire 1"}
	if strings.Join(forwarded, "|") != strings.Join(want, "|") {
		t.Fatalf("leader saw %q, want %q", forwarded, want)
	}
	mu.Unlock()

	// Loop guard: an already forwarded request is not forwarded again.
	r = do(t, fts, "POST", "/v1/sessions", `{"ttl":"20s"}`, api.HeaderForwarded, "1")
	if r.status != 503 || r.errCode() != api.CodeUnavailable {
		t.Fatalf("forwarded twice: %d %s", r.status, r.raw)
	}
	mu.Lock()
	if len(forwarded) != 3 {
		t.Fatalf("the loop guard forwarded anyway: %q", forwarded)
	}
	mu.Unlock()

	// A follower whose leader is unreachable answers 503 unavailable.
	follower.set(func(f *fakeNode) { f.notLeader.LeaderClientURL = "http://127.0.0.1:1" })
	mustErr(t, fts, "POST", "/v1/sessions", `{"ttl":"20s"}`, 503, api.CodeUnavailable)
	// No URL known: 503.
	follower.set(func(f *fakeNode) { f.notLeader.LeaderClientURL = "" })
	mustErr(t, fts, "POST", "/v1/sessions", `{"ttl":"20s"}`, 503, api.CodeUnavailable)
}

func TestUnavailable(t *testing.T) {
	f, ts := newTestServer(t, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
	id := openSession(t, ts, "a")

	f.set(func(f *fakeNode) { f.noLeader = true })
	mustErr(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, 503, api.CodeUnavailable)
	mustErr(t, ts, "GET", "/v1/locks/x", "", 503, api.CodeUnavailable)
	mustErr(t, ts, "GET", "/v1/sessions/"+id, "", 503, api.CodeUnavailable)
	must(t, ts, "GET", "/v1/locks/x?consistency=stale", "", 200)
	must(t, ts, "GET", "/v1/sessions/"+id+"?consistency=stale", "", 200)
	f.set(func(f *fakeNode) { f.noLeader = false; f.stopped = true })
	mustErr(t, ts, "POST", "/v1/sessions/"+id+"/keepalive", "", 503, api.CodeUnavailable)
	f.set(func(f *fakeNode) { f.stopped = false; f.outcomeUnknown = true })
	r := mustErr(t, ts, "POST", "/v1/locks/x/acquire", `{"session":"`+id+`"}`, 503, api.CodeTimeout)
	if m := r.errMessage(); !strings.Contains(m, "unknown") || !strings.Contains(m, "retrying the same request is safe") {
		t.Fatalf("outcome unknown message: %q", m)
	}
	f.set(func(f *fakeNode) { f.outcomeUnknown = false; f.block = true })
	mustErr(t, ts, "DELETE", "/v1/sessions/"+id, "", 503, api.CodeUnavailable)
	f.set(func(f *fakeNode) { f.block = false; f.readNoLeader = true })
	r = mustErr(t, ts, "GET", "/v1/locks", "", 503, api.CodeUnavailable)
	f.set(func(f *fakeNode) {
		f.readNoLeader = false
		f.status.Ready = false
		f.status.Leader = 0
		f.status.LeaderClientURL = ""
	})
	r = do(t, ts, "GET", "/readyz", "")
	if r.status != 503 || r.errCode() != api.CodeUnavailable || r.header.Get(api.HeaderLeader) != "" {
		t.Fatalf("readyz while not ready: %d %s %v", r.status, r.raw, r.header)
	}
	if r := do(t, ts, "GET", "/healthz", ""); r.status != 200 || r.raw != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
	f.set(func(f *fakeNode) { f.panicRead = true; f.status.LeaderClientURL = "http://l" })
	mustErr(t, ts, "GET", "/v1/locks/x", "", 500, api.CodeInternal)
}

func TestStatusHealth(t *testing.T) {
	f, ts := newTestServer(t, nil)
	openSession(t, ts, "a")
	r := must(t, ts, "GET", "/v1/status", "", 200)
	if r.num("id") != 1 || r.num("leader") != 1 || r.num("term") != 1 || r.num("commit") != 1 || r.num("applied") != 1 {
		t.Fatalf("status: %s", r.raw)
	}
	ms := r.body["members"].([]any)
	if len(ms) != 1 || ms[0].(map[string]any)["peer_url"] != "http://leader.example:7071" || ms[0].(map[string]any)["client_url"] != "http://leader.example:7070" {
		t.Fatalf("status members: %s", r.raw)
	}
	must(t, ts, "GET", "/v1/status?consistency=stale", "", 200)
	if r := must(t, ts, "GET", "/readyz", "", 200); r.raw != `{"status":"ok"}` {
		t.Fatalf("readyz: %s", r.raw)
	}
	// A follower that does not know the leader's URL cannot forward writes:
	// not ready.
	f.set(func(f *fakeNode) { f.status.IsLeader = false; f.status.Leader = 2; f.status.LeaderClientURL = "" })
	if r := do(t, ts, "GET", "/readyz", ""); r.status != 503 || r.errCode() != api.CodeUnavailable {
		t.Fatalf("readyz of a follower without the leader's URL: %d %s", r.status, r.raw)
	}
	f.set(func(f *fakeNode) { f.status.LeaderClientURL = "http://l2" })
	must(t, ts, "GET", "/readyz", "", 200)
	if r := must(t, ts, "GET", "/healthz", "", 200); r.header.Get(api.HeaderLeader) != "http://l2" {
		t.Fatalf("healthz leader header: %v", r.header)
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("config without Node validated")
	}
	c := DefaultConfig()
	c.Node = newFakeNode()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.MaxTTL = time.Second
	if _, err := New(c); err == nil {
		t.Fatal("MaxTTL below MinTTL accepted")
	}
	c = Config{Node: newFakeNode()}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MinTTL != 2*time.Second || s.cfg.MaxTTL != time.Hour || s.cfg.MaxWait != 5*time.Minute || s.cfg.RequestTimeout != 5*time.Second {
		t.Fatalf("defaults: %+v", s.cfg)
	}
	s.Close()
}

// TestAcquireWaitGrantWinsCancelRace: the grant happens just before the
// cancel of a wait that ran out (its event unseen); the cancel reports the
// token and the answer is the grant, for a session and for an ephemeral one.
func TestAcquireWaitGrantWinsCancelRace(t *testing.T) {
	for _, ephemeral := range []bool{false, true} {
		t.Run(fmt.Sprintf("ephemeral=%v", ephemeral), func(t *testing.T) {
			f, ts := newTestServer(t, nil)
			a := openSession(t, ts, "a")
			tok := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200).num("token")
			body := `{"session":"` + openSession(t, ts, "b") + `","wait":"30ms"}`
			if ephemeral {
				body = `{"ttl":"10s","wait":"30ms"}`
			}
			aid, _ := api.ParseSessionID(a)
			f.set(func(f *fakeNode) {
				f.mute = true
				f.onPropose = func(f *fakeNode, cmd *lock.Command) {
					if cmd.Op == lock.OpCancel {
						f.onPropose = nil
						if res := f.applyLocked(&lock.Command{Op: lock.OpRelease, Session: uint64(aid), Name: "job", Token: tok}); res.Code != lock.CodeOK {
							t.Errorf("release in the race: %v", res.Code)
						}
					}
				}
			})
			r := must(t, ts, "POST", "/v1/locks/job/acquire", body, 200)
			if r.num("token") <= tok || r.str("session") == a {
				t.Fatalf("acquire that won the race: %s", r.raw)
			}
			r2 := must(t, ts, "GET", "/v1/locks/job", "", 200)
			if h := r2.body["holder"].(map[string]any); h["session"] != r.str("session") || uint64(h["token"].(float64)) != r.num("token") {
				t.Fatalf("holder after the race: %s", r2.raw)
			}
			must(t, ts, "GET", "/v1/sessions/"+r.str("session"), "", 200)
		})
	}
}

// syncBuffer is an io.Writer safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func TestRequestLog(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, ts := newTestServer(t, func(c *Config) { c.Logger = logger })
	must(t, ts, "GET", "/healthz", "", 200)
	mustErr(t, ts, "GET", "/v1/nope", "", 404, api.CodeNotFound)
	out := buf.String()
	for _, want := range []string{`level=DEBUG msg="http request" method=GET uri=/healthz status=200`, `uri=/v1/nope status=404`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
