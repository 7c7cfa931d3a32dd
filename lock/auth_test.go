package lock

import (
	"bytes"
	"strings"
	"testing"
)

// authMachine returns a machine with auth on: root (admin on every name,
// token hash "R…"), alice and bob with lock and elect on "jobs/" and read
// on everything, and the next free index.
func authMachine(t *testing.T) (*Machine, *uint64) {
	t.Helper()
	m := New()
	idx := uint64(0)
	must := func(c *Command) Result {
		t.Helper()
		idx++
		r := m.Apply(idx, 1, c)
		if r.Code != CodeOK {
			t.Fatalf("%+v: %v %s", c, r.Code, r.Reason)
		}
		return r
	}
	r := must(&Command{Op: OpAuthBootstrap, Hash: strings.Repeat("R", TokenHashLen)})
	if r.Token != idx || !m.Auth().Enabled() {
		t.Fatalf("bootstrap: %+v, enabled %v", r, m.Auth().Enabled())
	}
	must(&Command{Op: OpAuthPutRole, Principal: RootUser, Name: "jobs", Permissions: SortedPermissions([]Permission{
		{Prefix: "jobs/", Actions: ActionLock | ActionElect}, {Prefix: "", Actions: ActionRead}})})
	must(&Command{Op: OpAuthPutUser, Principal: RootUser, Name: "alice", Roles: []string{"jobs"}})
	must(&Command{Op: OpAuthPutUser, Principal: RootUser, Name: "bob", Roles: []string{"jobs"}})
	return m, &idx
}

func TestAuthRefusesWithoutChange(t *testing.T) {
	m, idx := authMachine(t)
	apply := func(c *Command) Result {
		*idx++
		c.Now = int64(*idx)
		return m.Apply(*idx, 1, c)
	}
	alice := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"})
	if alice.Code != CodeOK {
		t.Fatalf("alice opens: %v", alice.Code)
	}
	grant := apply(&Command{Op: OpAcquire, Session: alice.Session, Name: "jobs/a", Principal: "alice"})
	if grant.Code != CodeOK {
		t.Fatalf("alice acquires: %v %s", grant.Code, grant.Reason)
	}
	before := m.Snapshot()
	for _, tc := range []struct {
		name string
		c    *Command
		want Code
	}{
		{"anonymous open", &Command{Op: OpOpenSession, TTL: 10e9}, CodeUnauthenticated},
		{"unknown user", &Command{Op: OpOpenSession, TTL: 10e9, Principal: "mallory"}, CodeUnauthenticated},
		{"bob releases alice's lock", &Command{Op: OpRelease, Session: alice.Session, Name: "jobs/a", Token: grant.Token, Principal: "bob"}, CodePermissionDenied},
		{"bob acquires as alice", &Command{Op: OpAcquire, Session: alice.Session, Name: "jobs/b", Principal: "bob"}, CodePermissionDenied},
		{"bob keeps alice alive", &Command{Op: OpKeepAlive, Sessions: []uint64{alice.Session}, Principal: "bob"}, CodePermissionDenied},
		{"bob closes alice's session", &Command{Op: OpCloseSession, Session: alice.Session, Principal: "bob"}, CodePermissionDenied},
		{"bob campaigns as alice", &Command{Op: OpCampaign, Session: alice.Session, Name: "jobs/e", Principal: "bob"}, CodePermissionDenied},
		{"alice outside her prefix", &Command{Op: OpAcquire, Session: alice.Session, Name: "other/x", Principal: "alice"}, CodePermissionDenied},
		{"alice ephemeral outside", &Command{Op: OpAcquire, TTL: 10e9, Name: "other/x", Principal: "alice"}, CodePermissionDenied},
		{"alice forces a release", &Command{Op: OpRelease, Force: true, Name: "jobs/a", Principal: "alice"}, CodePermissionDenied},
		{"alice makes a user", &Command{Op: OpAuthPutUser, Name: "eve", Principal: "alice"}, CodePermissionDenied},
		{"root deletes the last admin", &Command{Op: OpAuthDeleteUser, Name: RootUser, Principal: RootUser}, CodeInvalid},
		{"root empties the admin role", &Command{Op: OpAuthPutRole, Name: RootRole, Principal: RootUser}, CodeInvalid},
		{"token of a missing user", &Command{Op: OpAuthCreateToken, Name: "nobody", Hash: strings.Repeat("x", TokenHashLen), Principal: RootUser}, CodeNotFound},
		{"user with a missing role", &Command{Op: OpAuthPutUser, Name: "eve", Roles: []string{"nope"}, Principal: RootUser}, CodeNotFound},
	} {
		r := apply(tc.c)
		if r.Code != tc.want || len(r.Events) != 0 {
			t.Errorf("%s: %v (%s), %d events; want %v and no events", tc.name, r.Code, r.Reason, len(r.Events), tc.want)
		}
		if tc.want == CodePermissionDenied && r.Reason == "" {
			t.Errorf("%s: no reason", tc.name)
		}
		after := m.Snapshot()
		// Only the applied index (and so the clock) may differ: compare
		// everything after the header.
		if !bytes.Equal(stripHeader(t, before), stripHeader(t, after)) {
			t.Fatalf("%s changed the state", tc.name)
		}
	}
	// The owner may do all of it.
	if r := apply(&Command{Op: OpKeepAlive, Sessions: []uint64{alice.Session}, Principal: "alice"}); r.Code != CodeOK {
		t.Fatalf("alice keeps alive: %v", r.Code)
	}
	if r := apply(&Command{Op: OpRelease, Session: alice.Session, Name: "jobs/a", Token: grant.Token, Principal: "alice"}); r.Code != CodeOK {
		t.Fatalf("alice releases: %v %s", r.Code, r.Reason)
	}
}

