package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
)

// Authentication and authorization at the edge.
//
// A request's principal is, in this order: the principal a member forwarded
// it for (header Raftlock-Principal, trusted only when Config.IsMember
// proves the sender is a member by its certificate), the user of a bearer
// token (Authorization: Bearer), or the common name of a verified TLS
// client certificate. With auth off, a principal that resolves is still
// recorded (sessions belong to it), and one that does not is anonymous.
// With auth on, a request without a principal gets 401, except the probes
// and the API description (unauthenticatedPaths).
//
// Writes carry the principal into their Raft command, and the state machine
// decides on it when the entry is applied (lock.Machine.denied): every node
// decides alike, and a token revoked or a permission taken away by an
// earlier entry is never honoured by a later one. Reads are checked here,
// against the node's applied access-control state (raftnode.Proposer.Auth).

// unauthenticatedPaths answer without a principal: probes have none.
// GET /v1/auth/whoami resolves the principal but answers without one too.
var unauthenticatedPaths = map[string]bool{
	"/healthz":         true,
	"/readyz":          true,
	"/metrics":         true,
	"/v1/openapi.json": true,
}

// isUIPath reports whether path is one of the web console's files: public
// (the console asks for a token and sends it with its API requests).
func isUIPath(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

// authenticate resolves the request's principal and refuses requests
// without one once auth is on (401). While this node waits for the auth
// bootstrap it was given (Config.AuthBootstrapToken) to be applied, it
// answers 503: serving before it would serve without auth.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if unauthenticatedPaths[r.URL.Path] || isUIPath(r.URL.Path) {
			return next(c)
		}
		v := s.node.Auth()
		if s.cfg.AuthBootstrapToken != "" && !v.Enabled() && len(v.Users()) == 0 {
			return api.Errorf(api.CodeUnavailable, "auth is being set up from the bootstrap token and is not applied on this node yet; retry")
		}
		p, tokenID, cert, err := s.principal(r, v)
		if err == errUnknownToken && s.askLeader(r) {
			// A token created a moment ago through another node may not be
			// applied here yet: the leader, which applied it, decides.
			if _, err := readBody(c); err != nil {
				return err
			}
			return s.forward(c, s.node.Status().LeaderClientURL, 2*s.cfg.RequestTimeout)
		}
		if err != nil {
			return err
		}
		if tokenID != 0 {
			c.Set(tokenKey, tokenID)
		}
		if cert {
			c.Set(certKey, true)
		}
		if v.Enabled() && p == "" && r.URL.Path != api.WhoAmIPath {
			return api.Errorf(api.CodeUnauthenticated, "auth is on: send Authorization: Bearer <token>, or a TLS client certificate whose common name is a user")
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// errUnknownToken: the bearer token resolves to no token of this node's
// applied state (unknown, revoked, or not applied here yet).
var errUnknownToken = api.Errorf(api.CodeUnauthenticated, "the bearer token is unknown or revoked")

// askLeader reports whether a request whose token this node does not know
// should go to the leader: this node follows a leader whose URL it knows,
// the request was not forwarded already, and it is not a stream (a
// forwarded request is bounded in time).
func (s *Server) askLeader(r *http.Request) bool {
	st := s.node.Status()
	return !st.IsLeader && st.LeaderClientURL != "" && r.Header.Get(api.HeaderForwarded) == "" &&
		r.URL.Path != "/v1/watch" && !strings.HasSuffix(r.URL.Path, "/observe")
}

// principal resolves r's principal against v (see the comment above),
// with the ID of the token that proved it (0 for none) and whether a
// certificate did. A bearer token that does not resolve is an error when
// auth is on, and ignored when it is off.
func (s *Server) principal(r *http.Request, v *lock.AuthView) (p string, tokenID uint64, cert bool, err error) {
	if p := r.Header.Get(api.HeaderPrincipal); p != "" && r.Header.Get(api.HeaderForwarded) != "" &&
		s.cfg.IsMember != nil && s.cfg.IsMember(r) {
		return p, 0, true, nil
	}
	if h := r.Header.Get(api.HeaderAuthorization); h != "" {
		tok, ok := api.BearerToken(h)
		if ok {
			sum := sha256.Sum256([]byte(tok))
			if t, found := v.TokenByHash(string(sum[:])); found {
				return t.User, t.ID, false, nil
			}
		}
		if v.Enabled() {
			if !ok {
				return "", 0, false, api.Errorf(api.CodeUnauthenticated, "the Authorization header is not \"Bearer <token>\"")
			}
			return "", 0, false, errUnknownToken
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		cn := r.TLS.PeerCertificates[0].Subject.CommonName
		if _, ok := v.User(cn); ok || !v.Enabled() {
			return cn, 0, cn != "", nil
		}
		if s.cfg.IsMember != nil && s.cfg.IsMember(r) {
			return "", 0, false, nil // a member's own request (it names no principal): anonymous
		}
		return "", 0, false, api.Errorf(api.CodeUnauthenticated, "the client certificate's common name %q is not a user", cn)
	}
	return "", 0, false, nil
}

// stillAuthenticated reports whether principal p, proven by token tokenID
// (0: by a certificate), still holds in v, the state a linearizable read runs on: its token (if it used one)
// was not revoked, and it is still a user. It runs on the Raft loop, so a
// read that starts after a revocation committed never sees the revoked
// token's principal served.
func stillAuthenticated(p string, tokenID uint64, v *lock.AuthView) bool {
	if !v.Enabled() {
		return true
	}
	if _, ok := v.User(p); !ok {
		return false
	}
	if id := tokenID; id != 0 {
		t, ok := v.Token(id)
		return ok && t.User == p
	}
	return true
}

// propose proposes cmd for the request's principal and the token that
// proved it (the state machine refuses it if the token was revoked). A
// command whose name the principal may not touch at all, by this node's
// applied state, is refused here (CodePermissionDenied, index 0) without
// costing a log entry; the state machine still decides every command that
// goes through, ownership of sessions included.
func (s *Server) propose(c echo.Context, ctx context.Context, cmd *lock.Command) (lock.Result, uint64, error) {
	if res, denied := s.stamp(c, cmd); denied {
		return res, 0, nil
	}
	return s.node.Propose(ctx, cmd)
}

// stamp sets cmd's principal and token from the request, and returns the
// permission_denied result (true) when the principal may not do cmd: it
// must then not be proposed.
func (s *Server) stamp(c echo.Context, cmd *lock.Command) (lock.Result, bool) {
	cmd.Principal = principalOf(c)
	cmd.TokenID = tokenOf(c)
	if v := s.node.Auth(); v.Enabled() {
		if a, ok := nameAction(cmd); ok && !v.Allowed(cmd.Principal, a, cmd.Name) {
			return lock.Result{Code: lock.CodePermissionDenied, Reason: fmt.Sprintf("%q may not %s %q", cmd.Principal, a, cmd.Name)}, true
		}
	}
	return lock.Result{}, false
}

// nameAction is the action a command needs on its name (see
// lock.Machine's rules), false for commands without a name.
func nameAction(cmd *lock.Command) (lock.Actions, bool) {
	switch cmd.Op {
	case lock.OpAcquire, lock.OpCancel:
		return lock.ActionLock, true
	case lock.OpRelease:
		if cmd.Force {
			return lock.ActionAdmin, true
		}
		return lock.ActionLock, true
	case lock.OpCampaign, lock.OpProclaim, lock.OpResign:
		return lock.ActionElect, true
	}
	return 0, false
}

// allow refuses (403) a read of name that the principal may not do. With
// auth off it allows everything.
func (s *Server) allow(c echo.Context, a lock.Actions, name string) error {
	v := s.node.Auth()
	if !v.Enabled() || v.Allowed(principalOf(c), a, name) {
		return nil
	}
	return api.Errorf(api.CodePermissionDenied, "%q may not %s %q", principalOf(c), a, name)
}

// allowPrefix refuses (403) a listing or watch of every name under prefix
// that the principal may not do.
func (s *Server) allowPrefix(c echo.Context, a lock.Actions, prefix string) error {
	v := s.node.Auth()
	if !v.Enabled() || v.Covers(principalOf(c), a, prefix) {
		return nil
	}
	if prefix == "" {
		return api.Errorf(api.CodePermissionDenied, "%q may not %s every name: give a prefix it may %s", principalOf(c), a, a)
	}
	return api.Errorf(api.CodePermissionDenied, "%q may not %s every name under %q", principalOf(c), a, prefix)
}

// allowSession refuses (403) a read of a session that belongs to another
// principal (an admin may read any).
func (s *Server) allowSession(c echo.Context, owner string, id uint64) error {
	v := s.node.Auth()
	p := principalOf(c)
	if !v.Enabled() || owner == p || v.IsAdmin(p) {
		return nil
	}
	return api.Errorf(api.CodePermissionDenied, "session %d belongs to another principal", id)
}

// requireAdmin refuses (403) auth administration by a non-admin when auth
// is on. With auth off anyone may prepare users, roles and tokens, as in
// etcd, before turning it on.
func (s *Server) requireAdmin(c echo.Context) error {
	v := s.node.Auth()
	if !v.Enabled() || v.IsAdmin(principalOf(c)) {
		return nil
	}
	return api.Errorf(api.CodePermissionDenied, "%q may not administer access control (needs admin on every name)", principalOf(c))
}

// authResultError turns a refusal of the state machine on access control
// into its API error, and reports whether res was one.
func authResultError(res lock.Result) (error, bool) {
	switch res.Code {
	case lock.CodeUnauthenticated:
		return api.Errorf(api.CodeUnauthenticated, "%s", res.Reason), true
	case lock.CodePermissionDenied:
		return api.Errorf(api.CodePermissionDenied, "%s; nothing changed", res.Reason), true
	case lock.CodeNotFound:
		return api.Errorf(api.CodeNotFound, "%s", res.Reason), true
	case lock.CodeQuotaExceeded:
		return api.Errorf(api.CodeQuotaExceeded, "%s", res.Reason), true
	case lock.CodeNoSpace:
		return api.Errorf(api.CodeNoSpace, "%s", res.Reason), true
	}
	return nil, false
}

// getLimits answers the cluster's quotas and the state's estimated size.
func (s *Server) getLimits(c echo.Context) error {
	var out api.ClusterLimits
	if err := s.read(c, func(m *lock.Machine) {
		l := m.Limits()
		out = api.ClusterLimits{SessionsPerPrincipal: l.SessionsPerPrincipal, LocksPerSession: l.LocksPerSession,
			WaitersPerLock: l.WaitersPerLock, ElectionsPerSession: l.ElectionsPerSession,
			MaxStateBytes: l.MaxStateBytes, StateBytes: m.StateBytes()}
	}); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, out)
}

// setLimits sets the cluster's quotas (admin once auth is on); absent
// fields take their defaults.
func (s *Server) setLimits(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	var req api.ClusterLimits
	if err := decodeBody(c, &req, true, `{"sessions_per_principal":1000,"locks_per_session":100}`); err != nil {
		return err
	}
	if req.StateBytes != 0 {
		return api.Errorf(api.CodeInvalidArgument, "state_bytes is an answer, not a setting")
	}
	l := lock.Limits{SessionsPerPrincipal: req.SessionsPerPrincipal, LocksPerSession: req.LocksPerSession,
		WaitersPerLock: req.WaitersPerLock, ElectionsPerSession: req.ElectionsPerSession, MaxStateBytes: req.MaxStateBytes}
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpSetLimits, Limits: l}); err != nil || forwarded(c) {
		return err
	}
	return s.getLimits(c)
}

