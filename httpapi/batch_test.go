package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

// batchBody returns the JSON body of POST /v1/batch with ops.
func batchBody(t *testing.T, ops ...api.BatchOp) string {
	t.Helper()
	b, err := json.Marshal(api.BatchRequest{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// batchAnswer decodes the body of a batch's 200.
func batchAnswer(t *testing.T, r reply) []api.BatchResult {
	t.Helper()
	var out api.BatchResponse
	if err := json.Unmarshal([]byte(r.raw), &out); err != nil {
		t.Fatalf("batch answer %s: %v", r.raw, err)
	}
	return out.Results
}

// TestBatch: each operation of a batch gets the answer its own request
// would get, in request order, and takes effect on its own.
func TestBatch(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := mustID(t, openSession(t, ts, "a"))
	b := mustID(t, openSession(t, ts, "b"))
	held := must(t, ts, "POST", "/v1/locks/held/acquire", `{"session":"`+b.String()+`"}`, 200).num("token")

	res := batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t,
		api.BatchOp{Op: api.BatchAcquire, Name: "x/1", Session: a},
		api.BatchOp{Op: api.BatchAcquire, Name: "held", Session: a},
		api.BatchOp{Op: api.BatchAcquire, Name: "x/2", Session: 999999},
		api.BatchOp{Op: api.BatchRelease, Name: "held", Session: b, Token: held + 1000},
		api.BatchOp{Op: api.BatchAcquire, Name: "x/3", Session: b},
	), 200))
	if len(res) != 5 {
		t.Fatalf("%d results for 5 operations: %+v", len(res), res)
	}
	check := func(i, status int, code string) {
		t.Helper()
		r := res[i]
		switch {
		case r.Status != status:
			t.Errorf("ops[%d]: status %d, want %d (%+v)", i, r.Status, status, r)
		case code == "" && (r.Grant == nil || r.Error != nil):
			t.Errorf("ops[%d]: want a grant and no error: %+v", i, r)
		case code != "" && (r.Error == nil || r.Error.Code != code || r.Error.Message == "" || r.Grant != nil):
			t.Errorf("ops[%d]: want error %q with a message and no grant: %+v", i, code, r)
		}
	}
	check(0, 200, "")
	check(1, 409, api.CodeLockHeld)
	check(2, 404, api.CodeSessionNotFound)
	check(3, 409, api.CodeNotHolder)
	check(4, 200, "")
	if h := res[1].Error.Holder; h == nil || h.Session != b || h.Token != held {
		t.Errorf("lock_held names holder %+v, want session %s token %d", h, b, held)
	}
	g0, g4 := res[0].Grant, res[4].Grant
	if g0.Name != "x/1" || g0.Session != a || g4.Name != "x/3" || g4.Session != b || g0.Token == 0 || g4.Token == 0 || g0.Token == g4.Token {
		t.Fatalf("grants %+v %+v", g0, g4)
	}
	// The grants are real: the state machine agrees, and a retried acquire
	// by the holder answers the same token.
	f.await(t, "both grants", func(m *lock.Machine) bool {
		l1, _ := m.Lock("x/1")
		l3, _ := m.Lock("x/3")
		return l1.Holder != nil && l1.Holder.Token == g0.Token && l3.Holder != nil && l3.Holder.Token == g4.Token
	})
	if tok := must(t, ts, "POST", "/v1/locks/x%2F1/acquire", `{"session":"`+a.String()+`"}`, 200).num("token"); tok != g0.Token {
		t.Fatalf("retried acquire: token %d, want %d", tok, g0.Token)
	}

	// Releases in a batch answer the released token, and free the locks.
	res = batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t,
		api.BatchOp{Op: api.BatchRelease, Name: "x/1", Session: a, Token: g0.Token},
		api.BatchOp{Op: api.BatchRelease, Name: "x/3", Session: b, Token: g4.Token},
		api.BatchOp{Op: api.BatchRelease, Name: "x/3", Session: b, Token: g4.Token},
	), 200))
	if res[0].Status != 200 || res[0].Grant.Token != g0.Token || res[0].Grant.Name != "x/1" {
		t.Fatalf("release: %+v", res[0])
	}
	// The same release twice: exactly one of them succeeded.
	if (res[1].Status == 200) == (res[2].Status == 200) || res[1].Status+res[2].Status != 200+409 {
		t.Fatalf("one release of the same token twice: %+v %+v", res[1], res[2])
	}
	for _, name := range []string{"x/1", "x/3"} {
		if r := must(t, ts, "GET", "/v1/locks/"+strings.ReplaceAll(name, "/", "%2F"), "", 200); r.body["holder"] != nil {
			t.Fatalf("%s still held after the batch released it: %s", name, r.raw)
		}
	}

	// An operation whose outcome is unknown says so (503 timeout), and
	// the others keep their own answers.
	f.set(func(f *fakeNode) { f.outcomeUnknown = true })
	res = batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t, api.BatchOp{Op: api.BatchAcquire, Name: "y", Session: a}), 200))
	if res[0].Status != http.StatusServiceUnavailable || res[0].Error == nil || res[0].Error.Code != api.CodeTimeout {
		t.Fatalf("unknown outcome: %+v", res[0])
	}
	// Leadership lost after the check: 503 unavailable per operation.
	f.set(func(f *fakeNode) {
		f.outcomeUnknown = false
		f.notLeader = &raftnode.NotLeaderError{LeaderID: 2, LeaderClientURL: "http://other:7070"}
	})
	res = batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t, api.BatchOp{Op: api.BatchAcquire, Name: "y", Session: a}), 200))
	if res[0].Status != http.StatusServiceUnavailable || res[0].Error == nil || res[0].Error.Code != api.CodeUnavailable {
		t.Fatalf("leadership lost: %+v", res[0])
	}
}