// stripHeader returns a snapshot without its version, applied index and
// clock.
func stripHeader(t *testing.T, b []byte) []byte {
	t.Helper()
	d := decoder{b: b, off: 1}
	d.uvarint("applied")
	d.varint("clock")
	if d.err != nil {
		t.Fatal(d.err)
	}
	return b[d.off:]
}

func TestAuthAdminForcesAndIsNamed(t *testing.T) {
	m, idx := authMachine(t)
	apply := func(c *Command) Result {
		*idx++
		c.Now = int64(*idx)
		return m.Apply(*idx, 1, c)
	}
	a := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"})
	b := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "bob"})
	g := apply(&Command{Op: OpAcquire, Session: a.Session, Name: "jobs/a", Principal: "alice"})
	if q := apply(&Command{Op: OpAcquire, Session: b.Session, Name: "jobs/a", Wait: true, Principal: "bob"}); q.Code != CodeQueued {
		t.Fatalf("bob queues: %v", q.Code)
	}
	r := apply(&Command{Op: OpRelease, Force: true, Name: "jobs/a", Principal: RootUser})
	if r.Code != CodeOK || r.Session != a.Session || r.Token != g.Token {
		t.Fatalf("force release: %+v", r)
	}
	if len(r.Events) != 2 || r.Events[0].Type != EventLockReleased || r.Events[0].By != RootUser || r.Events[1].Type != EventLockGranted || r.Events[1].Session != b.Session {
		t.Fatalf("events: %+v", r.Events)
	}
	c := apply(&Command{Op: OpCloseSession, Session: b.Session, Principal: RootUser})
	if c.Code != CodeOK || c.Events[len(c.Events)-1].By != RootUser {
		t.Fatalf("admin close: %+v", c)
	}
	own := apply(&Command{Op: OpCloseSession, Session: a.Session, Principal: "alice"})
	if own.Code != CodeOK || own.Events[len(own.Events)-1].By != "" {
		t.Fatalf("own close names someone: %+v", own)
	}
}

