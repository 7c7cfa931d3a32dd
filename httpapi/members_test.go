package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// The membership endpoints check their input before asking the node, and
// turn the node's refusals into 409 failed_precondition (the reason first)
// or 404, never a 500.
func TestMembersEndpoints(t *testing.T) {
	f, ts := newTestServer(t, nil)
	f.set(func(f *fakeNode) {
		f.status.Members = []raftnode.MemberStatus{{ID: 1, PeerURL: "http://127.0.0.1:7071", ClientURL: "http://127.0.0.1:7070"}, {ID: 2, PeerURL: "http://127.0.0.1:7081", Learner: true}}
	})
	r := do(t, ts, "GET", api.MembersPath, "")
	if r.status != 200 || !strings.Contains(r.raw, `"learner":true`) || !strings.Contains(r.raw, `"id":1`) {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", api.MembersPath, `{}`, "peer_url"},
		{"POST", api.MembersPath, `{"peer_url":"127.0.0.1:7091"}`, "http://host:port"},
		{"POST", api.MembersPath, `{"peer_url":"http://127.0.0.1:7091/"}`, "nothing after the port"},
		{"POST", api.MembersPath, `{"peer_url":"https://127.0.0.1:7091"}`, "the members' peer URLs are http"},
		{"POST", api.MembersPath, `{"peer_url":"http://127.0.0.1:7091","learner":"yes"}`, "learner"},
		{"DELETE", api.MembersPath + "/x", ``, "positive integer"},
		{"POST", api.MembersPath + "/0/promote", ``, "positive integer"},
	} {
		if r := do(t, ts, tc.method, tc.path, tc.body); r.status != 400 || r.errCode() != api.CodeInvalidArgument || !strings.Contains(r.raw, tc.want) {
			t.Errorf("%s %s %s: %d %s, want 400 naming %q", tc.method, tc.path, tc.body, r.status, r.raw, tc.want)
		}
	}
	// The fake node refuses every change as one in progress.
	r = do(t, ts, "POST", api.MembersPath, `{"peer_url":"http://127.0.0.1:7091","learner":true}`)
	if r.status != 409 || r.errCode() != api.CodeFailedPrecondition || !strings.Contains(r.raw, `"message":"conf_change_in_progress: `) {
		t.Fatalf("a refused add: %d %s", r.status, r.raw)
	}
	if n := len(f.proposals()); n != 0 {
		t.Fatalf("%d proposals for refused changes", n)
	}
}

// POST /v1/locks/{name}/check tells whether a token is the holder's now,
// through a linearizable read, without a log entry.
func TestCheckToken(t *testing.T) {
	f, ts := newTestServer(t, nil)
	sess := must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, 201).str("id")
	g := must(t, ts, "POST", "/v1/locks/jobs%2Fa/acquire", `{"session":"`+sess+`"}`, 200)
	token := g.num("token")
	before := len(f.proposals())
	r := must(t, ts, "POST", "/v1/locks/jobs%2Fa/check", fmt.Sprintf(`{"token":%d}`, token), 200)
	if r.raw == "" || !strings.Contains(r.raw, `"current":true`) || !strings.Contains(r.raw, `"session":"`+sess+`"`) {
		t.Fatalf("check of the holder's token: %s", r.raw)
	}
	if r := must(t, ts, "POST", "/v1/locks/jobs%2Fa/check", fmt.Sprintf(`{"token":%d}`, token-1), 200); !strings.Contains(r.raw, `"current":false`) {
		t.Fatalf("check of an older token: %s", r.raw)
	}
	if r := must(t, ts, "POST", "/v1/locks/free/check", `{"token":5}`, 200); !strings.Contains(r.raw, `"current":false`) || !strings.Contains(r.raw, `"holder":null`) {
		t.Fatalf("check on a free lock: %s", r.raw)
	}
	if n := len(f.proposals()); n != before {
		t.Fatalf("a check proposed %d commands", n-before)
	}
	for _, body := range []string{`{}`, `{"token":0}`, `{"token":"5"}`, ``} {
		if r := do(t, ts, "POST", "/v1/locks/jobs%2Fa/check", body); r.status != 400 || r.errCode() != api.CodeInvalidArgument {
			t.Errorf("check with %q: %d %s", body, r.status, r.raw)
		}
	}
}