// apiActions maps wire action names to lock.Actions.
var apiActions = map[string]lock.Actions{
	api.ActionRead:  lock.ActionRead,
	api.ActionLock:  lock.ActionLock,
	api.ActionElect: lock.ActionElect,
	api.ActionAdmin: lock.ActionAdmin,
}

func actionNames(a lock.Actions) []string {
	var out []string
	for _, name := range api.Actions {
		if a&apiActions[name] != 0 {
			out = append(out, name)
		}
	}
	return out
}

func apiUser(u lock.AuthUser) api.User {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return api.User{Name: u.Name, Roles: roles}
}

func apiRole(r lock.AuthRole) api.Role {
	out := api.Role{Name: r.Name, Permissions: []api.Permission{}}
	for _, p := range r.Permissions {
		out.Permissions = append(out.Permissions, api.Permission{Prefix: p.Prefix, Actions: actionNames(p.Actions)})
	}
	return out
}

// authPathName returns the percent-decoded last segment of an auth path.
func authPathName(c echo.Context, what string) (string, error) {
	name, err := url.PathUnescape(c.Param("name"))
	if err != nil || name == "" || len(name) > lock.MaxAuthNameLen {
		return "", api.Errorf(api.CodeInvalidArgument, "%s %q in the path: want 1 to %d bytes of valid percent-encoding", what, c.Param("name"), lock.MaxAuthNameLen)
	}
	return name, nil
}

