package lock

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Actions is a set of the actions a permission grants on the names under
// its prefix. Its bit values are part of the log and snapshot formats.
type Actions uint8

// The actions.
const (
	// ActionRead: read locks and elections, watch, observe.
	ActionRead Actions = 1 << iota
	// ActionLock: acquire, release, cancel locks.
	ActionLock
	// ActionElect: campaign, proclaim, resign, cancel in elections.
	ActionElect
	// ActionAdmin: every action on the prefix; with the empty prefix, the
	// administration of users, roles and tokens, force-release of any lock
	// and closing any session.
	ActionAdmin

	allActions = ActionRead | ActionLock | ActionElect | ActionAdmin
)

// String lists the actions, e.g. "read,lock".
func (a Actions) String() string {
	var parts []string
	for _, x := range []struct {
		a    Actions
		name string
	}{{ActionRead, "read"}, {ActionLock, "lock"}, {ActionElect, "elect"}, {ActionAdmin, "admin"}} {
		if a&x.a != 0 {
			parts = append(parts, x.name)
		}
	}
	return strings.Join(parts, ",")
}

// Limits of the auth records, checked by Apply (CodeInvalid beyond them).
const (
	MaxAuthNameLen        = 128 // a user or role name, in bytes
	MaxRolesPerUser       = 64
	MaxPermissionsPerRole = 256
	// TokenHashLen is the length of a token's hash (SHA-256) in bytes.
	TokenHashLen = 32
	// RootUser and RootRole are made by OpAuthBootstrap.
	RootUser = "root"
	RootRole = "admin"
)

// Permission grants Actions on every name that starts with Prefix ("" is
// every name). Locks and elections share the space of names.
type Permission struct {
	Prefix  string
	Actions Actions
}

// AuthUser is a user and the names of its roles (sorted, no duplicates).
type AuthUser struct {
	Name  string
	Roles []string
}

// AuthRole is a role and its permissions (sorted by prefix, one per prefix).
type AuthRole struct {
	Name        string
	Permissions []Permission
}

// AuthToken is a bearer token: its ID (the index of the entry that made
// it), its user and the SHA-256 hash of its secret. The secret is never in
// the state.
type AuthToken struct {
	ID   uint64
	User string
	Hash string // TokenHashLen raw bytes
}

// AuthView is the access-control state at one applied index: whether auth
// is on, and the users, roles and tokens. It is immutable: the Machine
// replaces its view on every change (copy-on-write), so a view handed out
// by Machine.Auth may be read on any goroutine, for as long as one likes.
type AuthView struct {
	enabled bool
	users   map[string]AuthUser
	roles   map[string]AuthRole
	tokens  map[uint64]AuthToken
	byHash  map[string]uint64 // token hash → token ID
}

var emptyAuth = &AuthView{}

// Enabled reports whether principals are checked.
func (v *AuthView) Enabled() bool { return v != nil && v.enabled }

// empty reports whether the view holds nothing (the state before any auth
// command): snapshots then keep their older format.
func (v *AuthView) empty() bool {
	return v == nil || (!v.enabled && len(v.users) == 0 && len(v.roles) == 0 && len(v.tokens) == 0)
}

// User returns user name.
func (v *AuthView) User(name string) (AuthUser, bool) {
	if v == nil {
		return AuthUser{}, false
	}
	u, ok := v.users[name]
	return u, ok
}

// TokenUser returns the user of the token whose hash is hash.
func (v *AuthView) TokenUser(hash string) (string, bool) {
	t, ok := v.TokenByHash(hash)
	return t.User, ok
}

// TokenByHash returns the token whose hash is hash.
func (v *AuthView) TokenByHash(hash string) (AuthToken, bool) {
	if v == nil {
		return AuthToken{}, false
	}
	id, ok := v.byHash[hash]
	if !ok {
		return AuthToken{}, false
	}
	return v.tokens[id], true
}

// Allowed reports whether user may do action a on name: one of its roles
// has a permission whose prefix starts name and that grants a or admin
// (read is granted by lock and elect as well).
func (v *AuthView) Allowed(user string, a Actions, name string) bool {
	return v.permits(user, a, func(prefix string) bool { return strings.HasPrefix(name, prefix) })
}

// Covers reports whether user may do action a on every name that starts
// with prefix (a listing or a watch of that prefix).
func (v *AuthView) Covers(user string, a Actions, prefix string) bool {
	return v.Allowed(user, a, prefix)
}

