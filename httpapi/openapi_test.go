package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/raftnode"
)

// GET /v1/openapi.json answers the document built into the binary, without
// a principal even once auth is on, and it is a valid OpenAPI 3.0.3
// document whose operations all have a unique operationId.
func TestOpenAPIDocument(t *testing.T) {
	f, ts := newTestServer(t, nil)
	enableAuth(t, f)
	r := must(t, ts, "GET", api.OpenAPIPath, "", 200)
	if !bytes.Equal([]byte(r.raw), api.OpenAPI()) {
		t.Fatal("GET /v1/openapi.json does not answer api.OpenAPI()")
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(r.raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	ids := map[string]string{}
	for path, pi := range doc.Paths.Map() {
		for method, op := range pi.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", where)
			}
			if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share the operationId %q", where, other, op.OperationID)
			}
			ids[op.OperationID] = where
			for code, resp := range op.Responses.Map() {
				if resp.Value.Headers[api.HeaderLeader] == nil {
					t.Errorf("%s: its %s answer does not document %s", where, code, api.HeaderLeader)
				}
			}
		}
	}
}

// The document's error responses list the codes of httpapi's error table
// (errors.go) under their statuses, and nothing else.
func TestOpenAPIErrorCodes(t *testing.T) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{http.StatusMethodNotAllowed: nil}
	for _, row := range errorTable {
		if !slices.Contains(want[row.status], row.code) {
			want[row.status] = append(want[row.status], row.code)
		}
	}
	for status, codes := range want {
		slices.Sort(codes)
		got := slices.Sorted(slices.Values(sp.errCodes[status]))
		if status == http.StatusMethodNotAllowed {
			codes = []string{api.CodeMethodNotAllowed} // echo's own 405 (echoErrors)
		}
		if !slices.Equal(got, codes) {
			t.Errorf("status %d: the document lists %q, errors.go %q", status, got, codes)
		}
	}
	for status := range sp.errCodes {
		if _, ok := want[status]; !ok {
			t.Errorf("the document has error codes for status %d, which errors.go never answers", status)
		}
	}
}

// Every route echo serves is in the document, and every operation of the
// document is a route of echo; every test through serveOver (and
// TestOpenAPIOperations for what the others do not reach) checks what they
// answer.
func TestOpenAPIRoutes(t *testing.T) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Node = newFakeNode()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// echoPattern matches the document's path templates that an echo
	// route serves: ":id" is one segment, "*" the rest of the path (a
	// name, with an action for POST and observe).
	echoPattern := func(path string) *regexp.Regexp {
		var b strings.Builder
		for i, seg := range strings.Split(path, "/") {
			if i > 0 {
				b.WriteString("/")
			}
			switch {
			case seg == "*":
				b.WriteString(".+")
			case strings.HasPrefix(seg, ":"):
				b.WriteString(`\{[a-z]+\}`)
			default:
				b.WriteString(regexp.QuoteMeta(seg))
			}
		}
		return regexp.MustCompile("^" + b.String() + "$")
	}
	type route struct {
		method string
		re     *regexp.Regexp
		path   string
	}
	var routes []route
	for _, r := range s.e.Routes() {
		if isUIPath(r.Path) {
			// /ui and /ui/* serve the web console's static files
			// (ui.go): pages, scripts and styles, not the API. They are
			// left out of the document, which says so in its
			// description, and out of its validation (specCheck).
			continue
		}
		routes = append(routes, route{r.Method, echoPattern(r.Path), r.Path})
	}
	ops := map[string]bool{}
	for path, pi := range sp.doc.Paths.Map() {
		for method := range pi.Operations() {
			ops[method+" "+path] = true
			served := false
			for _, r := range routes {
				served = served || (r.method == method && r.re.MatchString(path))
			}
			if !served {
				t.Errorf("the document has %s %s, which no echo route serves", method, path)
			}
		}
	}
	for _, r := range routes {
		documented := false
		for op := range ops {
			method, path, _ := strings.Cut(op, " ")
			documented = documented || (r.method == method && r.re.MatchString(path))
		}
		if !documented {
			t.Errorf("echo serves %s %s, which the document does not describe", r.method, r.path)
		}
	}
}

