package api

import "strings"

// Access control (issue 11). With auth on, every request under /v1/ except
// GET /v1/openapi.json needs a principal: the common name of a verified TLS
// client certificate, or the user of a bearer token
// (Authorization: Bearer <token>). Users, roles and token hashes are
// replicated state; a role grants actions on name prefixes.

// Actions a Permission grants on the names under its prefix.
const (
	// ActionRead allows GETs of locks and elections, watch and observe.
	ActionRead = "read"
	// ActionLock allows acquire, release and cancel of locks.
	ActionLock = "lock"
	// ActionElect allows campaign, proclaim, resign and cancel of elections.
	ActionElect = "elect"
	// ActionAdmin allows everything, on every name of the prefix, and with
	// the empty prefix the administration of users, roles and tokens,
	// force-release of locks and closing any session.
	ActionAdmin = "admin"
)

// Actions lists every action, in a stable order.
var Actions = []string{ActionRead, ActionLock, ActionElect, ActionAdmin}

// Paths of the auth API (admin only, except WhoAmIPath).
const (
	AuthUsersPath  = "/v1/auth/users"
	AuthRolesPath  = "/v1/auth/roles"
	AuthTokensPath = "/v1/auth/tokens"
	// AuthEnablePath turns auth on in a running cluster: POST by an admin
	// principal (a user with role admin must exist; without auth on, any
	// caller may post it, as etcd's "auth enable").
	AuthEnablePath = "/v1/auth/enable"
	// WhoAmIPath answers the caller's principal and roles.
	WhoAmIPath = "/v1/auth/whoami"
)

// LimitsPath reads (GET) and sets (POST, admin) the cluster's quotas.
const LimitsPath = "/v1/limits"

// ClusterLimits are the cluster's quotas (replicated settings). In a POST, an
// absent or zero field means the default. Exceeding one answers 429
// quota_exceeded (507 no_space for max_state_bytes) naming it.
type ClusterLimits struct {
	// SessionsPerPrincipal bounds the open sessions of one principal
	// (anonymous sessions, without auth, are not counted).
	SessionsPerPrincipal uint64 `json:"sessions_per_principal,omitempty"`
	// LocksPerSession bounds the locks a session holds or waits for.
	LocksPerSession uint64 `json:"locks_per_session,omitempty"`
	// WaitersPerLock bounds a lock's queue (and an election's candidates).
	WaitersPerLock uint64 `json:"waiters_per_lock,omitempty"`
	// ElectionsPerSession bounds the elections a session leads or runs in.
	ElectionsPerSession uint64 `json:"elections_per_session,omitempty"`
	// MaxStateBytes bounds the state's estimated size.
	MaxStateBytes uint64 `json:"max_state_bytes,omitempty"`
	// StateBytes is the state's estimated size now (answers only): 256
	// bytes per session and lock, 512 per election.
	StateBytes uint64 `json:"state_bytes,omitempty"`
}

// HeaderAuthorization carries "Bearer <token>".
const HeaderAuthorization = "Authorization"

// HeaderPrincipal names the principal, proven by a client certificate, of
// a request a follower forwards (a bearer token travels as it came, in
// Authorization). The leader trusts it only from a member, proven by the
// member's TLS certificate; a follower always drops what a client sent in
// it. Clients never set it.
const HeaderPrincipal = "Raftlock-Principal"

// MaxUserNameLen, MaxRoleNameLen bound the names of users and roles, in bytes.
const (
	MaxUserNameLen = 128
	MaxRoleNameLen = 128
	// MaxRolesPerUser and MaxPermissionsPerRole bound the records.
	MaxRolesPerUser       = 64
	MaxPermissionsPerRole = 256
)

// RootUser is the user made by raftlockd --auth-bootstrap-token-file, with
// role RootRole (admin on every name).
const (
	RootUser = "root"
	RootRole = "admin"
)

// Permission grants Actions on every name that starts with Prefix ("" is
// every name). Locks and elections share the permission space: prefix
// "jobs/" covers lock "jobs/x" and election "jobs/x".
type Permission struct {
	Prefix  string   `json:"prefix"`
	Actions []string `json:"actions"`
}

// Role is a named set of permissions.
type Role struct {
	Name        string       `json:"name"`
	Permissions []Permission `json:"permissions"`
}

// User is a principal with roles. A certificate principal is the user whose
// name is the certificate's common name.
type User struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// CreateTokenRequest is the body of POST /v1/auth/tokens.
type CreateTokenRequest struct {
	User string `json:"user"`
}

// Token describes a bearer token. The secret itself is shown only once, in
// CreateTokenResponse; the cluster keeps only its SHA-256 hash.
type Token struct {
	// ID is the index of the log entry that created it (decimal string).
	ID   SessionID `json:"id"`
	User string    `json:"user"`
}

// CreateTokenResponse is the 201 answer of POST /v1/auth/tokens.
type CreateTokenResponse struct {
	ID    SessionID `json:"id"`
	User  string    `json:"user"`
	Token string    `json:"token"`
}

// UsersResponse, RolesResponse and TokensResponse answer the GET listings.
type UsersResponse struct {
	Users []User `json:"users"`
}

// RolesResponse answers GET /v1/auth/roles.
type RolesResponse struct {
	Roles []Role `json:"roles"`
}

// TokensResponse answers GET /v1/auth/tokens.
type TokensResponse struct {
	Tokens []Token `json:"tokens"`
}

// AuthStatus answers GET /v1/auth/whoami and POST /v1/auth/enable.
type AuthStatus struct {
	// Enabled reports whether the cluster checks principals.
	Enabled bool `json:"enabled"`
	// Principal is the caller's principal ("" when anonymous).
	Principal string `json:"principal,omitempty"`
	// Roles are the caller's roles.
	Roles []string `json:"roles,omitempty"`
}

// BearerToken extracts the token of an Authorization header value
// "Bearer <token>" (scheme case-insensitive, one space, token of printable
// ASCII without spaces, at most 512 bytes). ok is false for anything else.
func BearerToken(header string) (token string, ok bool) {
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" || len(tok) > 512 {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return tok, true
}