// proposeAuth proposes an auth administration command and answers status
// with answer() read after it applied.
func (s *Server) proposeAuth(c echo.Context, cmd *lock.Command) (lock.Result, error) {
	ctx, cancel := s.writeCtx(c)
	defer cancel()
	res, _, err := s.propose(c, ctx, cmd)
	if err != nil {
		return res, s.proposeFailed(c, err, 0)
	}
	if e, ok := authResultError(res); ok {
		return res, e
	}
	if res.Code == lock.CodeInvalid {
		msg := res.Reason
		if msg == "" {
			msg = "the state machine refused the command as invalid"
		}
		return res, api.Errorf(api.CodeInvalidArgument, "%s; nothing changed", msg)
	}
	if res.Code != lock.CodeOK {
		return res, api.Errorf(api.CodeInternal, "unexpected result %v", res.Code)
	}
	return res, nil
}

// forwarded reports whether the handler's answer was relayed from the
// leader (the proposal was forwarded): then nothing more is written.
func forwarded(c echo.Context) bool { return c.Response().Committed }

func (s *Server) listUsers(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	out := api.UsersResponse{Users: []api.User{}}
	for _, u := range s.node.Auth().Users() {
		out.Users = append(out.Users, apiUser(u))
	}
	return writeJSON(c, http.StatusOK, out)
}

