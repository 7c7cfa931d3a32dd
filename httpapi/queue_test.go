package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

func waiters(r reply) []string {
	var out []string
	ws, _ := r.body["waiters"].([]any)
	for _, w := range ws {
		m, _ := w.(map[string]any)
		s, _ := m["session"].(string)
		out = append(out, s)
	}
	return out
}

func queuedFlag(r reply) bool {
	e, _ := r.body["error"].(map[string]any)
	q, _ := e["queued"].(bool)
	return q
}

// TestKeepQueuedKeepsFIFOPlaceAcrossWaits: two sessions wait for a held lock
// with keep_queued and a wait shorter than the hold. Each wait runs out
// (409 lock_held, "queued": true) and both keep their places; when the
// holder releases, the first is granted in the releasing entry (token =
// that entry's index), then the second when the first releases.
func TestKeepQueuedKeepsFIFOPlaceAcrossWaits(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	f := w.fakeNode
	a, b, c := openSession(t, ts, "a"), openSession(t, ts, "b"), openSession(t, ts, "c")
	tokA := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200).num("token")
	for round := range 3 { // three chunks each: the places survive every one
		for _, s := range []string{b, c} {
			r := mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+s+`","wait":"20ms","keep_queued":true}`, 409, api.CodeLockHeld)
			if !queuedFlag(r) || !strings.Contains(r.errMessage(), "keeps its place") {
				t.Fatalf("round %d, session %s: %s, want queued: true", round, s, r.raw)
			}
		}
		if got := waiters(must(t, ts, "GET", "/v1/locks/job", "", 200)); len(got) != 2 || got[0] != b || got[1] != c {
			t.Fatalf("round %d: waiters %v, want [%s %s]", round, got, b, c)
		}
	}
	// b waits again (its place is kept: a retry) and is granted when a
	// releases, in the release's entry.
	done := make(chan reply, 1)
	waits := w.waits.Load() // before the acquire starts: it may wait at once
	go func() {
		done <- do(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"10s","keep_queued":true}`)
	}()
	await.True(t, 10*time.Second, "b's acquire waiting again", func() bool { return w.waits.Load() > waits })
	must(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tokA)+`}`, 200)
	releaseIndex := uint64(len(f.proposals()))
	r := <-done
	if r.status != 200 || r.str("session") != b || r.num("token") != releaseIndex {
		t.Fatalf("b after the release at index %d: %d %s, want 200 with token %d", releaseIndex, r.status, r.raw, releaseIndex)
	}
	if got := waiters(must(t, ts, "GET", "/v1/locks/job", "", 200)); len(got) != 1 || got[0] != c {
		t.Fatalf("waiters %v, want [%s]", got, c)
	}
	must(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+b+`","token":`+u(r.num("token"))+`}`, 200)
	r = must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+c+`","wait":"1s","keep_queued":true}`, 200)
	if r.str("session") != c {
		t.Fatalf("c: %s", r.raw)
	}
}