// An atomic batch takes every lock in one entry, or none.
func TestAtomicBatch(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, 201).str("id")
	b := must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, 201).str("id")
	must(t, ts, "POST", "/v1/locks/c/acquire", `{"session":"`+b+`"}`, 200)
	before := len(f.proposals())
	body := func(session string, names ...string) string {
		var ops []string
		for _, n := range names {
			ops = append(ops, `{"op":"acquire","name":"`+n+`","session":"`+session+`"}`)
		}
		return `{"atomic":true,"ops":[` + strings.Join(ops, ",") + `]}`
	}
	r := do(t, ts, "POST", api.BatchPath, body(a, "b", "a", "c"))
	if r.status != 409 || r.errCode() != api.CodeLockHeld || !strings.Contains(r.raw, `lock \"c\" is held by session `+b) || !strings.Contains(r.raw, "none of the 3 locks") {
		t.Fatalf("an atomic batch with a held lock: %d %s", r.status, r.raw)
	}
	for _, n := range []string{"a", "b"} {
		if r := must(t, ts, "GET", "/v1/locks/"+n, "", 200); !strings.Contains(r.raw, `"holder":null`) {
			t.Fatalf("lock %s taken by a refused atomic batch: %s", n, r.raw)
		}
	}
	r = must(t, ts, "POST", api.BatchPath, body(a, "b", "a"), 200)
	if strings.Count(r.raw, `"status":200`) != 2 || !strings.Contains(r.raw, `"name":"b"`) {
		t.Fatalf("an atomic batch: %s", r.raw)
	}
	if n := len(f.proposals()) - before; n != 2 {
		t.Fatalf("%d proposals for two atomic batches, want one each", n)
	}
	for _, bad := range []string{
		`{"atomic":true,"ops":[{"op":"acquire","name":"x","session":"` + a + `"},{"op":"release","name":"y","session":"` + a + `","token":3}]}`,
		`{"atomic":true,"ops":[{"op":"acquire","name":"x","session":"` + a + `"},{"op":"acquire","name":"y","session":"` + b + `"}]}`,
		body(a, "x", "x"),
	} {
		if r := do(t, ts, "POST", api.BatchPath, bad); r.status != 400 || r.errCode() != api.CodeInvalidArgument {
			t.Errorf("%s: %d %s", bad, r.status, r.raw)
		}
	}
}

// A session's lock_delay: a holder that expires leaves its lock in its
// lock-delay (GET shows delayed_until, a try answers lock_held saying so)
// until the delay has passed; a bad lock_delay is refused.
func TestLockDelay(t *testing.T) {
	f, ts := newTestServer(t, nil)
	if r := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s","lock_delay":"61s"}`); r.status != 400 || !strings.Contains(r.raw, "lock_delay") {
		t.Fatalf("lock_delay 61s: %d %s", r.status, r.raw)
	}
	a := must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s","lock_delay":"5s"}`, 201).str("id")
	b := must(t, ts, "POST", "/v1/sessions", `{"ttl":"60s"}`, 201).str("id")
	must(t, ts, "POST", "/v1/locks/d/acquire", `{"session":"`+a+`"}`, 200)
	expireAt := func(d time.Duration) {
		f.set(func(f *fakeNode) { f.now = f.now.Add(d) })
		if _, _, err := f.Propose(context.Background(), &lock.Command{Op: lock.OpExpire}); err != nil {
			t.Fatal(err)
		}
	}
	expireAt(11 * time.Second)
	if r := must(t, ts, "GET", "/v1/locks/d", "", 200); !strings.Contains(r.raw, `"holder":null`) || !strings.Contains(r.raw, `"delayed_until":"`) {
		t.Fatalf("a lock whose holder expired with a lock-delay: %s", r.raw)
	}
	if r := do(t, ts, "POST", "/v1/locks/d/acquire", `{"session":"`+b+`"}`); r.status != 409 || r.errCode() != api.CodeLockHeld || !strings.Contains(r.raw, "lock-delay") {
		t.Fatalf("a try during the lock-delay: %d %s", r.status, r.raw)
	}
	expireAt(5 * time.Second)
	must(t, ts, "POST", "/v1/locks/d/acquire", `{"session":"`+b+`"}`, 200)
}

