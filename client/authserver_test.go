package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/testserver"
)

// startAuthServer starts a real single-node server whose auth is on, with
// root's token rootToken, and returns its URL.
func startAuthServer(t *testing.T, rootToken string) string {
	t.Helper()
	return testserver.Start(t, testserver.Options{AuthBootstrapToken: rootToken}).URL
}

// The SDK against a server with auth on: 401 without a token, admin calls
// by root, a user limited to its prefix, sessions that belong to their
// principal, force-release by an admin, a revoked token refused.
func TestAuthAgainstServer(t *testing.T) {
	const rootToken = "root-secret-0123456789"
	url := startAuthServer(t, rootToken)
	ctx := testCtx(t)
	as := func(token string) *Client {
		c, err := New(Config{Endpoints: []string{url}, AuthToken: token, RequestTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	root, anon := as(rootToken), as("")

	if _, err := anon.Status(ctx); !errors.Is(err, api.ErrUnauthenticated) {
		t.Fatalf("Status without a token: %v, want api.ErrUnauthenticated", err)
	}
	if st, err := root.WhoAmI(ctx); err != nil || !st.Enabled || st.Principal != api.RootUser {
		t.Fatalf("WhoAmI as root: %+v %v", st, err)
	}
	if _, err := root.PutRole(ctx, api.Role{Name: "jobs-worker", Permissions: []api.Permission{{Prefix: "jobs/", Actions: []string{"read", "lock"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := root.PutUser(ctx, api.User{Name: u, Roles: []string{"jobs-worker"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.PutUser(ctx, api.User{Name: "carol", Roles: []string{"no-such-role"}}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("PutUser with an unknown role: %v, want api.ErrNotFound", err)
	}
	users, err := root.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"alice", "bob", "root"}) {
		t.Errorf("Users: %q", names)
	}
	aliceTok, err := root.CreateToken(ctx, "alice")
	if err != nil || aliceTok.User != "alice" || aliceTok.Token == "" || aliceTok.ID == 0 {
		t.Fatalf("CreateToken: %+v %v", aliceTok, err)
	}
	bobTok, err := root.CreateToken(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if toks, err := root.Tokens(ctx, "alice"); err != nil || len(toks) != 1 || toks[0].ID != aliceTok.ID {
		t.Errorf("Tokens of alice: %+v %v", toks, err)
	}
	alice, bob := as(aliceTok.Token), as(bobTok.Token)

	// alice locks under jobs/, not elsewhere.
	as1, err := alice.NewSession(ctx, WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer as1.Close(context.Background())
	m := as1.NewMutex("jobs/x")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := as1.NewMutex("other/x").TryLock(ctx); !errors.Is(err, api.ErrPermissionDenied) {
		t.Errorf("alice locks other/x: %v, want api.ErrPermissionDenied", err)
	}
	// bob may not close alice's session, nor administer.
	if err := bob.CloseSession(ctx, as1.ID()); !errors.Is(err, api.ErrPermissionDenied) {
		t.Errorf("bob closes alice's session: %v, want api.ErrPermissionDenied", err)
	}
	if _, err := bob.Users(ctx); !errors.Is(err, api.ErrPermissionDenied) {
		t.Errorf("bob lists users: %v, want api.ErrPermissionDenied", err)
	}
	if _, err := bob.ForceRelease(ctx, "jobs/x"); !errors.Is(err, api.ErrPermissionDenied) {
		t.Errorf("bob force-releases: %v, want api.ErrPermissionDenied", err)
	}

	// root force-releases alice's lock: alice's Mutex learns it.
	g, err := root.ForceRelease(ctx, "jobs/x")
	if err != nil || g.Session != as1.ID() || g.Token != m.Token() {
		t.Fatalf("ForceRelease: %+v %v, want session %s token %d", g, err, as1.ID(), m.Token())
	}
	select {
	case <-m.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("alice's Mutex did not learn that its lock was force-released")
	}
	if _, err := root.ForceRelease(ctx, "jobs/x"); !errors.Is(err, api.ErrNotHolder) {
		t.Errorf("ForceRelease of a free lock: %v, want api.ErrNotHolder", err)
	}

	// A revoked token is refused.
	if err := root.RevokeToken(ctx, aliceTok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Status(ctx); !errors.Is(err, api.ErrUnauthenticated) {
		t.Errorf("Status with a revoked token: %v, want api.ErrUnauthenticated", err)
	}
	if err := root.RevokeToken(ctx, aliceTok.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("RevokeToken twice: %v, want api.ErrNotFound", err)
	}
	if err := root.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Status(ctx); !errors.Is(err, api.ErrUnauthenticated) {
		t.Errorf("Status as a deleted user: %v, want api.ErrUnauthenticated", err)
	}
	if err := root.DeleteRole(ctx, "jobs-worker"); err != nil {
		t.Fatal(err)
	}
	if roles, err := root.Roles(ctx); err != nil || len(roles) != 1 || roles[0].Name != api.RootRole {
		t.Errorf("Roles after the delete: %+v %v", roles, err)
	}
	if st, err := root.EnableAuth(ctx); err != nil || !st.Enabled {
		t.Errorf("EnableAuth with auth on: %+v %v", st, err)
	}
}

// TestBatchPermissionsAgainstServer: a POST /v1/batch by a user whose role
// covers one name of the batch and not the other, against a real node
// (whose batches reach the loop whole, raftnode.Node.ProposeAll): the
// allowed acquire is granted, the other alone is refused with 403
// permission_denied, and nothing is proposed for it (the lock stays free).
func TestBatchPermissionsAgainstServer(t *testing.T) {
	const rootToken = "root-secret-0123456789"
	url := startAuthServer(t, rootToken)
	ctx := testCtx(t)
	root, err := New(Config{Endpoints: []string{url}, AuthToken: rootToken, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if _, err := root.PutRole(ctx, api.Role{Name: "jobs-worker", Permissions: []api.Permission{{Prefix: "jobs/", Actions: []string{"read", "lock"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.PutUser(ctx, api.User{Name: "alice", Roles: []string{"jobs-worker"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := root.CreateToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := New(Config{Endpoints: []string{url}, AuthToken: tok.Token, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	s := newSession(t, alice, 5*time.Second)
	body := fmt.Sprintf(`{"ops":[{"op":"acquire","name":"jobs/a","session":"%s"},{"op":"acquire","name":"other/b","session":"%s"}]}`, s.ID(), s.ID())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/batch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.BatchResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Results) != 2 {
		t.Fatalf("batch: %d %+v %v", resp.StatusCode, out, err)
	}
	if r := out.Results[0]; r.Status != http.StatusOK || r.Grant == nil || r.Grant.Token == 0 {
		t.Errorf("allowed acquire: %+v, want 200 with a grant", r)
	}
	if r := out.Results[1]; r.Status != http.StatusForbidden || r.Error == nil || r.Error.Code != api.CodePermissionDenied {
		t.Errorf("denied acquire: %+v, want 403 permission_denied", r)
	}
	if l, err := root.LockInfo(ctx, "other/b"); err != nil || l.Holder != nil {
		t.Errorf("other/b after the batch: %+v %v, want free", l, err)
	}
}