// IsAdmin reports whether user has admin on every name.
func (v *AuthView) IsAdmin(user string) bool {
	return v.permits(user, ActionAdmin, func(prefix string) bool { return prefix == "" })
}

func (v *AuthView) permits(user string, a Actions, match func(prefix string) bool) bool {
	u, ok := v.User(user)
	if !ok {
		return false
	}
	grants := a | ActionAdmin
	if a == ActionRead {
		// Who may lock or elect a name may read it: a holder must be able
		// to see that it lost its lock.
		grants |= ActionLock | ActionElect
	}
	for _, rn := range u.Roles {
		for _, p := range v.roles[rn].Permissions {
			if p.Actions&grants != 0 && match(p.Prefix) {
				return true
			}
		}
	}
	return false
}

// Users returns every user, sorted by name (copies).
func (v *AuthView) Users() []AuthUser {
	if v == nil {
		return nil
	}
	out := make([]AuthUser, 0, len(v.users))
	for _, name := range slices.Sorted(maps.Keys(v.users)) {
		u := v.users[name]
		out = append(out, AuthUser{Name: u.Name, Roles: slices.Clone(u.Roles)})
	}
	return out
}

// Roles returns every role, sorted by name (copies).
func (v *AuthView) Roles() []AuthRole {
	if v == nil {
		return nil
	}
	out := make([]AuthRole, 0, len(v.roles))
	for _, name := range slices.Sorted(maps.Keys(v.roles)) {
		r := v.roles[name]
		out = append(out, AuthRole{Name: r.Name, Permissions: slices.Clone(r.Permissions)})
	}
	return out
}

// Role returns role name.
func (v *AuthView) Role(name string) (AuthRole, bool) {
	if v == nil {
		return AuthRole{}, false
	}
	r, ok := v.roles[name]
	return r, ok
}

// Tokens returns the tokens of user (every token when user is ""), sorted
// by ID.
func (v *AuthView) Tokens(user string) []AuthToken {
	if v == nil {
		return nil
	}
	var out []AuthToken
	for _, id := range slices.Sorted(maps.Keys(v.tokens)) {
		if t := v.tokens[id]; user == "" || t.User == user {
			out = append(out, t)
		}
	}
	return out
}

// Token returns token id.
func (v *AuthView) Token(id uint64) (AuthToken, bool) {
	if v == nil {
		return AuthToken{}, false
	}
	t, ok := v.tokens[id]
	return t, ok
}

// clone returns a copy whose maps may be changed.
func (v *AuthView) clone() *AuthView {
	return &AuthView{
		enabled: v.enabled,
		users:   maps.Clone(orEmpty(v.users)),
		roles:   maps.Clone(orEmpty(v.roles)),
		tokens:  maps.Clone(orEmpty(v.tokens)),
		byHash:  maps.Clone(orEmpty(v.byHash)),
	}
}