// TestBatchElections: campaigns (tries) and resigns in a batch get the
// answers of their own requests: a leadership, not_leader naming the
// leader, session_not_found; a resign hands the election to nobody (a
// try never queued), and a resign with a stale term is refused.
func TestBatchElections(t *testing.T) {
	_, ts := newTestServer(t, nil)
	a := mustID(t, openSession(t, ts, "a"))
	b := mustID(t, openSession(t, ts, "b"))
	res := batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t,
		api.BatchOp{Op: api.BatchCampaign, Name: "web", Session: a, Value: "va"},
		api.BatchOp{Op: api.BatchCampaign, Name: "db", Session: b},
		api.BatchOp{Op: api.BatchCampaign, Name: "x", Session: 999999},
		api.BatchOp{Op: api.BatchAcquire, Name: "l", Session: a},
	), 200))
	la, lb := res[0].Leadership, res[1].Leadership
	if res[0].Status != 200 || la == nil || la.Name != "web" || la.Session != a || la.Value != "va" || la.Term == 0 || res[0].Grant != nil {
		t.Fatalf("campaign of a free election: %+v", res[0])
	}
	if res[1].Status != 200 || lb == nil || lb.Name != "db" || lb.Session != b || lb.Term == 0 {
		t.Fatalf("campaign with no value: %+v", res[1])
	}
	if res[2].Status != 404 || res[2].Error == nil || res[2].Error.Code != api.CodeSessionNotFound {
		t.Fatalf("campaign of a missing session: %+v", res[2])
	}
	if res[3].Status != 200 || res[3].Grant == nil || res[3].Leadership != nil {
		t.Fatalf("acquire beside campaigns: %+v", res[3])
	}
	// b's try in a led election: not_leader naming a; a's retry: its term.
	res = batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t,
		api.BatchOp{Op: api.BatchCampaign, Name: "web", Session: b, Value: "vb"},
		api.BatchOp{Op: api.BatchCampaign, Name: "web", Session: a, Value: "va"},
	), 200))
	if e := res[0].Error; res[0].Status != 409 || e == nil || e.Code != api.CodeNotLeader || e.Leader == nil || e.Leader.Session != a || e.Queued {
		t.Fatalf("campaign in a led election: %+v", res[0])
	}
	if l := res[1].Leadership; res[1].Status != 200 || l == nil || l.Term != la.Term {
		t.Fatalf("the leader's retried campaign: %+v, want term %d", res[1], la.Term)
	}
	// Resigns: a stale term is refused, the right one ends the leadership.
	res = batchAnswer(t, must(t, ts, "POST", api.BatchPath, batchBody(t,
		api.BatchOp{Op: api.BatchResign, Name: "web", Session: a, Term: la.Term + 1000},
		api.BatchOp{Op: api.BatchResign, Name: "db", Session: b, Term: lb.Term},
	), 200))
	if e := res[0].Error; res[0].Status != 409 || e == nil || e.Code != api.CodeNotLeader {
		t.Fatalf("resign with a stale term: %+v", res[0])
	}
	if l := res[1].Leadership; res[1].Status != 200 || l == nil || l.Name != "db" || l.Session != b || l.Term != lb.Term {
		t.Fatalf("resign: %+v", res[1])
	}
	if r := must(t, ts, "GET", "/v1/elections/db", "", 200); r.body["leader"] != nil {
		t.Fatalf("db still led after the batched resign: %s", r.raw)
	}
	if r := must(t, ts, "GET", "/v1/elections/web", "", 200); !strings.Contains(r.raw, `"value":"va"`) {
		t.Fatalf("web after a stale resign: %s", r.raw)
	}
}

