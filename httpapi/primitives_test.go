package httpapi

import (
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// holdersOf returns the "holders" of a reply (or of its error) as
// session:mode pairs.
func holdersOf(t *testing.T, r reply, inError bool) []string {
	t.Helper()
	body := r.body
	if inError {
		body, _ = r.body["error"].(map[string]any)
	}
	hs, _ := body["holders"].([]any)
	var out []string
	for _, h := range hs {
		m := h.(map[string]any)
		mode, _ := m["mode"].(string)
		out = append(out, m["session"].(string)+":"+mode)
	}
	return out
}

// TestSharedLock: readers hold together, GET lists them with their mode,
// a writer waits for every reader and is granted with a larger token, a
// reader behind the queued writer waits (409 on a try, with the
// holders), the other mode is 409 mode_mismatch, and check knows shared
// tokens.
func TestSharedLock(t *testing.T) {
	f, ts := newTestServer(t, nil)
	r1, r2, w := openSession(t, ts, "r1"), openSession(t, ts, "r2"), openSession(t, ts, "w")
	g1 := must(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+r1+`","mode":"shared"}`, 200)
	g2 := must(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+r2+`","mode":"shared","wait":"5s"}`, 200)
	if g1.str("mode") != api.ModeShared || g2.str("mode") != api.ModeShared || g2.num("token") <= g1.num("token") {
		t.Fatalf("shared grants: %s %s", g1.raw, g2.raw)
	}
	r := must(t, ts, "GET", "/v1/locks/db", "", 200)
	if got := holdersOf(t, r, false); len(got) != 2 || got[0] != r1+":shared" || got[1] != r2+":shared" || r.body["holder"] != nil {
		t.Fatalf("GET shared lock: %s", r.raw)
	}
	mustErr(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+r1+`"}`, 409, api.CodeModeMismatch)
	if c := must(t, ts, "POST", "/v1/locks/db/check", `{"token":`+u(g2.num("token"))+`}`, 200); c.body["current"] != true {
		t.Fatalf("check of a shared token: %s", c.raw)
	}
	e := mustErr(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+w+`"}`, 409, api.CodeLockHeld)
	if len(holdersOf(t, e, true)) != 2 {
		t.Fatalf("lock_held of a shared lock names its holders: %s", e.raw)
	}
	got := make(chan reply, 1)
	go func() { got <- do(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+w+`","wait":"30s"}`) }()
	f.await(t, "writer queued", func(m *lock.Machine) bool {
		li, ok := m.Lock("db")
		return ok && len(li.Waiters) == 1
	})
	r3 := openSession(t, ts, "r3")
	mustErr(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+r3+`","mode":"shared"}`, 409, api.CodeLockHeld)
	mustErr(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+w+`","mode":"shared","wait":"1s"}`, 409, api.CodeModeMismatch)
	must(t, ts, "POST", "/v1/locks/db/release", `{"session":"`+r1+`","token":`+u(g1.num("token"))+`}`, 200)
	if r := must(t, ts, "GET", "/v1/locks/db", "", 200); len(holdersOf(t, r, false)) != 1 {
		t.Fatalf("one reader left: %s", r.raw)
	}
	must(t, ts, "POST", "/v1/locks/db/release", `{"session":"`+r2+`","token":`+u(g2.num("token"))+`}`, 200)
	wg := <-got
	if wg.status != 200 || wg.str("session") != w || wg.num("token") <= g2.num("token") || wg.str("mode") != "" {
		t.Fatalf("writer: %d %s", wg.status, wg.raw)
	}
	r = must(t, ts, "GET", "/v1/locks/db", "", 200)
	if got := holdersOf(t, r, false); len(got) != 1 || got[0] != w+":exclusive" || r.body["holder"] == nil {
		t.Fatalf("GET exclusive lock: %s", r.raw)
	}
	mustErr(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+w+`","mode":"read"}`, 400, api.CodeInvalidArgument)
}

// TestSemaphore: the first acquirer sets the limit, a full semaphore
// refuses a try with its holders and limit, another limit is 409
// limit_mismatch, a waiter is granted when a permit is released, check
// knows permits, cancel and the listings work.
func TestSemaphore(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a, b, c := openSession(t, ts, "a"), openSession(t, ts, "b"), openSession(t, ts, "c")
	pa := must(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+a+`","limit":2}`, 200)
	if pa.num("limit") != 2 || pa.str("session") != a || pa.num("token") == 0 {
		t.Fatalf("permit: %s", pa.raw)
	}
	if again := must(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+a+`","limit":2,"wait":"1s"}`, 200); again.num("token") != pa.num("token") {
		t.Fatalf("retry: %s", again.raw)
	}
	must(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+b+`","limit":2}`, 200)
	mustErr(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+c+`","limit":3}`, 409, api.CodeLimitMismatch)
	e := mustErr(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+c+`","limit":2}`, 409, api.CodeLockHeld)
	if len(holdersOf(t, e, true)) != 2 || e.body["error"].(map[string]any)["limit"] != float64(2) {
		t.Fatalf("full: %s", e.raw)
	}
	// A semaphore is not a lock.
	if r := must(t, ts, "GET", "/v1/locks/backups", "", 200); r.body["holder"] != nil {
		t.Fatalf("lock backups: %s", r.raw)
	}
	got := make(chan reply, 1)
	go func() {
		got <- do(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+c+`","limit":2,"wait":"30s"}`)
	}()
	f.await(t, "c queued", func(m *lock.Machine) bool {
		si, ok := m.Semaphore("backups")
		return ok && len(si.Waiters) == 1
	})
	r := must(t, ts, "GET", "/v1/semaphores/backups", "", 200)
	if r.num("limit") != 2 || len(holdersOf(t, r, false)) != 2 || len(r.body["waiters"].([]any)) != 1 {
		t.Fatalf("GET semaphore: %s", r.raw)
	}
	if chk := must(t, ts, "POST", "/v1/semaphores/backups/check", `{"token":`+u(pa.num("token"))+`}`, 200); chk.body["current"] != true {
		t.Fatalf("check: %s", chk.raw)
	}
	must(t, ts, "POST", "/v1/semaphores/backups/release", `{"session":"`+a+`","token":`+u(pa.num("token"))+`}`, 200)
	mustErr(t, ts, "POST", "/v1/semaphores/backups/release", `{"session":"`+a+`","token":`+u(pa.num("token"))+`}`, 409, api.CodeNotHolder)
	pc := <-got
	if pc.status != 200 || pc.str("session") != c || pc.num("token") <= pa.num("token") {
		t.Fatalf("waiter: %d %s", pc.status, pc.raw)
	}
	if chk := must(t, ts, "POST", "/v1/semaphores/backups/check", `{"token":`+u(pa.num("token"))+`}`, 200); chk.body["current"] != false {
		t.Fatalf("check of a released permit: %s", chk.raw)
	}
	// A cancel by a holder answers its permit (the grant won the race).
	if cr := must(t, ts, "POST", "/v1/semaphores/backups/cancel", `{"session":"`+c+`"}`, 200); cr.body["left"] != false || cr.body["permit"] == nil {
		t.Fatalf("cancel by a holder: %s", cr.raw)
	}
	l := must(t, ts, "GET", "/v1/semaphores?prefix=back", "", 200)
	if ss := l.body["semaphores"].([]any); len(ss) != 1 {
		t.Fatalf("list: %s", l.raw)
	}
	mustErr(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+c+`","limit":0}`, 400, api.CodeInvalidArgument)
	mustErr(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+c+`","limit":70000}`, 400, api.CodeInvalidArgument)
	mustErr(t, ts, "POST", "/v1/semaphores/backups/grab", `{"session":"`+c+`"}`, 405, api.CodeMethodNotAllowed)
	mustErr(t, ts, "POST", "/v1/semaphores/backups/acquire", `{"session":"`+c+`","limit":2,"mode":"shared"}`, 400, api.CodeInvalidArgument)
}

// TestBatchModes: batch acquires carry their mode, atomic ones too.
func TestBatchModes(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a, b := openSession(t, ts, "a"), openSession(t, ts, "b")
	r := must(t, ts, "POST", "/v1/batch", `{"ops":[{"op":"acquire","name":"x","session":"`+a+`","mode":"shared"}]}`, 200)
	res := r.body["results"].([]any)[0].(map[string]any)
	if res["grant"].(map[string]any)["mode"] != api.ModeShared {
		t.Fatalf("batch shared acquire: %s", r.raw)
	}
	r = must(t, ts, "POST", "/v1/batch", `{"atomic":true,"ops":[{"op":"acquire","name":"x","session":"`+b+`","mode":"shared"},{"op":"acquire","name":"y","session":"`+b+`"}]}`, 200)
	if res := r.body["results"].([]any); len(res) != 2 || res[0].(map[string]any)["grant"].(map[string]any)["mode"] != api.ModeShared {
		t.Fatalf("atomic batch with modes: %s", r.raw)
	}
	mustErr(t, ts, "POST", "/v1/batch", `{"atomic":true,"ops":[{"op":"acquire","name":"y","session":"`+a+`","mode":"shared"}]}`, 409, api.CodeLockHeld)
	mustErr(t, ts, "POST", "/v1/batch", `{"ops":[{"op":"release","name":"y","session":"`+a+`","token":3,"mode":"shared"}]}`, 400, api.CodeInvalidArgument)
}

// TestListSessions: GET /v1/sessions pages by ID and filters by owner;
// a bad cursor or limit is a 400.
func TestListSessions(t *testing.T) {
	_, ts := newTestServer(t, nil)
	var ids []string
	for i := range 5 {
		owner := "web"
		if i%2 == 1 {
			owner = "batch"
		}
		ids = append(ids, openSession(t, ts, owner))
	}
	must(t, ts, "POST", "/v1/semaphores/pool/acquire", `{"session":"`+ids[0]+`","limit":2}`, 200)
	r := must(t, ts, "GET", "/v1/sessions?owner=web&limit=2", "", 200)
	ss := r.body["sessions"].([]any)
	if len(ss) != 2 || ss[0].(map[string]any)["id"] != ids[0] || ss[1].(map[string]any)["id"] != ids[2] || r.str("next") != ids[2] {
		t.Fatalf("first page: %s", r.raw)
	}
	if p := ss[0].(map[string]any)["permits"].([]any); len(p) != 1 || p[0] != "pool" {
		t.Fatalf("permits of the first session: %s", r.raw)
	}
	r = must(t, ts, "GET", "/v1/sessions?owner=web&limit=2&after="+ids[2], "", 200)
	if ss := r.body["sessions"].([]any); len(ss) != 1 || ss[0].(map[string]any)["id"] != ids[4] || r.str("next") != "" {
		t.Fatalf("second page: %s", r.raw)
	}
	if r := must(t, ts, "GET", "/v1/sessions", "", 200); len(r.body["sessions"].([]any)) != 5 {
		t.Fatalf("all: %s", r.raw)
	}
	mustErr(t, ts, "GET", "/v1/sessions?after=x", "", 400, api.CodeInvalidArgument)
	mustErr(t, ts, "GET", "/v1/sessions?limit=0", "", 400, api.CodeInvalidArgument)
}

// A cancel that finds the session holding the lock shared (the grant won
// the race) answers the grant with its mode.
func TestCancelAnswersSharedGrant(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	must(t, ts, "POST", "/v1/locks/x/acquire", `{"session":"`+a+`","mode":"shared"}`, 200)
	r := must(t, ts, "POST", "/v1/locks/x/cancel", `{"session":"`+a+`"}`, 200)
	if g, _ := r.body["grant"].(map[string]any); r.body["left"] != false || g == nil || g["mode"] != api.ModeShared {
		t.Fatalf("cancel of a shared holder: %s", r.raw)
	}
}

// Two shared holders granted in one entry share a token: a check that
// names the session tells them apart.
func TestCheckNamesTheSession(t *testing.T) {
	f, ts := newTestServer(t, nil)
	w, r1, r2 := openSession(t, ts, "w"), openSession(t, ts, "r1"), openSession(t, ts, "r2")
	tw := must(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+w+`"}`, 200).num("token")
	for _, s := range []string{r1, r2} {
		go do(t, ts, "POST", "/v1/locks/db/acquire", `{"session":"`+s+`","mode":"shared","wait":"10s"}`)
	}
	f.await(t, "both readers queued", func(m *lock.Machine) bool {
		li, ok := m.Lock("db")
		return ok && len(li.Waiters) == 2
	})
	must(t, ts, "POST", "/v1/locks/db/release", `{"session":"`+w+`","token":`+u(tw)+`}`, 200)
	var tok uint64
	f.await(t, "both readers hold", func(m *lock.Machine) bool {
		li, ok := m.Lock("db")
		if !ok || len(li.Holders) != 2 || li.Holders[0].Token != li.Holders[1].Token {
			return false
		}
		tok = li.Holders[0].Token
		return true
	})
	must(t, ts, "POST", "/v1/locks/db/release", `{"session":"`+r1+`","token":`+u(tok)+`}`, 200)
	// r1 released: its token is still r2's, so a check by token alone
	// says current; naming r1 says not.
	if chk := must(t, ts, "POST", "/v1/locks/db/check", `{"token":`+u(tok)+`}`, 200); chk.body["current"] != true {
		t.Fatalf("check by token: %s", chk.raw)
	}
	if chk := must(t, ts, "POST", "/v1/locks/db/check", `{"token":`+u(tok)+`,"session":"`+r1+`"}`, 200); chk.body["current"] != false {
		t.Fatalf("check naming the reader that left: %s", chk.raw)
	}
	if chk := must(t, ts, "POST", "/v1/locks/db/check", `{"token":`+u(tok)+`,"session":"`+r2+`"}`, 200); chk.body["current"] != true {
		t.Fatalf("check naming the reader that holds: %s", chk.raw)
	}
}