// TestWithoutKeepQueuedAWaitLeaves: as before keep_queued, a wait that runs
// out leaves the queue, and so does a client that goes away; with
// keep_queued the client that goes away keeps its place.
func TestWithoutKeepQueuedAWaitLeaves(t *testing.T) {
	// handled receives the path of every request once its handler returned.
	handled := make(chan string, 16)
	f, ts := newTestHandler(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			handled <- r.URL.Path
		})
	})
	awaitHandled := func(path string) {
		t.Helper()
		for {
			select {
			case p := <-handled:
				if p == path {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the handler of %s did not return", path)
			}
		}
	}
	a, b := openSession(t, ts, "a"), openSession(t, ts, "b")
	must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200)
	r := mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"20ms"}`, 409, api.CodeLockHeld)
	awaitHandled("/v1/locks/job/acquire")
	if queuedFlag(r) || !strings.Contains(r.errMessage(), "left the queue") {
		t.Fatalf("a wait that ran out: %s", r.raw)
	}
	if got := waiters(must(t, ts, "GET", "/v1/locks/job", "", 200)); len(got) != 0 {
		t.Fatalf("waiters %v after the wait ran out", got)
	}
	for _, keep := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		body := `{"session":"` + b + `","wait":"1m"}`
		if keep {
			body = `{"session":"` + b + `","wait":"1m","keep_queued":true}`
		}
		go func() { doCtx(ctx, t, ts, "POST", "/v1/locks/job/acquire", body) }()
		f.await(t, "b queued", func(m *lock.Machine) bool { si, _ := m.Session(uint64(mustID(t, b))); return len(si.Waiting) == 1 })
		n := len(f.proposals())
		cancel()
		awaitHandled("/v1/locks/job/acquire")
		if keep {
			// The place stays: nothing is proposed for a client gone.
			if len(f.proposals()) != n {
				t.Fatalf("keep_queued: a client gone made the server propose %+v", f.proposals()[n:])
			}
			if got := waiters(must(t, ts, "GET", "/v1/locks/job", "", 200)); len(got) != 1 {
				t.Fatalf("keep_queued: waiters %v after the client went away", got)
			}
		} else {
			f.await(t, "b left the queue", func(m *lock.Machine) bool { si, _ := m.Session(uint64(mustID(t, b))); return len(si.Waiting) == 0 })
		}
	}
}

// TestCancel: POST .../cancel leaves the queue and says whether it did and
// whether the session holds (a grant that won the race); a retry is safe.
func TestCancel(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a, b := openSession(t, ts, "a"), openSession(t, ts, "b")
	tok := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`"}`, 200).num("token")
	mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"10ms","keep_queued":true}`, 409, api.CodeLockHeld)
	if r := must(t, ts, "POST", "/v1/locks/job/cancel", `{"session":"`+b+`"}`, 200); r.raw != `{"left":true,"grant":null}` {
		t.Fatalf("cancel of a queued session: %s", r.raw)
	}
	if r := must(t, ts, "POST", "/v1/locks/job/cancel", `{"session":"`+b+`"}`, 200); r.raw != `{"left":false,"grant":null}` {
		t.Fatalf("retried cancel: %s", r.raw)
	}
	want := `{"left":false,"grant":{"name":"job","session":"` + a + `","token":` + u(tok) + `}}`
	if r := must(t, ts, "POST", "/v1/locks/job/cancel", `{"session":"`+a+`"}`, 200); r.raw != want {
		t.Fatalf("cancel by the holder: %s, want %s", r.raw, want)
	}
	mustErr(t, ts, "POST", "/v1/locks/job/cancel", `{"session":"999"}`, 404, api.CodeSessionNotFound)
	mustErr(t, ts, "POST", "/v1/locks/job/cancel", `{}`, 400, api.CodeInvalidArgument)

	// Elections: the same, the grant being the leadership.
	term := must(t, ts, "POST", "/v1/elections/web/campaign", `{"session":"`+a+`","value":"va"}`, 200).num("term")
	r := mustErr(t, ts, "POST", "/v1/elections/web/campaign", `{"session":"`+b+`","value":"vb","wait":"10ms","keep_queued":true}`, 409, api.CodeNotLeader)
	if !queuedFlag(r) {
		t.Fatalf("campaign with keep_queued: %s", r.raw)
	}
	if r := must(t, ts, "POST", "/v1/elections/web/cancel", `{"session":"`+b+`"}`, 200); r.raw != `{"left":true,"grant":null}` {
		t.Fatalf("cancel of a candidate: %s", r.raw)
	}
	want = `{"left":false,"grant":{"name":"web","session":"` + a + `","value":"va","term":` + u(term) + `}}`
	if r := must(t, ts, "POST", "/v1/elections/web/cancel", `{"session":"`+a+`"}`, 200); r.raw != want {
		t.Fatalf("cancel by the leader: %s, want %s", r.raw, want)
	}
}

// TestKeepQueuedNeedsASession: keep_queued with an ephemeral session, or
// on a campaign without a wait, is refused and changes nothing.
func TestKeepQueuedNeedsASession(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	n := len(f.proposals())
	mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"ttl":"10s","wait":"1s","keep_queued":true}`, 400, api.CodeInvalidArgument)
	mustErr(t, ts, "POST", "/v1/elections/web/campaign", `{"session":"`+a+`","value":"v","keep_queued":true}`, 400, api.CodeInvalidArgument)
	mustErr(t, ts, "POST", "/v1/batch", `{"ops":[{"op":"release","name":"job","session":"`+a+`","token":1,"keep_queued":true}]}`, 400, api.CodeInvalidArgument)
	mustErr(t, ts, "POST", "/v1/batch", `{"atomic":true,"ops":[{"op":"acquire","name":"job","session":"`+a+`","keep_queued":true}]}`, 400, api.CodeInvalidArgument)
	if len(f.proposals()) != n {
		t.Fatalf("a refused request proposed %+v", f.proposals()[n:])
	}
}