// TestBatchOpsRunConcurrently: the operations of a batch are proposed
// concurrently, not one after the other. The fake node holds the first
// proposal until every other one is waiting too.
func TestBatchOpsRunConcurrently(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := mustID(t, openSession(t, ts, "a"))
	const n = 16
	ops := make([]api.BatchOp, n)
	for i := range ops {
		ops[i] = api.BatchOp{Op: api.BatchAcquire, Name: fmt.Sprintf("c/%d", i), Session: a}
	}
	waiting := make(chan struct{}, n)
	release := make(chan struct{})
	gate := &gatedNode{fakeNode: f, waiting: waiting, release: release}
	srv := serveOver(t, gate, nil, nil)
	done := make(chan reply, 1)
	go func() { done <- do(t, srv, "POST", api.BatchPath, batchBody(t, ops...)) }()
	for range n {
		<-waiting // every operation reached Propose while none has returned
	}
	close(release)
	r := <-done
	res := batchAnswer(t, r)
	for i, x := range res {
		if x.Status != 200 {
			t.Fatalf("ops[%d]: %+v", i, x)
		}
	}
}

// TestBatchForwarded: a follower forwards a batch to the leader whole; with
// no leader it answers 503 and proposes nothing.
func TestBatchForwarded(t *testing.T) {
	leader, lts := newTestServer(t, nil)
	leader.set(func(f *fakeNode) { f.status.LeaderClientURL = lts.URL })
	a := mustID(t, openSession(t, lts, "a"))
	follower, fts := newTestServer(t, nil)
	follower.set(func(f *fakeNode) {
		f.notLeader = &raftnode.NotLeaderError{LeaderID: 1, LeaderClientURL: lts.URL}
		f.status.IsLeader = false
		f.status.LeaderClientURL = lts.URL
	})
	res := batchAnswer(t, must(t, fts, "POST", api.BatchPath, batchBody(t, api.BatchOp{Op: api.BatchAcquire, Name: "f", Session: a}), 200))
	if len(res) != 1 || res[0].Status != 200 || res[0].Grant.Token == 0 {
		t.Fatalf("forwarded batch: %+v", res)
	}
	if _, n := follower.snapshot(); n != 0 {
		t.Fatalf("the follower applied %d commands", n)
	}
	follower.set(func(f *fakeNode) { f.status.Leader = 0; f.status.LeaderClientURL = "" })
	if r := do(t, fts, "POST", api.BatchPath, batchBody(t, api.BatchOp{Op: api.BatchAcquire, Name: "f", Session: a})); r.status != 503 || r.errCode() != api.CodeUnavailable {
		t.Fatalf("batch with no leader: %d %s", r.status, r.raw)
	}
	if _, n := follower.snapshot(); n != 0 {
		t.Fatalf("the follower applied %d commands", n)
	}
}

