package httpapi

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
	"github.com/raftlock/raftlock/raftnode"
)

const rootToken = "root-secret-for-tests-0123456789abcdef"

// authServer returns a server whose cluster has auth on with root's token
// rootToken, role "jobs" (lock, elect on "jobs/", read on "jobs/") and users
// alice and bob with it, and their tokens.
func authServer(t *testing.T, mod func(*Config)) (*fakeNode, *httptest.Server, string, string) {
	t.Helper()
	f, ts := newTestServer(t, mod)
	sum := sha256.Sum256([]byte(rootToken))
	f.set(func(f *fakeNode) {
		if r := f.applyLocked(&lock.Command{Op: lock.OpAuthBootstrap, Hash: string(sum[:])}); r.Code != lock.CodeOK {
			t.Fatalf("bootstrap: %v", r.Code)
		}
	})
	admin := func(method, path, body string, want int) reply {
		t.Helper()
		r := do(t, ts, method, path, body, "Authorization", "Bearer "+rootToken)
		if r.status != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, r.status, r.raw, want)
		}
		return r
	}
	admin("POST", api.AuthRolesPath, `{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["lock","elect","read"]}]}`, 201)
	admin("POST", api.AuthUsersPath, `{"name":"alice","roles":["jobs"]}`, 201)
	admin("POST", api.AuthUsersPath, `{"name":"bob","roles":["jobs"]}`, 201)
	alice := admin("POST", api.AuthTokensPath, `{"user":"alice"}`, 201).str("token")
	bob := admin("POST", api.AuthTokensPath, `{"user":"bob"}`, 201).str("token")
	if len(alice) < 40 || alice == bob {
		t.Fatalf("tokens %q %q", alice, bob)
	}
	return f, ts, alice, bob
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestAuthRefusals(t *testing.T) {
	f, ts, alice, bob := authServer(t, nil)
	as := func(tok, method, path, body string, want int, code string) reply {
		t.Helper()
		r := do(t, ts, method, path, body, bearer(tok)...)
		if r.status != want || (code != "" && r.errCode() != code) {
			t.Fatalf("%s %s %s: %d %s, want %d %s", method, path, body, r.status, r.raw, want, code)
		}
		return r
	}
	// No principal, a bad header, an unknown token: 401 everywhere but the
	// probes.
	for _, hdr := range [][]string{nil, {"Authorization", "Basic abc"}, bearer("nope")} {
		r := do(t, ts, "GET", "/v1/locks?prefix=jobs/", "", hdr...)
		if r.status != http.StatusUnauthorized || r.errCode() != api.CodeUnauthenticated {
			t.Fatalf("%v: %d %s", hdr, r.status, r.raw)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := do(t, ts, "GET", p, ""); r.status != 200 {
			t.Fatalf("%s without a principal: %d", p, r.status)
		}
	}
	if r := do(t, ts, "GET", api.WhoAmIPath, "", bearer(alice)...); r.str("principal") != "alice" || r.body["enabled"] != true {
		t.Fatalf("whoami: %s", r.raw)
	}

	aliceSess := as(alice, "POST", "/v1/sessions", `{"ttl":"10s"}`, 201, "").str("id")
	bobSess := as(bob, "POST", "/v1/sessions", `{"ttl":"10s"}`, 201, "").str("id")
	g := as(bob, "POST", "/v1/locks/jobs/a/acquire", `{"session":"`+bobSess+`"}`, 200, "")
	tok := u(g.num("token"))

	n := len(f.proposals())
	// alice acts on bob's session: 403, and nothing changes.
	before, _ := f.snapshot()
	as(alice, "POST", "/v1/locks/jobs/a/release", `{"session":"`+bobSess+`","token":`+tok+`}`, 403, api.CodePermissionDenied)
	as(alice, "POST", "/v1/sessions/"+bobSess+"/keepalive", "", 403, api.CodePermissionDenied)
	as(alice, "POST", "/v1/sessions/keepalive", `{"ids":["`+aliceSess+`","`+bobSess+`"]}`, 403, api.CodePermissionDenied)
	as(alice, "DELETE", "/v1/sessions/"+bobSess, "", 403, api.CodePermissionDenied)
	as(alice, "POST", "/v1/locks/jobs/b/acquire", `{"session":"`+bobSess+`"}`, 403, api.CodePermissionDenied)
	as(alice, "POST", "/v1/elections/jobs/e/campaign", `{"session":"`+bobSess+`","value":"x"}`, 403, api.CodePermissionDenied)
	as(alice, "GET", "/v1/sessions/"+bobSess, "", 403, api.CodePermissionDenied)
	as(alice, "GET", "/v1/sessions/"+bobSess+"/locks", "", 403, api.CodePermissionDenied)
	// Outside her prefix: refused at the edge, no log entry.
	before2 := len(f.proposals())
	r := as(alice, "POST", "/v1/locks/other/acquire", `{"session":"`+aliceSess+`"}`, 403, api.CodePermissionDenied)
	if len(f.proposals()) != before2 {
		t.Fatal("a refusal by name cost a log entry")
	}
	as(rootToken, "POST", api.AuthRolesPath, `{"name":"bad","permissions":[{"prefix":"a/../b","actions":["read"]}]}`, 400, api.CodeInvalidArgument)
	if !strings.Contains(r.errMessage(), "lock") || !strings.Contains(r.errMessage(), "other") {
		t.Fatalf("the refusal does not name the action and the name: %s", r.errMessage())
	}
	as(alice, "GET", "/v1/locks/other", "", 403, api.CodePermissionDenied)
	as(alice, "GET", "/v1/locks", "", 403, api.CodePermissionDenied)
	as(alice, "GET", "/v1/watch?prefix=other/", "", 403, api.CodePermissionDenied)
	as(alice, "POST", "/v1/locks/jobs/a/release", `{"force":true}`, 403, api.CodePermissionDenied)
	as(alice, "POST", api.AuthUsersPath, `{"name":"eve","roles":["jobs"]}`, 403, api.CodePermissionDenied)
	as(alice, "GET", api.AuthTokensPath, "", 403, api.CodePermissionDenied)
	// Refusals decided by the state machine are entries that change
	// nothing but the applied index.
	after, _ := f.snapshot()
	var st1, st2 lock.Machine
	if st1.Restore(before) != nil || st2.Restore(after) != nil {
		t.Fatal("restore")
	}
	if l, _ := st2.Lock("jobs/a"); l.Holder == nil || l.Holder.Session != g.num("session") && u(l.Holder.Token) != tok {
		t.Fatalf("a refused request changed the lock: %+v", l)
	}
	if len(st2.Locks("")) != len(st1.Locks("")) || len(f.proposals()) == n {
		t.Fatalf("locks %d → %d, proposals %d → %d", len(st1.Locks("")), len(st2.Locks("")), n, len(f.proposals()))
	}
	// A client cannot claim a principal through the forwarding header.
	as(alice, "GET", "/v1/sessions/"+bobSess, "", 403, api.CodePermissionDenied)
	r = do(t, ts, "GET", "/v1/sessions/"+bobSess, "", "Authorization", "Bearer "+alice, api.HeaderPrincipal, "bob", api.HeaderForwarded, "1")
	if r.status != 403 {
		t.Fatalf("a forged %s was trusted: %d %s", api.HeaderPrincipal, r.status, r.raw)
	}

	// The admin force-releases bob's lock; the event names the admin.
	r = as(rootToken, "POST", "/v1/locks/jobs/a/release", `{"force":true}`, 200, "")
	if r.str("session") != bobSess || u(r.num("token")) != tok {
		t.Fatalf("force release: %s", r.raw)
	}
	var forced bool
	f.mu.Lock()
	for _, res := range f.results {
		for _, ev := range res.Events {
			if ev.Type == lock.EventLockReleased && ev.Name == "jobs/a" && ev.By == lock.RootUser {
				forced = true
			}
		}
	}
	f.mu.Unlock()
	if !forced {
		t.Fatal("no lock_released event names the admin")
	}
	as(rootToken, "DELETE", "/v1/sessions/"+bobSess, "", 200, "")

	// A revoked token is refused at once.
	list := as(rootToken, "GET", api.AuthTokensPath+"?user=alice", "", 200, "")
	toks, _ := list.body["tokens"].([]any)
	if len(toks) != 1 {
		t.Fatalf("alice's tokens: %s", list.raw)
	}
	id, _ := toks[0].(map[string]any)["id"].(string)
	as(rootToken, "DELETE", api.AuthTokensPath+"/"+id, "", 200, "")
	as(alice, "GET", "/v1/locks?prefix=jobs/", "", 401, api.CodeUnauthenticated)
}

func TestAuthForwardedPrincipalFromMembersOnly(t *testing.T) {
	var member bool
	f, ts, alice, _ := authServer(t, func(c *Config) {
		c.IsMember = func(*http.Request) bool { return member }
	})
	_ = f
	sess := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, bearer(alice)...).str("id")
	// Without a member's proof the header is ignored: the request is
	// anonymous, 401.
	r := do(t, ts, "GET", "/v1/sessions/"+sess, "", api.HeaderPrincipal, "alice", api.HeaderForwarded, "1")
	if r.status != 401 {
		t.Fatalf("forwarded principal without member proof: %d %s", r.status, r.raw)
	}
	member = true
	r = do(t, ts, "GET", "/v1/sessions/"+sess, "", api.HeaderPrincipal, "alice", api.HeaderForwarded, "1")
	if r.status != 200 {
		t.Fatalf("forwarded principal from a member: %d %s", r.status, r.raw)
	}
}

