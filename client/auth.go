package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/raftlock/raftlock/api"
)

// Access control (issue 11). With auth on, every call needs a principal:
// Config.AuthToken, or a client certificate in Config.TLS. The calls of
// this file administer users, roles and tokens and need a principal with
// the admin action on the empty prefix (role api.RootRole of user
// api.RootUser, say), except WhoAmI, which anyone may call, and EnableAuth,
// which anyone may call while auth is off. Without the permission they
// fail with an error matching api.ErrPermissionDenied; without a principal
// (auth on), api.ErrUnauthenticated.
//
// Retries: the listings, WhoAmI, PutUser, PutRole and EnableAuth are
// retried as any call (they change nothing, or set a record to a given
// value, so a retry after an unknown outcome is safe). DeleteUser,
// DeleteRole and RevokeToken are retried too; an answer 404 to a retry
// after an unknown outcome means the first attempt did it, and they return
// nil. CreateToken and ForceRelease are never retried after an unknown
// outcome: a retry would make a second token, or release the lock of the
// next holder; they return an error matching api.ErrOutcomeUnknown
// instead.

// Users lists the users, sorted by name (GET /v1/auth/users).
func (c *Client) Users(ctx context.Context) ([]api.User, error) {
	var r api.UsersResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.AuthUsersPath}, &r); err != nil {
		return nil, fmt.Errorf("client: list users: %w", err)
	}
	return orEmpty(r.Users), nil
}

// PutUser creates user u, or replaces the roles of the user of that name
// (POST /v1/auth/users), and returns the user as stored. Every role must
// exist (else an error matching api.ErrNotFound). A principal whose
// certificate's common name is u.Name is that user. A change that would
// leave no user with admin on every name while auth is on is refused
// (api.ErrInvalidArgument).
func (c *Client) PutUser(ctx context.Context, u api.User) (*api.User, error) {
	if err := checkAuthName("user", u.Name, api.MaxUserNameLen); err != nil {
		return nil, err
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	var out api.User
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.AuthUsersPath, body: u, write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: put user %q: %w", u.Name, err)
	}
	return &out, nil
}

// DeleteUser deletes user name and revokes its tokens (DELETE
// /v1/auth/users/{name}). An unknown user is an error matching
// api.ErrNotFound, except after an unknown outcome of an earlier attempt
// of this call (then it was this call that deleted it, and DeleteUser
// returns nil).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	if err := checkAuthName("user", name, api.MaxUserNameLen); err != nil {
		return err
	}
	if err := c.deleteIdempotent(ctx, api.AuthUsersPath+"/"+url.PathEscape(name)); err != nil {
		return fmt.Errorf("client: delete user %q: %w", name, err)
	}
	return nil
}

// Roles lists the roles, sorted by name (GET /v1/auth/roles).
func (c *Client) Roles(ctx context.Context) ([]api.Role, error) {
	var r api.RolesResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.AuthRolesPath}, &r); err != nil {
		return nil, fmt.Errorf("client: list roles: %w", err)
	}
	return orEmpty(r.Roles), nil
}

// PutRole creates role r, or replaces the permissions of the role of that
// name (POST /v1/auth/roles), and returns the role as stored. Each
// permission grants its actions (api.ActionRead, ActionLock, ActionElect,
// ActionAdmin) on every lock and election whose name starts with its
// prefix ("" is every name).
func (c *Client) PutRole(ctx context.Context, r api.Role) (*api.Role, error) {
	if err := checkAuthName("role", r.Name, api.MaxRoleNameLen); err != nil {
		return nil, err
	}
	for _, p := range r.Permissions {
		if len(p.Actions) == 0 {
			return nil, fmt.Errorf("client: %w: role %q: the permission on prefix %q has no action: give some of %s", api.ErrInvalidArgument, r.Name, p.Prefix, strings.Join(api.Actions, ", "))
		}
	}
	if r.Permissions == nil {
		r.Permissions = []api.Permission{}
	}
	var out api.Role
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.AuthRolesPath, body: r, write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: put role %q: %w", r.Name, err)
	}
	return &out, nil
}

// DeleteRole deletes role name (DELETE /v1/auth/roles/{name}) and takes
// it from the users that had it. Unknown roles and retries are as in
// DeleteUser; the last admin is kept as in PutUser.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	if err := checkAuthName("role", name, api.MaxRoleNameLen); err != nil {
		return err
	}
	if err := c.deleteIdempotent(ctx, api.AuthRolesPath+"/"+url.PathEscape(name)); err != nil {
		return fmt.Errorf("client: delete role %q: %w", name, err)
	}
	return nil
}

// Tokens lists the bearer tokens of user, or of every user when user is
// "" (GET /v1/auth/tokens[?user=]): their IDs and users, never their
// secrets, which the cluster does not keep.
func (c *Client) Tokens(ctx context.Context, user string) ([]api.Token, error) {
	var q url.Values
	if user != "" {
		q = url.Values{"user": {user}}
	}
	var r api.TokensResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.AuthTokensPath, query: q}, &r); err != nil {
		return nil, fmt.Errorf("client: list tokens: %w", err)
	}
	return orEmpty(r.Tokens), nil
}