func TestAuthTokensAndSnapshot(t *testing.T) {
	m, idx := authMachine(t)
	apply := func(c *Command) Result {
		*idx++
		return m.Apply(*idx, 1, c)
	}
	h := strings.Repeat("a", TokenHashLen)
	tok := apply(&Command{Op: OpAuthCreateToken, Name: "alice", Hash: h, Principal: RootUser})
	if tok.Code != CodeOK || tok.Token != *idx {
		t.Fatalf("create token: %+v", tok)
	}
	if u, ok := m.Auth().TokenUser(h); !ok || u != "alice" {
		t.Fatalf("token user %q %v", u, ok)
	}
	view := m.Auth()
	s := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice", TokenID: tok.Token})
	if s.Code != CodeOK {
		t.Fatalf("open with a live token: %v %s", s.Code, s.Reason)
	}
	if r := apply(&Command{Op: OpOpenSession, TTL: 10e9, Principal: "bob", TokenID: tok.Token}); r.Code != CodeUnauthenticated {
		t.Fatalf("alice's token presented for bob: %v", r.Code)
	}

	// Snapshot and restore keep everything, byte for byte.
	snap := m.Snapshot()
	if snap[0] != snapshotVersionAuth {
		t.Fatalf("snapshot version %d", snap[0])
	}
	n := New()
	if err := n.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(n.Snapshot(), snap) {
		t.Fatal("restored state differs")
	}
	if info, _ := n.Session(s.Session); info.Principal != "alice" {
		t.Fatalf("restored session principal %q", info.Principal)
	}
	if !n.Auth().Enabled() || !n.Auth().Allowed("alice", ActionLock, "jobs/x") || n.Auth().Allowed("alice", ActionLock, "x") {
		t.Fatal("restored permissions differ")
	}

	if r := apply(&Command{Op: OpAuthRevokeToken, Token: tok.Token, Principal: RootUser}); r.Code != CodeOK {
		t.Fatalf("revoke: %+v", r)
	}
	if _, ok := m.Auth().TokenUser(h); ok {
		t.Fatal("revoked token still resolves")
	}
	if r := apply(&Command{Op: OpKeepAlive, Sessions: []uint64{s.Session}, Principal: "alice", TokenID: tok.Token}); r.Code != CodeUnauthenticated {
		t.Fatalf("a command resolved from a revoked token: %v", r.Code)
	}
	if _, ok := view.TokenUser(h); !ok {
		t.Fatal("an earlier view changed: views must be immutable")
	}
	// Deleting a role takes it from its users; deleting a user its tokens.
	apply(&Command{Op: OpAuthCreateToken, Name: "bob", Hash: strings.Repeat("b", TokenHashLen), Principal: RootUser})
	if r := apply(&Command{Op: OpAuthDeleteRole, Name: "jobs", Principal: RootUser}); r.Code != CodeOK {
		t.Fatalf("delete role: %+v", r)
	}
	if u, _ := m.Auth().User("alice"); len(u.Roles) != 0 {
		t.Fatalf("alice keeps %v", u.Roles)
	}
	if r := apply(&Command{Op: OpAuthDeleteUser, Name: "bob", Principal: RootUser}); r.Code != CodeOK {
		t.Fatalf("delete user: %+v", r)
	}
	if len(m.Auth().Tokens("bob")) != 0 {
		t.Fatal("bob's token survived him")
	}
	// A second bootstrap changes nothing.
	if r := apply(&Command{Op: OpAuthBootstrap, Hash: strings.Repeat("z", TokenHashLen)}); r.Code != CodeOK || r.Reason == "" {
		t.Fatalf("second bootstrap: %+v", r)
	}
	if _, ok := m.Auth().TokenUser(strings.Repeat("z", TokenHashLen)); ok {
		t.Fatal("second bootstrap made a token")
	}
}

func TestAuthOffChecksNothing(t *testing.T) {
	m := New()
	a := m.Apply(1, 1, &Command{Op: OpOpenSession, TTL: 10e9, Principal: "alice"})
	if r := m.Apply(2, 1, &Command{Op: OpKeepAlive, Sessions: []uint64{a.Session}, Principal: "bob"}); r.Code != CodeOK {
		t.Fatalf("auth off: %v", r.Code)
	}
	if r := m.Apply(3, 1, &Command{Op: OpAuthEnable}); r.Code != CodeInvalid {
		t.Fatalf("enable without an admin: %v", r.Code)
	}
	if m.Snapshot()[0] != snapshotVersionAuth {
		t.Fatal("a session with a principal needs snapshot version 3")
	}
	plain := New()
	plain.Apply(1, 1, &Command{Op: OpOpenSession, TTL: 10e9})
	if plain.Snapshot()[0] != snapshotVersion {
		t.Fatal("a state without auth must keep snapshot version 2")
	}
}

func TestLockAndElectImplyRead(t *testing.T) {
	m, idx := authMachine(t)
	*idx++
	m.Apply(*idx, 1, &Command{Op: OpAuthPutRole, Principal: RootUser, Name: "writer", Permissions: []Permission{{Prefix: "w/", Actions: ActionLock}}})
	*idx++
	m.Apply(*idx, 1, &Command{Op: OpAuthPutUser, Principal: RootUser, Name: "carol", Roles: []string{"writer"}})
	v := m.Auth()
	if !v.Allowed("carol", ActionRead, "w/x") || v.Allowed("carol", ActionRead, "x") || v.Allowed("carol", ActionElect, "w/x") {
		t.Fatal("lock on w/ must grant read on w/ and nothing else")
	}
}