// specPath writes names the way the document does: one segment, '/' as
// %2F, the action apart.
func TestOpenAPISpecPath(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1/locks/jobs/nightly/acquire", "/v1/locks/jobs%2Fnightly/acquire"},
		{"POST", "/v1/locks/jobs%2Fnightly/acquire", "/v1/locks/jobs%2Fnightly/acquire"},
		{"POST", "/v1/locks/x%2Frelease/acquire", "/v1/locks/x%2Frelease/acquire"},
		{"POST", "/v1/locks/x/release/acquire", "/v1/locks/x%2Frelease/acquire"},
		{"POST", "/v1/locks/job", "/v1/locks/job"},
		{"GET", "/v1/locks/a/b/c", "/v1/locks/a%2Fb%2Fc"},
		{"GET", "/v1/locks/a/acquire", "/v1/locks/a%2Facquire"},
		{"GET", "/v1/elections/a/b/observe", "/v1/elections/a%2Fb/observe"},
		{"POST", "/v1/elections/a/b/campaign", "/v1/elections/a%2Fb/campaign"},
		{"POST", "/v1/semaphores/a/b/check", "/v1/semaphores/a%2Fb/check"},
		{"GET", "/v1/locks", "/v1/locks"},
		{"GET", "/v1/sessions/12", "/v1/sessions/12"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if got := specPath(r); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

// The check itself: what it must catch.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(method, path, body string, status int, ct, answer string) string {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		tb := &teeBody{r: r.Body}
		if body == "" {
			tb.eof = true
		}
		_, _ = io.ReadAll(tb)
		cw := &captureWriter{w: httptest.NewRecorder()}
		cw.Header().Set("Content-Type", ct)
		cw.Header().Set(api.HeaderLeader, "http://127.0.0.1:7070")
		cw.WriteHeader(status)
		_, _ = cw.Write([]byte(answer))
		return sp.check(r, tb, cw)
	}
	const js = "application/json"
	for _, tc := range []struct {
		name                string
		method, path, body  string
		status              int
		ct, answer, wantMsg string
	}{
		{"a valid exchange", "POST", "/v1/locks/jobs/a/acquire", `{"session":"42"}`, 200, js, `{"name":"jobs/a","session":"42","token":7}`, ""},
		{"an undocumented path answered", "GET", "/v1/healthz", "", 200, js, `{"status":"ok","extra":1}`, "no operation"},
		{"an answer with an unknown field", "GET", "/healthz", "", 200, js, `{"status":"ok","extra":1}`, "does not match"},
		{"a session ID as a number", "POST", "/v1/locks/a/acquire", `{"session":"42"}`, 200, js, `{"name":"a","session":42,"token":7}`, "does not match"},
		{"an undocumented status", "GET", "/healthz", "", 201, js, `{"status":"ok"}`, "status is not supported"},
		{"a code its status does not list", "POST", "/v1/locks/a/release", `{"session":"42","token":3}`, 409, js, `{"error":{"code":"session_not_found","message":"m"}}`, "lists"},
		{"an invalid request answered 200", "POST", "/v1/sessions", `{"ttl":10}`, 201, js, `{"id":"1","ttl":"10s"}`, "the request does not match"},
		{"an invalid request refused", "POST", "/v1/sessions", `{"ttl":10}`, 400, js, `{"error":{"code":"invalid_argument","message":"m"}}`, ""},
		{"an invalid request refused for another reason", "POST", "/v1/sessions", `{"ttl":10}`, 503, js, `{"error":{"code":"unavailable","message":"m"}}`, "the request does not match"},
		{"an unknown path refused", "GET", "/v1/nope", "", 404, js, `{"error":{"code":"not_found","message":"m"}}`, ""},
		{"an unknown path refused with a bad body", "GET", "/v1/nope", "", 404, "text/plain", `404 page not found`, "not an error object"},
		{"an SSE event of the document", "GET", "/v1/elections/e/observe", "", 200, "text/event-stream", "id: 3\nevent: state\ndata: {\"revision\":3,\"type\":\"state\",\"leader\":null}\n\n: keep-alive\n\n", ""},
		{"an SSE event it does not know", "GET", "/v1/elections/e/observe", "", 200, "text/event-stream", "event: leader\ndata: {}\n\n", "not in the document"},
		{"an SSE event with other data", "GET", "/v1/watch", "", 200, "text/event-stream", "id: 3\nevent: change\ndata: {\"revision\":3}\n\n", "does not match"},
	} {
		got := exchange(tc.method, tc.path, tc.body, tc.status, tc.ct, tc.answer)
		if tc.wantMsg == "" && got != "" || tc.wantMsg != "" && !strings.Contains(got, tc.wantMsg) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.wantMsg)
		}
	}
}

// opsNode is a fake node whose membership changes and leader transfers
// succeed, for the operations that the fake node refuses.
type opsNode struct {
	*fakeNode
}

func (n opsNode) ChangeMembership(ctx context.Context, ch raftnode.MemberChange) (uint64, error) {
	var id uint64
	n.set(func(f *fakeNode) {
		switch ch.Kind {
		case raftnode.MemberAdd, raftnode.MemberAddLearner:
			id = uint64(len(f.status.Members) + 1)
			f.status.Members = append(f.status.Members, raftnode.MemberStatus{ID: id, PeerURL: ch.PeerURL, Learner: ch.Kind == raftnode.MemberAddLearner})
		case raftnode.MemberPromote:
			for i := range f.status.Members {
				if f.status.Members[i].ID == ch.ID {
					f.status.Members[i].Learner = false
				}
			}
		case raftnode.MemberRemove:
			f.status.Members = slices.DeleteFunc(f.status.Members, func(m raftnode.MemberStatus) bool { return m.ID == ch.ID })
		}
	})
	return id, nil
}