// TestKeepQueuedWithoutWaitJoinsTheQueue: an acquire (alone or in a batch)
// with keep_queued and no wait takes a free lock, and joins the queue of a
// held one at once (409 lock_held, "queued": true); the session's later
// wait with keep_queued is answered from a read, without an entry, and is
// granted in the releasing entry.
func TestKeepQueuedWithoutWaitJoinsTheQueue(t *testing.T) {
	w, ts := newWaitCountingServer(t)
	f := w.fakeNode
	a, b, c := openSession(t, ts, "a"), openSession(t, ts, "b"), openSession(t, ts, "c")
	tokA := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+a+`","keep_queued":true}`, 200).num("token")
	r := mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","keep_queued":true}`, 409, api.CodeLockHeld)
	if !queuedFlag(r) || !strings.Contains(r.errMessage(), "keeps its place") {
		t.Fatalf("b: %s, want queued: true", r.raw)
	}
	r = must(t, ts, "POST", "/v1/batch", `{"ops":[{"op":"acquire","name":"job","session":"`+c+`","keep_queued":true}]}`, 200)
	if !strings.Contains(r.raw, `"status":409`) || !strings.Contains(r.raw, `"queued":true`) {
		t.Fatalf("c's batched acquire: %s, want 409 with queued: true", r.raw)
	}
	if got := waiters(must(t, ts, "GET", "/v1/locks/job", "", 200)); len(got) != 2 || got[0] != b || got[1] != c {
		t.Fatalf("waiters %v, want [%s %s]", got, b, c)
	}
	// b's wait: no entry.
	n := len(f.proposals())
	done := make(chan reply, 1)
	waits := w.waits.Load()
	go func() {
		done <- do(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"10s","keep_queued":true}`)
	}()
	await.True(t, 10*time.Second, "b's acquire waiting", func() bool { return w.waits.Load() > waits })
	if got := f.proposals()[n:]; len(got) != 0 {
		t.Fatalf("the wait of a queued session proposed %+v", got)
	}
	must(t, ts, "POST", "/v1/locks/job/release", `{"session":"`+a+`","token":`+u(tokA)+`}`, 200)
	releaseIndex := uint64(len(f.proposals()))
	r = <-done
	if r.status != 200 || r.str("session") != b || r.num("token") != releaseIndex {
		t.Fatalf("b after the release at index %d: %d %s, want 200 with token %d", releaseIndex, r.status, r.raw, releaseIndex)
	}
	// A holder's keep_queued wait is answered from a read too: its grant.
	n = len(f.proposals())
	if r := must(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+b+`","wait":"1s","keep_queued":true}`, 200); r.num("token") != releaseIndex {
		t.Fatalf("b again: %s", r.raw)
	}
	// The other mode is not a retry: it goes through the log (mode_mismatch).
	mustErr(t, ts, "POST", "/v1/locks/job/acquire", `{"session":"`+c+`","wait":"1s","keep_queued":true,"mode":"shared"}`, 409, api.CodeModeMismatch)
	if got := len(f.proposals()) - n; got != 1 {
		t.Fatalf("%d entries for a holder's retry and a mode mismatch, want 1", got)
	}
}