func TestAuthBootstrapPendingAnswers503(t *testing.T) {
	_, ts := newTestServer(t, func(c *Config) { c.AuthBootstrapToken = rootToken })
	if r := do(t, ts, "GET", "/v1/locks", ""); r.status != 503 || r.errCode() != api.CodeUnavailable {
		t.Fatalf("before the bootstrap applied: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
}

func TestAuthFollowerForwardsCredentials(t *testing.T) {
	var seen []string
	leader, lts := newTestHandler(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, r.Header.Get(api.HeaderPrincipal)+"|"+r.Header.Get("Authorization"))
			h.ServeHTTP(w, r)
		})
	})
	_ = leader
	follower, fts := newTestServer(t, nil)
	follower.set(func(f *fakeNode) {
		f.notLeader = &raftnode.NotLeaderError{LeaderID: 1, LeaderClientURL: lts.URL}
		f.status.IsLeader = false
		f.status.LeaderClientURL = lts.URL
	})
	sum := sha256.Sum256([]byte(rootToken))
	follower.set(func(f *fakeNode) { f.applyLocked(&lock.Command{Op: lock.OpAuthBootstrap, Hash: string(sum[:])}) })
	do(t, fts, "POST", "/v1/sessions", `{"ttl":"10s"}`, "Authorization", "Bearer "+rootToken, api.HeaderPrincipal, "mallory")
	// The client's forged principal header is dropped; a token's principal
	// is resolved again by the leader from the forwarded Authorization.
	if want := "|Bearer " + rootToken; len(seen) != 1 || seen[0] != want {
		t.Fatalf("the leader saw %q, want %q", seen, want)
	}
}