func (s *Server) putUser(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	var req api.User
	if err := decodeBody(c, &req, true, `{"name":"alice","roles":["jobs"]}`); err != nil {
		return err
	}
	if err := validAuthName("name", req.Name); err != nil {
		return err
	}
	if len(req.Roles) > lock.MaxRolesPerUser {
		return api.Errorf(api.CodeInvalidArgument, "roles: at most %d", lock.MaxRolesPerUser)
	}
	for _, r := range req.Roles {
		if err := validAuthName("roles[]", r); err != nil {
			return err
		}
	}
	roles := slices.Compact(slices.Sorted(slices.Values(req.Roles)))
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthPutUser, Name: req.Name, Roles: roles}); err != nil || forwarded(c) {
		return err
	}
	return writeJSON(c, http.StatusCreated, api.User{Name: req.Name, Roles: append([]string{}, roles...)})
}

func (s *Server) deleteUser(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	name, err := authPathName(c, "user")
	if err != nil {
		return err
	}
	u, _ := s.node.Auth().User(name)
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthDeleteUser, Name: name}); err != nil || forwarded(c) {
		return err
	}
	u.Name = name
	return writeJSON(c, http.StatusOK, apiUser(u))
}

func (s *Server) listRoles(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	out := api.RolesResponse{Roles: []api.Role{}}
	for _, r := range s.node.Auth().Roles() {
		out.Roles = append(out.Roles, apiRole(r))
	}
	return writeJSON(c, http.StatusOK, out)
}