// TestBatchBadInput: a batch with anything wrong is refused whole with a
// 4xx JSON error that names the operation, proposes nothing and leaves the
// state byte-identical.
func TestBatchBadInput(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	A := `"` + a + `"`
	acq := `{"op":"acquire","name":"n","session":` + A + `}`
	const (
		inv = api.CodeInvalidArgument
		mna = api.CodeMethodNotAllowed
		big = api.CodeTooLarge
	)
	tooMany := `{"ops":[` + acq + strings.Repeat(","+acq, api.MaxBatchOps) + `]}`
	huge := `{"ops":[` + acq + strings.Repeat(","+acq, 1<<15) + `]}`
	path := api.BatchPath
	rows := []badRow{
		{method: "POST", path: path, body: "", status: 400, code: inv},
		{method: "POST", path: path, body: "{", status: 400, code: inv},
		{method: "POST", path: path, body: `{}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":null}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[null]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[` + acq + `,null]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[` + acq + `,{}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"steal","name":"n","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"","name":"n","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"a b","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"` + strings.Repeat("n", api.MaxLockNameLen+1) + `","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n","session":"0"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n","session":` + a + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n","session":` + A + `,"token":3}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n","session":` + A + `,"wait":"5s"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n","ttl":"10s"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"release","name":"n","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"release","name":"n","session":` + A + `,"token":0}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"release","name":"n","session":` + A + `,"token":-1}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"release","name":"n","session":` + A + `,"token":"7"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[` + acq + `],"transaction":true}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"campaign","name":"n","session":` + A + `,"token":3}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"campaign","name":"n","session":` + A + `,"term":3}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"campaign","name":"n","session":` + A + `,"keep_queued":true}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"campaign","name":"n","session":` + A + `,"value":"` + strings.Repeat("v", api.MaxValueSize+1) + `"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"campaign","name":"n"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"resign","name":"n","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"resign","name":"n","session":` + A + `,"term":3,"value":"v"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"acquire","name":"n","session":` + A + `,"value":"v"}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[{"op":"release","name":"n","session":` + A + `,"token":1,"term":2}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"atomic":true,"ops":[{"op":"campaign","name":"n","session":` + A + `}]}`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":[` + acq + `]}x`, status: 400, code: inv},
		{method: "POST", path: path, body: `{"ops":` + acq + `}`, status: 400, code: inv},
		{method: "POST", path: path, body: `[` + acq + `]`, status: 400, code: inv},
		{method: "POST", path: path, body: `null`, status: 400, code: inv},
		{method: "POST", path: path, body: tooMany, status: 400, code: inv},
		{method: "POST", path: path, body: huge, status: 413, code: big},
		{method: "GET", path: path, status: 405, code: mna},
		{method: "PUT", path: path, body: `{"ops":[` + acq + `]}`, status: 405, code: mna},
		{method: "DELETE", path: path, status: 405, code: mna},
	}
	checkBadRows(t, f, ts, rows)
	// The messages say what is wrong and which operation.
	for body, want := range map[string]string{
		`{"ops":[]}`: "ops is required",
		tooMany:      "at most 1000",
		`{"ops":[` + acq + `,{"op":"steal","name":"n","session":` + A + `}]}`:              `ops[1]: op "steal"`,
		`{"ops":[` + acq + `,{"op":"release","name":"n","session":` + A + `}]}`:            "ops[1]: token is required",
		`{"ops":[{"op":"acquire","name":"n","session":` + A + `,"token":3}]}`:              "ops[0]: token is only for a release",
		`{"ops":[` + acq + `,` + acq + `,{"op":"acquire","name":"","session":` + A + `}]}`: "ops[2]: lock name is empty",
	} {
		if r := do(t, ts, "POST", path, body); !strings.Contains(r.errMessage(), want) {
			t.Errorf("%.60s: message %q, want it to contain %q", body, r.errMessage(), want)
		}
	}
}

// gatedNode wraps a fakeNode: each Propose reports on waiting, then blocks
// until release is closed.
type gatedNode struct {
	*fakeNode
	waiting chan<- struct{}
	release <-chan struct{}
}

func (g *gatedNode) Propose(ctx context.Context, cmd *lock.Command) (lock.Result, uint64, error) {
	g.waiting <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return lock.Result{}, 0, ctx.Err()
	}
	return g.fakeNode.Propose(ctx, cmd)
}

// allNode wraps a fakeNode with ProposeAll, which records the commands of
// each call and proposes them one by one.
type allNode struct {
	*fakeNode
	mu    sync.Mutex
	calls [][]string // the names of each call's commands
}

func (a *allNode) ProposeAll(ctx context.Context, cmds []*lock.Command) []raftnode.Outcome {
	var names []string
	out := make([]raftnode.Outcome, len(cmds))
	for i, c := range cmds {
		names = append(names, c.Name)
		out[i].Result, out[i].Index, out[i].Err = a.Propose(ctx, c)
	}
	a.mu.Lock()
	a.calls = append(a.calls, names)
	a.mu.Unlock()
	return out
}

// TestBatchGoesToTheLoopWhole: over a node that has ProposeAll (the real
// one does), a batch hands all its operations in one call, in order, and
// each result is still its own. (An operation the principal may not do
// stays out of the call: client's TestBatchPermissionsAgainstServer.)
func TestBatchGoesToTheLoopWhole(t *testing.T) {
	f, _ := newTestServer(t, nil)
	node := &allNode{fakeNode: f}
	srv := serveOver(t, node, nil, nil)
	a := mustID(t, openSession(t, srv, "a"))
	ops := []api.BatchOp{
		{Op: api.BatchAcquire, Name: "w/1", Session: a},
		{Op: api.BatchAcquire, Name: "w/2", Session: a},
		{Op: api.BatchRelease, Name: "w/3", Session: a, Token: 7},
	}
	res := batchAnswer(t, do(t, srv, "POST", api.BatchPath, batchBody(t, ops...)))
	if res[0].Status != 200 || res[1].Status != 200 || res[2].Status != 409 {
		t.Fatalf("results %+v: want two grants and a not_holder", res)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.calls) != 1 || !slices.Equal(node.calls[0], []string{"w/1", "w/2", "w/3"}) {
		t.Fatalf("ProposeAll calls %q, want one with w/1, w/2, w/3", node.calls)
	}
}
