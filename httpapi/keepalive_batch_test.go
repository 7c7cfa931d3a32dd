package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// ids returns the JSON body {"ids":[...]} of a batched keep-alive.
func idsBody(ids ...string) string {
	b, _ := json.Marshal(map[string][]string{"ids": ids})
	return string(b)
}

// keepAliveAnswer decodes the body of a batched keep-alive's 200.
func keepAliveAnswer(t *testing.T, r reply) api.KeepAliveResponse {
	t.Helper()
	var out api.KeepAliveResponse
	if err := json.Unmarshal([]byte(r.raw), &out); err != nil {
		t.Fatalf("keep-alive answer %s: %v", r.raw, err)
	}
	if out.Sessions == nil || out.Expired == nil || !strings.Contains(r.raw, `"sessions":[`) || !strings.Contains(r.raw, `"expired":[`) {
		t.Fatalf("keep-alive answer with a null list: %s", r.raw)
	}
	return out
}

func TestKeepAliveBatch(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	r := must(t, ts, "POST", "/v1/sessions", `{"ttl":"20s"}`, 201)
	c := r.str("id")
	deadline := func(id string) time.Time {
		t.Helper()
		d, err := time.Parse(time.RFC3339Nano, must(t, ts, "GET", "/v1/sessions/"+id, "", 200).str("deadline"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	da, dc := deadline(a), deadline(c)

	// One request renews a and c, and reports 999999 (never opened) as
	// expired, in request order; b is left alone.
	f.set(func(f *fakeNode) { f.now = f.now.Add(3 * time.Second) })
	_, n0 := f.snapshot()
	out := keepAliveAnswer(t, must(t, ts, "POST", "/v1/sessions/keepalive", idsBody(c, "999999", a), 200))
	want := []api.SessionResponse{{ID: mustID(t, c), TTL: api.Duration(20 * time.Second)}, {ID: mustID(t, a), TTL: api.Duration(10 * time.Second)}}
	if len(out.Sessions) != 2 || out.Sessions[0] != want[0] || out.Sessions[1] != want[1] {
		t.Fatalf("renewed %+v, want %+v", out.Sessions, want)
	}
	if len(out.Expired) != 1 || out.Expired[0] != 999999 {
		t.Fatalf("expired %v, want [999999]", out.Expired)
	}
	// It was one proposal: one OpKeepAlive with every ID.
	cmds := f.proposals()
	if len(cmds) != n0+1 || cmds[n0].Op != lock.OpKeepAlive || len(cmds[n0].Sessions) != 3 {
		t.Fatalf("proposals after the batch: %+v", cmds[n0:])
	}
	if got := deadline(a); !got.Equal(da.Add(3 * time.Second)) {
		t.Fatalf("deadline of a %v, want %v", got, da.Add(3*time.Second))
	}
	if got := deadline(c); !got.Equal(dc.Add(3 * time.Second)) {
		t.Fatalf("deadline of c %v, want %v", got, dc.Add(3*time.Second))
	}

	// After b expired, it is reported as such, and a is still renewed.
	f.set(func(f *fakeNode) { f.now = f.now.Add(8 * time.Second) })
	if _, _, err := f.Propose(context.Background(), &lock.Command{Op: lock.OpExpire}); err != nil {
		t.Fatal(err)
	}
	out = keepAliveAnswer(t, must(t, ts, "POST", "/v1/sessions/keepalive", idsBody(b, a), 200))
	if len(out.Sessions) != 1 || out.Sessions[0].ID != mustID(t, a) || len(out.Expired) != 1 || out.Expired[0] != mustID(t, b) {
		t.Fatalf("after b expired: %+v", out)
	}
	// Every ID gone: 200 with only expired ones (not a 404: the answer is
	// per session).
	must(t, ts, "DELETE", "/v1/sessions/"+a, "", 200)
	out = keepAliveAnswer(t, must(t, ts, "POST", "/v1/sessions/keepalive", idsBody(a), 200))
	if len(out.Sessions) != 0 || len(out.Expired) != 1 {
		t.Fatalf("all gone: %+v", out)
	}

	// The largest batch is accepted.
	many := make([]string, api.MaxKeepAliveIDs)
	for i := range many {
		many[i] = strconv.Itoa(1_000_000 + i)
	}
	many[0] = c
	out = keepAliveAnswer(t, must(t, ts, "POST", "/v1/sessions/keepalive", idsBody(many...), 200))
	if len(out.Sessions) != 1 || len(out.Expired) != api.MaxKeepAliveIDs-1 {
		t.Fatalf("largest batch: %d renewed, %d expired", len(out.Sessions), len(out.Expired))
	}

	// The single-session endpoint still works.
	if r := must(t, ts, "POST", "/v1/sessions/"+c+"/keepalive", "", 200); r.str("id") != c || r.str("ttl") != "20s" {
		t.Fatalf("single keep-alive: %s", r.raw)
	}
}

func mustID(t *testing.T, s string) api.SessionID {
	t.Helper()
	id, err := api.ParseSessionID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestKeepAliveBatchMerged: concurrent batches are merged by the node, and
// each caller still gets only its own sessions back.
func TestKeepAliveBatchConcurrent(t *testing.T) {
	_, ts := newTestServer(t, nil)
	var ids []string
	for i := range 8 {
		ids = append(ids, openSession(t, ts, "s"+strconv.Itoa(i)))
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			mine := []string{ids[2*i], ids[2*i+1], strconv.Itoa(900000 + i)}
			r := do(t, ts, "POST", "/v1/sessions/keepalive", idsBody(mine...))
			if r.status != 200 {
				t.Errorf("batch %d: %d %s", i, r.status, r.raw)
				return
			}
			out := keepAliveAnswer(t, r)
			if len(out.Sessions) != 2 || out.Sessions[0].ID.String() != mine[0] || out.Sessions[1].ID.String() != mine[1] ||
				len(out.Expired) != 1 || out.Expired[0].String() != mine[2] {
				t.Errorf("batch %d: %+v", i, out)
			}
		})
	}
	wg.Wait()
}

func TestKeepAliveBatchForwarded(t *testing.T) {
	leader, lts := newTestServer(t, nil)
	leader.set(func(f *fakeNode) { f.status.LeaderClientURL = lts.URL })
	a := openSession(t, lts, "a")
	follower, fts := newTestServer(t, nil)
	follower.set(func(f *fakeNode) {
		f.notLeader = &raftnode.NotLeaderError{LeaderID: 1, LeaderClientURL: lts.URL}
		f.status.IsLeader = false
		f.status.LeaderClientURL = lts.URL
	})
	out := keepAliveAnswer(t, must(t, fts, "POST", "/v1/sessions/keepalive", idsBody(a, "77"), 200))
	if len(out.Sessions) != 1 || out.Sessions[0].ID.String() != a || len(out.Expired) != 1 || out.Expired[0] != 77 {
		t.Fatalf("forwarded batch: %+v", out)
	}
	if _, n := follower.snapshot(); n != 0 {
		t.Fatalf("the follower applied %d commands", n)
	}
	// No leader: 503, nothing proposed.
	follower.set(func(f *fakeNode) { f.notLeader = nil; f.noLeader = true })
	mustErr(t, fts, "POST", "/v1/sessions/keepalive", idsBody(a), 503, api.CodeUnavailable)
}

// TestKeepAliveBatchBadInput: every malformed batch answers 4xx with a JSON
// error, proposes nothing and leaves the state byte-identical.
func TestKeepAliveBatchBadInput(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	A := `"` + a + `"`
	const (
		inv = api.CodeInvalidArgument
		mna = api.CodeMethodNotAllowed
		big = api.CodeTooLarge
	)
	tooMany := make([]string, api.MaxKeepAliveIDs+1)
	for i := range tooMany {
		tooMany[i] = strconv.Itoa(i + 1)
	}
	huge := `{"ids":[` + A + strings.Repeat(`,"1"`, 1<<18) + `]}`
	path := "/v1/sessions/keepalive"
	rows := []badRow{
		{method: "POST", path: path, body: "", status: 400, code: inv},
		{method: "POST", path: path, body: "  ", status: 400, code: inv},
		{method: "POST", path: path, body: "{", status: 400, code: inv},
		{method: "POST", path: path, body: `{}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":null}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[null]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[` + A + `,null]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["0"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["-1"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["18446744073709551616"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["1e3"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["abc"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[""]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[` + a + `]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[true]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[[` + A + `]]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":{"a":` + A + `}}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[` + A + `,` + A + `]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["5","6","5"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":["5","05"]}`, status: 400, code: inv},
		{method: "POST", path: path, body: idsBody(tooMany...), status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[` + A + `],"ttl":"10s"}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[` + A + `]}x`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ids":[` + A + `]}{"ids":[` + A + `]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `[` + A + `]`, status: 400, code: inv},
		{method: "POST", path: path, body: `null`, status: 400, code: inv},
		{method: "POST", path: path, body: huge, status: 413, code: big},
		{method: "PUT", path: path, body: idsBody(a), status: 405, code: mna},
		{method: "PATCH", path: path, body: idsBody(a), status: 405, code: mna},
		// GET and DELETE reach the /v1/sessions/{id} routes, where
		// "keepalive" is not a session ID.
		{method: "GET", path: path, status: 400, code: inv},
		{method: "DELETE", path: path, status: 400, code: inv},
	}
	checkBadRows(t, f, ts, rows)
	// The messages say what is wrong.
	for body, want := range map[string]string{
		`{"ids":[]}`:               "ids is required",
		`{"ids":["5","6","5"]}`:    "session 5 appears more than once",
		idsBody(tooMany...):        "at most 10000",
		`{"ids":[` + A + `,null]}`: "ids[1]",
	} {
		if r := do(t, ts, "POST", path, body); !strings.Contains(r.errMessage(), want) {
			t.Errorf("%.60s: message %q, want it to contain %q", body, r.errMessage(), want)
		}
	}
	// A batch whose renewal was applied but whose TTLs cannot be read
	// answers 503 timeout: retrying is safe.
	f.set(func(f *fakeNode) { f.onPropose = func(f *fakeNode, _ *lock.Command) { f.stopped = true } })
	r := do(t, ts, "POST", path, idsBody(a))
	if r.status != http.StatusServiceUnavailable || r.errCode() != api.CodeTimeout {
		t.Fatalf("read failure after the renewal: %d %s", r.status, r.raw)
	}
}