// A bearer token this follower does not know (created a moment ago
// through another node, not applied here yet) is not refused here: the
// request goes to the leader, which decides. A request already forwarded,
// or one on the leader, is refused 401 at once.
func TestUnknownTokenAsksTheLeader(t *testing.T) {
	var got []*http.Request
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Clone(context.Background()))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"99","ttl":"10s"}`))
	}))
	defer leader.Close()
	f, ts, _, _ := authServer(t, nil)
	f.set(func(f *fakeNode) {
		f.status.IsLeader, f.status.Leader, f.status.LeaderClientURL = false, 2, leader.URL
	})
	r := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, bearer("not-applied-here-yet")...)
	if r.status != 201 || len(got) != 1 || got[0].Header.Get(api.HeaderForwarded) == "" || got[0].Header.Get("Authorization") != "Bearer not-applied-here-yet" {
		t.Fatalf("an unknown token on a follower: %d %s, leader saw %d requests", r.status, r.raw, len(got))
	}
	if r := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, append(bearer("unknown"), api.HeaderForwarded, "1")...); r.status != 401 || len(got) != 1 {
		t.Fatalf("a forwarded request with an unknown token: %d %s (leader saw %d)", r.status, r.raw, len(got))
	}
	f.set(func(f *fakeNode) { f.status.IsLeader = true })
	if r := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, bearer("unknown")...); r.status != 401 || len(got) != 1 {
		t.Fatalf("an unknown token on the leader: %d %s (leader saw %d)", r.status, r.raw, len(got))
	}
}

// EndWaits (a node that stops) ends the requests waiting in a queue: the
// session leaves the queue through the log, the request answers 503
// saying so, and EndWaits returns once they have answered.
func TestEndWaits(t *testing.T) {
	f := newFakeNode()
	cfg := DefaultConfig()
	cfg.Node = f
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	a := must(t, ts, "POST", "/v1/sessions", `{"ttl":"30s"}`, 201).str("id")
	b := must(t, ts, "POST", "/v1/sessions", `{"ttl":"30s"}`, 201).str("id")
	must(t, ts, "POST", "/v1/locks/q/acquire", `{"session":"`+a+`"}`, 200)
	answered := make(chan reply, 1)
	go func() {
		answered <- do(t, ts, "POST", "/v1/locks/q/acquire", `{"session":"`+b+`","wait":"30s"}`)
	}()
	await.True(t, 5*time.Second, "b queued and waiting", func() bool {
		return s.waits.Load() == 1 && strings.Contains(must(t, ts, "GET", "/v1/locks/q", "", 200).raw, `"session":"`+b+`"`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.EndWaits(ctx)
	if s.waits.Load() != 0 {
		t.Fatal("EndWaits returned with a wait still running")
	}
	r := <-answered
	if r.status != 503 || !strings.Contains(r.raw, "stopping") || !strings.Contains(r.raw, "left the queue") {
		t.Fatalf("the waiting acquire: %d %s", r.status, r.raw)
	}
	if l := must(t, ts, "GET", "/v1/locks/q", "", 200); strings.Contains(l.raw, `"session":"`+b+`"`) {
		t.Fatalf("b still queued after EndWaits: %s", l.raw)
	}
	// A wait that starts afterwards ends at once the same way.
	if r := do(t, ts, "POST", "/v1/locks/q/acquire", `{"session":"`+b+`","wait":"30s"}`); r.status != 503 {
		t.Fatalf("a wait after EndWaits: %d %s", r.status, r.raw)
	}
}