func (s *Server) putRole(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	var req api.Role
	if err := decodeBody(c, &req, true, `{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["read","lock"]}]}`); err != nil {
		return err
	}
	if err := validAuthName("name", req.Name); err != nil {
		return err
	}
	if len(req.Permissions) > lock.MaxPermissionsPerRole {
		return api.Errorf(api.CodeInvalidArgument, "permissions: at most %d", lock.MaxPermissionsPerRole)
	}
	perms := make([]lock.Permission, 0, len(req.Permissions))
	for i, p := range req.Permissions {
		if err := api.ValidateLockPrefix(p.Prefix); err != nil {
			return api.Errorf(api.CodeInvalidArgument, "permissions[%d].prefix: %v", i, err)
		}
		var a lock.Actions
		for _, name := range p.Actions {
			x, ok := apiActions[name]
			if !ok {
				return api.Errorf(api.CodeInvalidArgument, "permissions[%d].actions: %q is not one of %s", i, name, strings.Join(api.Actions, ", "))
			}
			a |= x
		}
		if a == 0 {
			return api.Errorf(api.CodeInvalidArgument, "permissions[%d].actions: at least one of %s", i, strings.Join(api.Actions, ", "))
		}
		perms = append(perms, lock.Permission{Prefix: p.Prefix, Actions: a})
	}
	perms = lock.SortedPermissions(perms)
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthPutRole, Name: req.Name, Permissions: perms}); err != nil || forwarded(c) {
		return err
	}
	return writeJSON(c, http.StatusCreated, apiRole(lock.AuthRole{Name: req.Name, Permissions: perms}))
}

func (s *Server) deleteRole(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	name, err := authPathName(c, "role")
	if err != nil {
		return err
	}
	r, _ := s.node.Auth().Role(name)
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthDeleteRole, Name: name}); err != nil || forwarded(c) {
		return err
	}
	r.Name = name
	return writeJSON(c, http.StatusOK, apiRole(r))
}

func (s *Server) listTokens(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	out := api.TokensResponse{Tokens: []api.Token{}}
	for _, t := range s.node.Auth().Tokens(c.QueryParam("user")) {
		out.Tokens = append(out.Tokens, api.Token{ID: api.SessionID(t.ID), User: t.User})
	}
	return writeJSON(c, http.StatusOK, out)
}

// createToken makes a random 256-bit secret here (randomness stays out of
// the state machine), proposes its SHA-256 hash, and answers the secret
// once.
func (s *Server) createToken(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	var req api.CreateTokenRequest
	if err := decodeBody(c, &req, true, `{"user":"alice"}`); err != nil {
		return err
	}
	if err := validAuthName("user", req.User); err != nil {
		return err
	}
	secret := newTokenSecret()
	sum := sha256.Sum256([]byte(secret))
	res, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthCreateToken, Name: req.User, Hash: string(sum[:])})
	if err != nil || forwarded(c) {
		return err
	}
	return writeJSON(c, http.StatusCreated, api.CreateTokenResponse{ID: api.SessionID(res.Token), User: req.User, Token: secret})
}

func (s *Server) revokeToken(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	id, err := api.ParseSessionID(c.Param("name"))
	if err != nil {
		return api.Errorf(api.CodeInvalidArgument, "token id %q: want a positive decimal integer", c.Param("name"))
	}
	t, _ := s.node.Auth().Token(uint64(id))
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthRevokeToken, Token: uint64(id)}); err != nil || forwarded(c) {
		return err
	}
	return writeJSON(c, http.StatusOK, api.Token{ID: id, User: t.User})
}

func (s *Server) enableAuth(c echo.Context) error {
	if err := s.requireAdmin(c); err != nil {
		return err
	}
	if _, err := s.proposeAuth(c, &lock.Command{Op: lock.OpAuthEnable}); err != nil || forwarded(c) {
		return err
	}
	return s.whoAmI(c)
}

// whoAmI answers whether auth is on and the caller's principal and roles.
func (s *Server) whoAmI(c echo.Context) error {
	v := s.node.Auth()
	p := principalOf(c)
	out := api.AuthStatus{Enabled: v.Enabled(), Principal: p}
	if u, ok := v.User(p); ok {
		out.Roles = u.Roles
	}
	return writeJSON(c, http.StatusOK, out)
}

// newTokenSecret returns a random 256-bit secret, base64url without padding
// (43 characters).
func newTokenSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validAuthName(field, name string) error {
	if name == "" || len(name) > lock.MaxAuthNameLen {
		return api.Errorf(api.CodeInvalidArgument, "%s: want 1 to %d bytes", field, lock.MaxAuthNameLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == 0xfffd {
			return api.Errorf(api.CodeInvalidArgument, "%s %q: no control characters, '/' or invalid UTF-8", field, name)
		}
	}
	return nil
}
