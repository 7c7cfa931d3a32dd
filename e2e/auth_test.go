package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
)

// authDo sends a request with a bearer token ("" for none).
func authDo(t *testing.T, method, url, token string, body any) reply {
	t.Helper()
	r, err := authTry(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// authTry is authDo that returns the error (a member still starting).
func authTry(method, url, token string, body any) (reply, error) {
	return request(httpc, method, url, token, body)
}

// awaitReady waits until every member answers /readyz 200 (which needs no
// principal): each knows the leader and its URL, so it can forward.
func awaitReady(t *testing.T, c *cluster) {
	t.Helper()
	for _, m := range c.members {
		await.True(t, 10*time.Second, fmt.Sprintf("member %d ready", m.id), func() bool {
			r, err := authTry("GET", m.clientURL+"/readyz", "", nil)
			return err == nil && r.status == 200
		})
	}
}

func authMust(t *testing.T, method, url, token string, body any, want int) reply {
	t.Helper()
	r := authDo(t, method, url, token, body)
	if r.status != want {
		t.Fatalf("%s %s: %v, want %d", method, url, r, want)
	}
	return r
}

func errCode(r reply) string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// TestAuthAcrossCluster: a three-node cluster bootstrapped with a root
// token; users made through a follower; every node refuses a request
// without a principal (401), a session used by another principal (403), and
// a token once its revocation is committed.
func TestAuthAcrossCluster(t *testing.T) {
	const root = "e2e-root-token-0123456789abcdefghijklmnop"
	tokenFile := filepath.Join(t.TempDir(), "root.token")
	if err := os.WriteFile(tokenFile, []byte(root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 3, clusterOptions{env: func(*member) []string {
		return append(os.Environ(), "RAFTLOCK_AUTH_BOOTSTRAP_TOKEN_FILE="+tokenFile)
	}})
	// The bootstrap is applied on every node: root is admin everywhere.
	for _, m := range c.members {
		await.True(t, 10*time.Second, fmt.Sprintf("member %d applies the auth bootstrap", m.id), func() bool {
			r, err := authTry("GET", m.clientURL+"/v1/auth/whoami", root, nil)
			return err == nil && r.status == 200 && r.body["enabled"] == true && r.body["principal"] == "root"
		})
		if r := authDo(t, "GET", m.clientURL+"/v1/locks?prefix=jobs/", "", nil); r.status != 401 || errCode(r) != "unauthenticated" {
			t.Fatalf("member %d without a token: %v", m.id, r)
		}
		if r := authDo(t, "GET", m.clientURL+"/readyz", "", nil); r.status == 401 || r.status == 403 {
			t.Fatalf("member %d /readyz without a token: %v (probes have no principal)", m.id, r)
		}
	}
	awaitReady(t, c)
	var lead, follower *member
	await.True(t, 10*time.Second, "a leader, seen with root's token", func() bool {
		r, _ := authTry("GET", c.members[0].clientURL+"/v1/status", root, nil)
		id := int(num(r.body["leader"]))
		for _, m := range c.members {
			if m.id == id {
				lead = m
			}
		}
		return lead != nil
	})
	for _, m := range c.members {
		if m != lead {
			follower = m
		}
	}

	// Through a follower: the writes are forwarded with the token.
	f := follower.clientURL
	authMust(t, "POST", f+"/v1/auth/roles", root, map[string]any{"name": "jobs", "permissions": []any{
		map[string]any{"prefix": "jobs/", "actions": []string{"read", "lock"}}}}, 201)
	authMust(t, "POST", f+"/v1/auth/users", root, map[string]any{"name": "alice", "roles": []string{"jobs"}}, 201)
	authMust(t, "POST", f+"/v1/auth/users", root, map[string]any{"name": "bob", "roles": []string{"jobs"}}, 201)
	alice := authMust(t, "POST", f+"/v1/auth/tokens", root, map[string]any{"user": "alice"}, 201)
	bob := authMust(t, "POST", f+"/v1/auth/tokens", root, map[string]any{"user": "bob"}, 201)
	aliceTok, _ := alice.body["token"].(string)
	bobTok, _ := bob.body["token"].(string)

	bs := authMust(t, "POST", f+"/v1/sessions", bobTok, map[string]any{"ttl": "10s"}, 201).body["id"].(string)
	as := authMust(t, "POST", f+"/v1/sessions", aliceTok, map[string]any{"ttl": "10s"}, 201).body["id"].(string)
	g := authMust(t, "POST", f+"/v1/locks/jobs/x/acquire", bobTok, map[string]any{"session": bs}, 200)
	for _, m := range c.members {
		u := m.clientURL
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1/locks/jobs/x/release", map[string]any{"session": bs, "token": g.body["token"]}},
			{"POST", "/v1/sessions/" + bs + "/keepalive", nil},
			{"DELETE", "/v1/sessions/" + bs, nil},
			{"POST", "/v1/locks/jobs/y/acquire", map[string]any{"session": bs}},
			{"POST", "/v1/locks/other/acquire", map[string]any{"session": as}},
			{"GET", "/v1/sessions/" + bs, nil},
		} {
			if r := authDo(t, tc.method, u+tc.path, aliceTok, tc.body); r.status != 403 || errCode(r) != "permission_denied" {
				t.Fatalf("member %d: alice %s %s: %v, want 403 permission_denied", m.id, tc.method, tc.path, r)
			}
		}
	}
	// bob still holds it.
	if r := authMust(t, "GET", lead.clientURL+"/v1/locks/jobs/x", bobTok, nil, 200); r.body["holder"].(map[string]any)["session"] != bs {
		t.Fatalf("holder after alice's attempts: %v", r)
	}

	// Revoke alice's token through a follower; once the call answered, the
	// revocation is committed, and every node refuses the token (reads are
	// linearizable: they see it; writes are refused by the state machine).
	authMust(t, "DELETE", f+"/v1/auth/tokens/"+alice.body["id"].(string), root, nil, 200)
	for _, m := range c.members {
		if r := authDo(t, "GET", m.clientURL+"/v1/locks/jobs/x", aliceTok, nil); r.status != 401 {
			t.Fatalf("member %d: a revoked token read: %v", m.id, r)
		}
		if r := authDo(t, "POST", m.clientURL+"/v1/sessions/"+as+"/keepalive", aliceTok, nil); r.status != 401 {
			t.Fatalf("member %d: a revoked token kept a session alive: %v", m.id, r)
		}
	}
}

// TestQuotasFromFlags: the quota flags of a new cluster become its
// replicated limits, refused with 429 naming the limit on every node.
func TestQuotasFromFlags(t *testing.T) {
	c := startClusterWith(t, 3, clusterOptions{env: func(*member) []string {
		return append(os.Environ(), "RAFTLOCK_QUOTA_LOCKS_PER_SESSION=2")
	}})
	lead := c.leader(c.members...)
	awaitReady(t, c)
	for _, m := range c.members {
		await.True(t, 10*time.Second, fmt.Sprintf("member %d applies the initial limits", m.id), func() bool {
			r, err := authTry("GET", m.clientURL+"/v1/limits", "", nil)
			return err == nil && r.status == 200 && num(r.body["locks_per_session"]) == 2
		})
	}
	s := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "10s"}, 201).body["id"]
	for _, name := range []string{"a", "b"} {
		c.must("POST", lead.clientURL+"/v1/locks/"+name+"/acquire", map[string]any{"session": s}, 200)
	}
	for _, m := range c.members {
		r := c.must("POST", m.clientURL+"/v1/locks/c/acquire", map[string]any{"session": s}, 429)
		if errCode(r) != "quota_exceeded" || !bytes.Contains([]byte(fmt.Sprint(r.body)), []byte("locks_per_session")) {
			t.Fatalf("member %d: %v", m.id, r)
		}
	}
}