// TestStrictJSON: bodies are matched exactly: a repeated field, a field in
// another case and an unknown field are refused, and the message names the
// field in the API's words, not Go's.
func TestStrictJSON(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	for _, c := range []struct{ path, body, says string }{
		{"/v1/locks/x/acquire", `{"session":"` + a + `","session":"` + a + `"}`, `field "session" appears more than once`},
		{"/v1/locks/x/acquire", `{"Session":"` + a + `"}`, `unknown field "Session"`},
		{"/v1/locks/x/release", `{"session":"` + a + `","token":"7"}`, "token: expected an integer (a JSON number), found a string"},
		{"/v1/locks/x/release", `{"session":"` + a + `","token":-7}`, "token: -7 is not an integer between 0 and"},
		{"/v1/batch", `{"ops":[{"op":"acquire","name":"a","session":"` + a + `","bogus":1}]}`, `ops[0]: unknown field "bogus"`},
		{"/v1/batch", `{"ops":[{"op":"acquire","name":"a","session":"` + a + `","token":0.5}]}`, "ops[0].token: 0.5 is not an integer"},
		{"/v1/sessions", `{"ttl":"10s"} {}`, "trailing data"},
	} {
		r := mustErr(t, ts, "POST", c.path, c.body, 400, api.CodeInvalidArgument)
		msg := r.errMessage()
		if !strings.Contains(msg, c.says) {
			t.Errorf("%s %s: %q does not say %q", c.path, c.body, msg, c.says)
		}
		for _, goWord := range []string{"uint64", "Go ", "api.", "struct", "jsontext"} {
			if strings.Contains(msg, goWord) {
				t.Errorf("%s %s: %q speaks Go (%q)", c.path, c.body, msg, goWord)
			}
		}
	}
}

// TestOpenSessionRetryWithRequestID: a retried open with the same request
// ID answers the same session; another ID opens another.
func TestOpenSessionRetryWithRequestID(t *testing.T) {
	_, ts := newTestServer(t, nil)
	body := `{"ttl":"10s","owner":"a","request_id":"5f0c9e8a1b2d4c6e8f0a1b2c3d4e5f60"}`
	first := must(t, ts, "POST", "/v1/sessions", body, 201)
	again := must(t, ts, "POST", "/v1/sessions", body, 201)
	if first.str("id") == "" || again.str("id") != first.str("id") {
		t.Fatalf("retry with the same request ID: %s then %s", first.raw, again.raw)
	}
	other := must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s","request_id":"another"}`, 201)
	if other.str("id") == first.str("id") {
		t.Fatalf("another request ID answered the same session: %s", other.raw)
	}
	mustErr(t, ts, "POST", "/v1/sessions", `{"ttl":"10s","request_id":"has space"}`, 400, api.CodeInvalidArgument)
	mustErr(t, ts, "POST", "/v1/sessions", `{"ttl":"10s","request_id":"`+strings.Repeat("x", api.MaxRequestIDLen+1)+`"}`, 400, api.CodeInvalidArgument)
}

// TestListLocksPages: GET /v1/locks pages with limit and after; next is the
// cursor of the next page, absent on the last.
func TestListLocksPages(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	for _, n := range []string{"j/1", "j/2", "j/3", "j/4", "k/1"} {
		must(t, ts, "POST", "/v1/locks/"+n+"/acquire", `{"session":"`+a+`"}`, 200)
	}
	var got []string
	after := ""
	for page := 0; page < 10; page++ {
		r := must(t, ts, "GET", "/v1/locks?prefix=j/&limit=3&after="+after, "", 200)
		ls, _ := r.body["locks"].([]any)
		for _, l := range ls {
			got = append(got, l.(map[string]any)["name"].(string))
		}
		after = r.str("next")
		if after == "" {
			break
		}
	}
	if strings.Join(got, ",") != "j/1,j/2,j/3,j/4" {
		t.Fatalf("paged listing: %v", got)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=10001", "limit=x", "after=bad%20name"} {
		mustErr(t, ts, "GET", "/v1/locks?"+q, "", 400, api.CodeInvalidArgument)
	}
}