func TestLimitsRefuseWith429(t *testing.T) {
	_, ts := newTestServer(t, nil)
	r := must(t, ts, "POST", api.LimitsPath, `{"locks_per_session":1,"waiters_per_lock":1}`, 200)
	if r.num("locks_per_session") != 1 || r.num("sessions_per_principal") != 100000 {
		t.Fatalf("limits: %s", r.raw)
	}
	s := openSession(t, ts, "a")
	must(t, ts, "POST", "/v1/locks/x/acquire", `{"session":"`+s+`"}`, 200)
	r = mustErr(t, ts, "POST", "/v1/locks/y/acquire", `{"session":"`+s+`"}`, 429, api.CodeQuotaExceeded)
	if !strings.Contains(r.errMessage(), "locks_per_session") {
		t.Fatalf("the refusal does not name the limit: %s", r.errMessage())
	}
	s2 := openSession(t, ts, "b")
	s3 := openSession(t, ts, "c")
	must(t, ts, "POST", "/v1/locks/x/acquire", `{"session":"`+s2+`","wait":"10ms","keep_queued":true}`, 409)
	r = mustErr(t, ts, "POST", "/v1/locks/x/acquire", `{"session":"`+s3+`","wait":"10ms"}`, 429, api.CodeQuotaExceeded)
	if !strings.Contains(r.errMessage(), "waiters_per_lock") {
		t.Fatalf("the refusal does not name the limit: %s", r.errMessage())
	}
	mustErr(t, ts, "POST", api.LimitsPath, `{"state_bytes":1}`, 400, api.CodeInvalidArgument)
	r = must(t, ts, "GET", api.LimitsPath, "", 200)
	if r.num("state_bytes") == 0 {
		t.Fatalf("no state size: %s", r.raw)
	}
}