// CreateToken makes a new bearer token for user (POST /v1/auth/tokens).
// The answer's Token is the secret: it is shown this once (the cluster
// keeps only its hash), so store it now; pass it as Config.AuthToken. An
// unknown outcome is not retried (a retry would make a second token): the
// error then matches api.ErrOutcomeUnknown, and Tokens(ctx, user) shows
// whether a token was made (revoke it: its secret is lost).
func (c *Client) CreateToken(ctx context.Context, user string) (*api.CreateTokenResponse, error) {
	if err := checkAuthName("user", user, api.MaxUserNameLen); err != nil {
		return nil, err
	}
	var out api.CreateTokenResponse
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.AuthTokensPath, body: api.CreateTokenRequest{User: user}, write: true}, &out); err != nil {
		return nil, fmt.Errorf("client: create token for %q: %w", user, err)
	}
	return &out, nil
}

// RevokeToken revokes token id (DELETE /v1/auth/tokens/{id}): once the
// revocation is committed, no node accepts the token. An unknown token and
// retries are as in DeleteUser.
func (c *Client) RevokeToken(ctx context.Context, id api.SessionID) error {
	if id == 0 {
		return fmt.Errorf("client: revoke token: %w: token ID 0", api.ErrInvalidArgument)
	}
	if err := c.deleteIdempotent(ctx, api.AuthTokensPath+"/"+id.String()); err != nil {
		return fmt.Errorf("client: revoke token %s: %w", id, err)
	}
	return nil
}

// WhoAmI returns whether auth is on and the caller's principal and roles
// as the answering node sees them (GET /v1/auth/whoami). Anyone may call
// it; it is the way to check a token or a certificate.
func (c *Client) WhoAmI(ctx context.Context) (*api.AuthStatus, error) {
	var out api.AuthStatus
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.WhoAmIPath}, &out); err != nil {
		return nil, fmt.Errorf("client: whoami: %w", err)
	}
	return &out, nil
}

// EnableAuth turns auth on in a running cluster (POST /v1/auth/enable) and
// returns the new status. A user with admin on every name must exist first
// (else api.ErrInvalidArgument): create it and a token for it with
// PutRole, PutUser and CreateToken, and give that token to the Clients
// that administer, or nobody may change anything afterwards. With auth
// already on it needs an admin principal and changes nothing.
func (c *Client) EnableAuth(ctx context.Context) (*api.AuthStatus, error) {
	var out api.AuthStatus
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.AuthEnablePath, body: struct{}{}, write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: enable auth: %w", err)
	}
	return &out, nil
}

// ForceRelease releases lock name whoever holds it (POST
// /v1/locks/{name}/release with "force": true), an action that needs admin
// on a prefix of name: the
// lock goes to its next waiter in the same log entry, the holder's
// Mutex.Lost closes at its next renewal, and the "released" event in
// /v1/watch names the admin. It returns the grant released (holder session
// and token). A free lock is an error matching api.ErrNotHolder. An
// unknown outcome is not retried (a retry would release the next holder's
// grant): the error matches api.ErrOutcomeUnknown; LockInfo tells what
// happened.
func (c *Client) ForceRelease(ctx context.Context, name string) (*api.LockGrant, error) {
	if err := api.ValidateLockName(name); err != nil {
		return nil, fmt.Errorf("client: force release: %w: %v", api.ErrInvalidArgument, err)
	}
	var g api.LockGrant
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.LockPath(name) + "/release", body: api.ReleaseRequest{Force: true}, write: true}, &g); err != nil {
		return nil, fmt.Errorf("client: force release of lock %q: %w", name, err)
	}
	return &g, nil
}

// deleteIdempotent sends DELETE path, retried after unknown outcomes; a
// 404 not_found to such a retry is success.
func (c *Client) deleteIdempotent(ctx context.Context, path string) error {
	info, err := c.do(ctx, call{method: http.MethodDelete, path: path, write: true, retryUnknown: true}, nil)
	if err != nil && info.unknownBefore && errors.Is(err, api.ErrNotFound) {
		return nil
	}
	return err
}

// checkAuthName checks a user or role name as far as the SDK can: 1 to max
// bytes.
func checkAuthName(what, name string, max int) error {
	if name == "" || len(name) > max {
		return fmt.Errorf("client: %w: %s name %q: want 1 to %d bytes", api.ErrInvalidArgument, what, name, max)
	}
	return nil
}

// orEmpty returns s, or an empty slice for nil: listings are never null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// TransferLeader hands the cluster's Raft leadership to member to (0: the
// voter whose log is furthest along) and returns the member that leads
// afterwards (POST /v1/leader/transfer; admin once auth is on). Use it
// before restarting the leader: the cluster then waits for no election
// timeout. It is retried like any write (a second transfer is harmless);
// api.ErrUnavailable when leadership did not move in time.
func (c *Client) TransferLeader(ctx context.Context, to uint64) (*api.LeaderTransfer, error) {
	var out api.LeaderTransfer
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.LeaderTransferPath, body: api.LeaderTransferRequest{To: to}, write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: transfer leadership: %w", err)
	}
	return &out, nil
}