func orEmpty[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

// hasAdmin reports whether some user has admin on every name.
func (v *AuthView) hasAdmin() bool {
	for name := range v.users {
		if v.IsAdmin(name) {
			return true
		}
	}
	return false
}

// Auth returns the access-control state. The view is immutable and stays
// valid after later Apply calls (which replace it when they change it).
func (m *Machine) Auth() *AuthView {
	if m.auth == nil {
		return emptyAuth
	}
	return m.auth
}

// authOp reports whether op administers the cluster (access control,
// quotas): an admin's op, encoded only in command version 3.
func authOp(op Op) bool {
	return op >= OpAuthPutUser && op <= OpAlarm
}

// validAuth reports whether an auth command is well formed (see valid).
func validAuth(c *Command) bool {
	nameOK := c.Name != "" && len(c.Name) <= MaxAuthNameLen
	switch c.Op {
	case OpAuthPutUser:
		if !nameOK || len(c.Roles) > MaxRolesPerUser {
			return false
		}
		for i, r := range c.Roles {
			if r == "" || len(r) > MaxAuthNameLen || (i > 0 && r <= c.Roles[i-1]) {
				return false // sorted and unique: the encoding is canonical
			}
		}
		return true
	case OpAuthPutRole:
		if !nameOK || len(c.Permissions) > MaxPermissionsPerRole {
			return false
		}
		for i, p := range c.Permissions {
			if p.Actions == 0 || p.Actions&^allActions != 0 || (i > 0 && p.Prefix <= c.Permissions[i-1].Prefix) {
				return false
			}
		}
		return true
	case OpAuthDeleteUser, OpAuthDeleteRole:
		return nameOK
	case OpAuthCreateToken:
		return nameOK && len(c.Hash) == TokenHashLen
	case OpAuthRevokeToken:
		return c.Token != 0
	case OpAuthEnable:
		return true
	case OpAuthBootstrap:
		return len(c.Hash) == TokenHashLen
	case OpSetLimits, OpInitLimits:
		return true
	case OpAlarm:
		return c.Alarm.Member != 0 && c.Alarm.Kind == AlarmNoSpace
	}
	return false
}

// denied decides, before anything changes, whether the command's principal
// may make it. With auth off nothing is denied. With auth on: the
// internal commands (OpTick, OpExpire, OpPublish, which clients cannot
// send) pass; any other needs a principal that is a user
// (CodeUnauthenticated); a session belongs to the principal that opened
// it, and only that principal may renew it, use it or withdraw it (an admin
// may close it, or force-release its lock); locks need ActionLock on the
// name, elections ActionElect, auth administration admin on every name.
// OpAuthBootstrap and OpInitLimits are never denied: they change nothing
// once users exist or limits were set.
func (m *Machine) denied(c *Command) (Result, bool) {
	v := m.Auth()
	if !v.enabled {
		return Result{}, false
	}
	switch c.Op {
	case OpTick, OpExpire, OpPublish, OpAuthBootstrap, OpInitLimits, OpAlarm,
		OpMemberAdd, OpMemberPromote, OpMemberRemove, OpClusterVersion:
		// Internal: raftnode proposes them (membership changes only for an
		// admin, checked by the HTTP layer before the change is proposed).
		return Result{}, false
	}
	p := c.Principal
	if _, ok := v.users[p]; !ok || p == "" {
		if p == "" {
			return Result{Code: CodeUnauthenticated, Reason: "no principal"}, true
		}
		return Result{Code: CodeUnauthenticated, Reason: fmt.Sprintf("principal %q is not a user", p)}, true
	}
	if c.TokenID != 0 {
		if t, ok := v.tokens[c.TokenID]; !ok || t.User != p {
			return Result{Code: CodeUnauthenticated, Reason: fmt.Sprintf("token %d was revoked", c.TokenID)}, true
		}
	}
	deny := func(format string, args ...any) (Result, bool) {
		return Result{Code: CodePermissionDenied, Reason: fmt.Sprintf(format, args...)}, true
	}
	owns := func(id uint64) bool {
		s, ok := m.sessions[id]
		return !ok || s.principal == p // a missing session answers session_not_found as usual
	}
	need := func(a Actions) (Result, bool) {
		if !v.Allowed(p, a, c.Name) {
			return deny("%q may not %s %q", p, a, c.Name)
		}
		if c.Session != 0 && !owns(c.Session) {
			return deny("session %d belongs to another principal", c.Session)
		}
		return Result{}, false
	}
	switch c.Op {
	case OpOpenSession:
		return Result{}, false
	case OpKeepAlive:
		for _, id := range c.Sessions {
			if !owns(id) {
				return deny("session %d belongs to another principal", id)
			}
		}
		return Result{}, false
	case OpCloseSession:
		if !owns(c.Session) && !v.IsAdmin(p) {
			return deny("session %d belongs to another principal", c.Session)
		}
		return Result{}, false
	case OpAcquire, OpCancel, OpSemAcquire, OpSemRelease, OpSemCancel:
		// Semaphores are guarded like locks: the lock action on the name.
		return need(ActionLock)
	case OpAcquireAll:
		for _, n := range c.Names {
			if !v.Allowed(p, ActionLock, n) {
				return deny("%q may not %s %q", p, ActionLock, n)
			}
		}
		if !owns(c.Session) {
			return deny("session %d belongs to another principal", c.Session)
		}
		return Result{}, false
	case OpRelease:
		if c.Force {
			if !v.Allowed(p, ActionAdmin, c.Name) {
				return deny("%q may not force-release %q (needs admin)", p, c.Name)
			}
			return Result{}, false
		}
		return need(ActionLock)
	case OpCampaign, OpProclaim, OpResign:
		return need(ActionElect)
	}
	if authOp(c.Op) && !v.IsAdmin(p) {
		return deny("%q may not administer access control (needs admin on every name)", p)
	}
	return Result{}, false
}

// applyAuth applies an auth command (validated and allowed).
func (a *applier) applyAuth(c *Command) {
	m := a.m
	v := m.Auth().clone()
	switch c.Op {
	case OpAuthPutUser:
		for _, r := range c.Roles {
			if _, ok := v.roles[r]; !ok {
				a.res = Result{Code: CodeNotFound, Reason: fmt.Sprintf("role %q does not exist", r)}
				return
			}
		}
		v.users[c.Name] = AuthUser{Name: c.Name, Roles: slices.Clone(c.Roles)}
	case OpAuthDeleteUser:
		if _, ok := v.users[c.Name]; !ok {
			a.res = Result{Code: CodeNotFound, Reason: fmt.Sprintf("user %q does not exist", c.Name)}
			return
		}
		delete(v.users, c.Name)
		for id, t := range v.tokens {
			if t.User == c.Name {
				delete(v.tokens, id)
				delete(v.byHash, t.Hash)
			}
		}
	case OpAuthPutRole:
		v.roles[c.Name] = AuthRole{Name: c.Name, Permissions: slices.Clone(c.Permissions)}
	case OpAuthDeleteRole:
		if _, ok := v.roles[c.Name]; !ok {
			a.res = Result{Code: CodeNotFound, Reason: fmt.Sprintf("role %q does not exist", c.Name)}
			return
		}
		delete(v.roles, c.Name)
		for name, u := range v.users {
			if i := slices.Index(u.Roles, c.Name); i >= 0 {
				v.users[name] = AuthUser{Name: name, Roles: slices.Delete(slices.Clone(u.Roles), i, i+1)}
			}
		}
	case OpAuthCreateToken:
		if _, ok := v.users[c.Name]; !ok {
			a.res = Result{Code: CodeNotFound, Reason: fmt.Sprintf("user %q does not exist", c.Name)}
			return
		}
		if _, dup := v.byHash[c.Hash]; dup {
			a.res = Result{Code: CodeInvalid, Reason: "a token with this secret exists"}
			return
		}
		v.tokens[a.index] = AuthToken{ID: a.index, User: c.Name, Hash: c.Hash}
		v.byHash[c.Hash] = a.index
		a.res.Token = a.index
	case OpAuthRevokeToken:
		t, ok := v.tokens[c.Token]
		if !ok {
			a.res = Result{Code: CodeNotFound, Reason: fmt.Sprintf("token %d does not exist", c.Token)}
			return
		}
		delete(v.tokens, t.ID)
		delete(v.byHash, t.Hash)
		a.res.Token = t.ID
	case OpAuthEnable:
		if !v.hasAdmin() {
			a.res = Result{Code: CodeInvalid, Reason: "no user has admin on every name: create one before turning auth on"}
			return
		}
		v.enabled = true
	case OpAuthBootstrap:
		if len(v.users) != 0 || v.enabled {
			a.res = Result{Code: CodeOK, Reason: "auth is already set up; the bootstrap token is ignored"}
			return
		}
		v.roles[RootRole] = AuthRole{Name: RootRole, Permissions: []Permission{{Prefix: "", Actions: ActionAdmin}}}
		v.users[RootUser] = AuthUser{Name: RootUser, Roles: []string{RootRole}}
		v.tokens[a.index] = AuthToken{ID: a.index, User: RootUser, Hash: c.Hash}
		v.byHash[c.Hash] = a.index
		v.enabled = true
		a.res.Token = a.index
	}
	if v.enabled && !v.hasAdmin() {
		a.res = Result{Code: CodeInvalid, Reason: "the change would leave no user with admin on every name while auth is on"}
		return
	}
	m.auth = v
	a.res.Code = CodeOK
}

// SortedPermissions returns ps sorted by prefix, merging the actions of
// equal prefixes: the canonical form OpAuthPutRole requires.
func SortedPermissions(ps []Permission) []Permission {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b Permission) int { return cmp.Compare(a.Prefix, b.Prefix) })
	merged := out[:0]
	for _, p := range out {
		if n := len(merged); n > 0 && merged[n-1].Prefix == p.Prefix {
			merged[n-1].Actions |= p.Actions
			continue
		}
		merged = append(merged, p)
	}
	return merged
}
