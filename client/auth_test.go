package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// Each admin call sends its method, path, query and body, with the token,
// and decodes the answer.
func TestAuthCallsRequests(t *testing.T) {
	const token = "admin-token"
	f := newAPIFake(t, false, map[string]route{
		"GET /v1/auth/users":            {status: 200, body: `{"users":[{"name":"alice","roles":["jobs"]},{"name":"root","roles":["admin"]}]}`},
		"POST /v1/auth/users":           {status: 201, body: `{"name":"alice","roles":["jobs"]}`},
		"DELETE /v1/auth/users/bob":     {status: 200, body: `{"name":"bob","roles":[]}`},
		"GET /v1/auth/roles":            {status: 200, body: `{"roles":[{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["read","lock"]}]}]}`},
		"POST /v1/auth/roles":           {status: 201, body: `{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["lock","read"]}]}`},
		"DELETE /v1/auth/roles/jobs":    {status: 200, body: `{"name":"jobs","permissions":[]}`},
		"GET /v1/auth/tokens":           {status: 200, body: `{"tokens":[{"id":"17","user":"alice"}]}`},
		"POST /v1/auth/tokens":          {status: 201, body: `{"id":"18","user":"alice","token":"secret"}`},
		"DELETE /v1/auth/tokens/17":     {status: 200, body: `{"id":"17","user":"alice"}`},
		"GET /v1/auth/whoami":           {status: 200, body: `{"enabled":true,"principal":"root","roles":["admin"]}`},
		"POST /v1/auth/enable":          {status: 200, body: `{"enabled":true,"principal":"root","roles":["admin"]}`},
		"POST /v1/locks/jobs/x/release": {status: 200, body: `{"name":"jobs/x","session":"5","token":42}`},
		"DELETE /v1/sessions/5":         {status: 200, body: `{}`},
	})
	c, err := New(Config{Endpoints: []string{f.URL}, AuthToken: token, UnbatchedLocks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)

	type want struct {
		method, path, query string
		body                any // nil: no body; else compared as JSON
	}
	for _, tc := range []struct {
		name string
		call func() (any, error)
		want want
		out  any
	}{
		{"Users", func() (any, error) { return c.Users(ctx) }, want{"GET", "/v1/auth/users", "", nil},
			[]api.User{{Name: "alice", Roles: []string{"jobs"}}, {Name: "root", Roles: []string{"admin"}}}},
		{"PutUser", func() (any, error) { return c.PutUser(ctx, api.User{Name: "alice", Roles: []string{"jobs"}}) },
			want{"POST", "/v1/auth/users", "", map[string]any{"name": "alice", "roles": []any{"jobs"}}},
			&api.User{Name: "alice", Roles: []string{"jobs"}}},
		{"PutUser without roles", func() (any, error) { return c.PutUser(ctx, api.User{Name: "alice"}) },
			want{"POST", "/v1/auth/users", "", map[string]any{"name": "alice", "roles": []any{}}},
			&api.User{Name: "alice", Roles: []string{"jobs"}}},
		{"DeleteUser", func() (any, error) { return nil, c.DeleteUser(ctx, "bob") }, want{"DELETE", "/v1/auth/users/bob", "", nil}, nil},
		{"Roles", func() (any, error) { return c.Roles(ctx) }, want{"GET", "/v1/auth/roles", "", nil},
			[]api.Role{{Name: "jobs", Permissions: []api.Permission{{Prefix: "jobs/", Actions: []string{"read", "lock"}}}}}},
		{"PutRole", func() (any, error) {
			return c.PutRole(ctx, api.Role{Name: "jobs", Permissions: []api.Permission{{Prefix: "jobs/", Actions: []string{"read", "lock"}}}})
		},
			want{"POST", "/v1/auth/roles", "", map[string]any{"name": "jobs", "permissions": []any{map[string]any{"prefix": "jobs/", "actions": []any{"read", "lock"}}}}},
			&api.Role{Name: "jobs", Permissions: []api.Permission{{Prefix: "jobs/", Actions: []string{"lock", "read"}}}}},
		{"DeleteRole", func() (any, error) { return nil, c.DeleteRole(ctx, "jobs") }, want{"DELETE", "/v1/auth/roles/jobs", "", nil}, nil},
		{"Tokens of all", func() (any, error) { return c.Tokens(ctx, "") }, want{"GET", "/v1/auth/tokens", "", nil},
			[]api.Token{{ID: 17, User: "alice"}}},
		{"Tokens of alice", func() (any, error) { return c.Tokens(ctx, "alice") }, want{"GET", "/v1/auth/tokens", "user=alice", nil},
			[]api.Token{{ID: 17, User: "alice"}}},
		{"CreateToken", func() (any, error) { return c.CreateToken(ctx, "alice") }, want{"POST", "/v1/auth/tokens", "", map[string]any{"user": "alice"}},
			&api.CreateTokenResponse{ID: 18, User: "alice", Token: "secret"}},
		{"RevokeToken", func() (any, error) { return nil, c.RevokeToken(ctx, 17) }, want{"DELETE", "/v1/auth/tokens/17", "", nil}, nil},
		{"WhoAmI", func() (any, error) { return c.WhoAmI(ctx) }, want{"GET", "/v1/auth/whoami", "", nil},
			&api.AuthStatus{Enabled: true, Principal: "root", Roles: []string{"admin"}}},
		{"EnableAuth", func() (any, error) { return c.EnableAuth(ctx) }, want{"POST", "/v1/auth/enable", "", map[string]any{}},
			&api.AuthStatus{Enabled: true, Principal: "root", Roles: []string{"admin"}}},
		{"ForceRelease", func() (any, error) { return c.ForceRelease(ctx, "jobs/x") }, want{"POST", "/v1/locks/jobs/x/release", "", map[string]any{"force": true}},
			&api.LockGrant{Name: "jobs/x", Session: 5, Token: 42}},
		{"CloseSession", func() (any, error) { return nil, c.CloseSession(ctx, 5) }, want{"DELETE", "/v1/sessions/5", "", nil}, nil},
	} {
		before := len(f.requests())
		out, err := tc.call()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.out != nil && !reflect.DeepEqual(out, tc.out) {
			t.Errorf("%s: answer %#v, want %#v", tc.name, out, tc.out)
		}
		reqs := f.requests()[before:]
		if len(reqs) != 1 {
			t.Errorf("%s: %d requests, want 1: %+v", tc.name, len(reqs), reqs)
			continue
		}
		r := reqs[0]
		if r.method != tc.want.method || r.path != tc.want.path || r.query != tc.want.query {
			t.Errorf("%s: sent %s %s?%s, want %s %s?%s", tc.name, r.method, r.path, r.query, tc.want.method, tc.want.path, tc.want.query)
		}
		if r.auth != "Bearer "+token {
			t.Errorf("%s: Authorization %q", tc.name, r.auth)
		}
		if tc.want.body == nil {
			if r.body != "" {
				t.Errorf("%s: body %q, want none", tc.name, r.body)
			}
			continue
		}
		var got any
		if err := json.Unmarshal([]byte(r.body), &got); err != nil || !reflect.DeepEqual(got, tc.want.body) {
			t.Errorf("%s: body %s (%v), want %v", tc.name, r.body, err, tc.want.body)
		}
	}
}

// Bad arguments are refused before anything is sent.
func TestAuthCallsCheckArguments(t *testing.T) {
	f := newAPIFake(t, false, map[string]route{})
	c := newClient(t, f.URL)
	ctx := testCtx(t)
	long := string(make([]byte, api.MaxUserNameLen+1))
	for name, err := range map[string]error{
		"PutUser no name":       second(c.PutUser(ctx, api.User{})),
		"PutUser long name":     second(c.PutUser(ctx, api.User{Name: long})),
		"DeleteUser no name":    c.DeleteUser(ctx, ""),
		"PutRole no name":       second(c.PutRole(ctx, api.Role{})),
		"PutRole no action":     second(c.PutRole(ctx, api.Role{Name: "r", Permissions: []api.Permission{{Prefix: "x/"}}})),
		"DeleteRole no name":    c.DeleteRole(ctx, ""),
		"CreateToken no user":   second(c.CreateToken(ctx, "")),
		"RevokeToken 0":         c.RevokeToken(ctx, 0),
		"ForceRelease bad name": second(c.ForceRelease(ctx, "a b")),
	} {
		if !errors.Is(err, api.ErrInvalidArgument) {
			t.Errorf("%s: %v, want api.ErrInvalidArgument", name, err)
		}
	}
	if n := f.hits(); n != 0 {
		t.Errorf("%d requests sent for invalid arguments", n)
	}
}

func second[T any](_ T, err error) error { return err }

// Deletes are retried after an unknown outcome, and a 404 to the retry is
// success; CreateToken and ForceRelease are not retried after one.
func TestAuthCallsRetries(t *testing.T) {
	ctx := testCtx(t)
	const notFound = `{"error":{"code":"not_found","message":"user \"bob\" does not exist"}}`

	// The first attempt's answer is lost (503 timeout: it may have been
	// applied); the retry finds no user.
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, bodyTimeout)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, notFound)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	if err := c.DeleteUser(ctx, "bob"); err != nil || n.Load() != 2 {
		t.Errorf("DeleteUser, 404 after an unknown outcome: %v after %d requests, want nil after 2", err, n.Load())
	}
	// A plain 404 is an error.
	if err := c.DeleteUser(ctx, "bob"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("DeleteUser of nobody: %v, want api.ErrNotFound", err)
	}

	for _, tc := range []struct {
		name string
		key  string
		call func(c *Client) error
	}{
		{"CreateToken", "POST /v1/auth/tokens", func(c *Client) error { return second(c.CreateToken(ctx, "alice")) }},
		{"ForceRelease", "POST /v1/locks/x/release", func(c *Client) error { return second(c.ForceRelease(ctx, "x")) }},
	} {
		f := newAPIFake(t, false, map[string]route{tc.key: {status: 503, body: bodyTimeout}})
		c := newClient(t, f.URL)
		if err := tc.call(c); !errors.Is(err, api.ErrOutcomeUnknown) {
			t.Errorf("%s after a timeout: %v, want api.ErrOutcomeUnknown", tc.name, err)
		}
		if n := f.hits(); n != 1 {
			t.Errorf("%s: %d requests, want 1 (no retry after an unknown outcome)", tc.name, n)
		}
	}
}