func (n opsNode) TransferLeadership(ctx context.Context, to uint64) error {
	n.set(func(f *fakeNode) { f.status.Leader, f.status.IsLeader, f.status.Term = 2, false, 2 })
	return nil
}

// Every operation answers as the document says, for the operations the
// other tests do not reach (they check the rest): the validation of
// serveOver checks each exchange.
func TestOpenAPIOperations(t *testing.T) {
	n := opsNode{newFakeNode()}
	ts := serveOver(t, n, nil, nil)
	root := bearer(rootToken)
	req := func(method, path, body string, want int) reply {
		t.Helper()
		r := do(t, ts, method, path, body, root...)
		if r.status != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, r.status, r.raw, want)
		}
		return r
	}
	req("GET", "/healthz", "", 200)
	req("GET", "/readyz", "", 200)
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req("GET", api.WhoAmIPath, "", 200)
	enableAuth(t, n.fakeNode)
	req("GET", api.WhoAmIPath, "", 200)
	req("POST", api.AuthRolesPath, `{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["read","lock"]}]}`, 201)
	req("POST", api.AuthRolesPath, `{"name":"none"}`, 201)
	req("GET", api.AuthRolesPath, "", 200)
	req("POST", api.AuthUsersPath, `{"name":"alice","roles":["jobs"]}`, 201)
	req("POST", api.AuthUsersPath, `{"name":"carol"}`, 201)
	req("GET", api.AuthUsersPath, "", 200)
	tok := req("POST", api.AuthTokensPath, `{"user":"alice"}`, 201).str("id")
	req("GET", api.AuthTokensPath+"?user=alice", "", 200)
	req("DELETE", api.AuthTokensPath+"/"+tok, "", 200)
	req("DELETE", api.AuthTokensPath+"/"+tok, "", 404)
	req("DELETE", api.AuthUsersPath+"/carol", "", 200)
	req("DELETE", api.AuthUsersPath+"/carol", "", 404)
	req("DELETE", api.AuthRolesPath+"/none", "", 200)
	req("POST", api.AuthEnablePath, "", 200)
	req("GET", api.LimitsPath, "", 200)
	req("POST", api.LimitsPath, `{}`, 200)

	sess := req("POST", "/v1/sessions", `{"ttl":"10s","owner":"o","request_id":"r-1","lock_delay":"1s"}`, 201).str("id")
	req("GET", "/v1/sessions?owner=o&limit=1", "", 200)
	req("POST", "/v1/semaphores/jobs%2Fs/acquire", `{"session":"`+sess+`","limit":1}`, 200)
	req("POST", "/v1/semaphores/jobs/s/check", `{"token":1}`, 200)
	req("POST", "/v1/semaphores/jobs/s/acquire", `{"session":"999","limit":1}`, 404)
	req("POST", "/v1/semaphores/jobs/s/cancel", `{"session":"`+sess+`"}`, 200)
	req("GET", "/v1/semaphores?prefix=jobs/", "", 200)
	req("GET", "/v1/semaphores/jobs%2Fs", "", 200)
	req("POST", "/v1/locks/jobs/a/acquire", `{"session":"`+sess+`","mode":"shared"}`, 200)
	req("POST", "/v1/locks/jobs/a/check", `{"token":1}`, 200)
	req("GET", "/v1/sessions/"+sess, "", 200)
	req("DELETE", "/v1/sessions/"+sess, "", 200)

	req("GET", api.MembersPath, "", 200)
	id := req("POST", api.MembersPath, `{"peer_url":"http://leader.example:7081","learner":true}`, 201).body["member"].(map[string]any)["id"].(float64)
	member := api.MemberPath(uint64(id))
	req("POST", member+"/promote", "", 200)
	req("DELETE", member, "", 200)
	req("GET", "/v1/status", "", 200)
	snap, err := http.NewRequest("GET", ts.URL+api.SnapshotPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap.Header.Set(root[0], root[1])
	resp, err = ts.Client().Do(snap)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("snapshot: %d", resp.StatusCode)
	}
	req("POST", api.LeaderTransferPath, "", 200)
	for _, path := range []string{"/v1/locks/a", "/v1/members/1", "/v1/openapi.json"} {
		if r := do(t, ts, "PUT", path, "{}", root...); r.status != 405 && r.status != 404 {
			t.Errorf("PUT %s: %d %s", path, r.status, r.raw)
		}
	}
}