// enableAuth turns auth on in f's state (root with rootToken).
func enableAuth(t *testing.T, f *fakeNode) {
	t.Helper()
	sum := sha256.Sum256([]byte(rootToken))
	f.set(func(f *fakeNode) {
		if r := f.applyLocked(&lock.Command{Op: lock.OpAuthBootstrap, Hash: string(sum[:])}); r.Code != lock.CodeOK {
			t.Fatalf("bootstrap: %v", r.Code)
		}
	})
}

// The operations endpoints are admin only once auth is on.
func TestAdminOnlyOperations(t *testing.T) {
	_, ts, alice, _ := authServer(t, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", api.LeaderTransferPath, `{}`},
		{"POST", api.LimitsPath, `{"locks_per_session":1}`},
		{"POST", api.AuthEnablePath, ``},
		{"GET", api.AuthUsersPath, ``},
		{"GET", api.MembersPath, ``},
		{"POST", api.MembersPath, `{"peer_url":"http://127.0.0.1:9"}`},
		{"DELETE", api.MemberPath(2), ``},
		{"POST", api.MemberPath(2) + "/promote", ``},
		{"GET", api.SnapshotPath, ``},
	} {
		if r := do(t, ts, tc.method, tc.path, tc.body, bearer(alice)...); r.status != 403 || r.errCode() != api.CodePermissionDenied {
			t.Errorf("alice %s %s: %d %s", tc.method, tc.path, r.status, r.raw)
		}
		if r := do(t, ts, tc.method, tc.path, tc.body); r.status != 401 {
			t.Errorf("anonymous %s %s: %d %s", tc.method, tc.path, r.status, r.raw)
		}
	}
	if r := do(t, ts, "POST", api.LeaderTransferPath, `{"to":"2"}`, bearer(rootToken)...); r.status != 400 {
		t.Errorf("a string member ID: %d %s", r.status, r.raw)
	}
}

// With auth on, GET /v1/sessions shows a principal its own sessions only;
// one that may read every name (root) sees them all. Semaphores are
// guarded like locks, by name.
func TestAuthListSessionsAndSemaphores(t *testing.T) {
	_, ts, alice, bob := authServer(t, nil)
	a := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, bearer(alice)...).str("id")
	b := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, bearer(bob)...).str("id")
	r := do(t, ts, "GET", "/v1/sessions", "", bearer(alice)...)
	if ss, _ := r.body["sessions"].([]any); r.status != 200 || len(ss) != 1 || ss[0].(map[string]any)["id"] != a {
		t.Fatalf("alice's listing: %d %s", r.status, r.raw)
	}
	r = do(t, ts, "GET", "/v1/sessions", "", bearer(rootToken)...)
	if ss, _ := r.body["sessions"].([]any); r.status != 200 || len(ss) != 2 {
		t.Fatalf("root's listing: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "POST", "/v1/semaphores/jobs/pool/acquire", `{"session":"`+b+`","limit":2}`, bearer(bob)...); r.status != 200 {
		t.Fatalf("bob's permit under jobs/: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "POST", "/v1/semaphores/other/acquire", `{"session":"`+b+`","limit":2}`, bearer(bob)...); r.status != 403 {
		t.Fatalf("bob's permit outside jobs/: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "GET", "/v1/semaphores/other", "", bearer(bob)...); r.status != 403 {
		t.Fatalf("bob reads a semaphore outside jobs/: %d %s", r.status, r.raw)
	}
}
