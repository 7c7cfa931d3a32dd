package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

const authAbout = `Administers access control: users, roles (permissions on name prefixes)
and bearer tokens, and turns auth on. Every command but whoami needs an
admin principal: a token (--auth-token-file) or a client certificate
(--cert, --key) of a user with the admin action on every name, such as
user root made by raftlockd --auth-bootstrap-token-file.

A role grants actions on the locks and elections whose name starts with a
prefix: read (reads, watch, observe), lock (sessions and locks), elect
(elections), admin (everything, and with the empty prefix the
administration of users, roles and tokens, force-release, and closing any
session). A user has roles; a client certificate's common name is a user.`

const authExample = `  raftlock --auth-token-file root.token auth role add jobs-worker --perm jobs/=read,lock
  raftlock --auth-token-file root.token auth user add alice --role jobs-worker
  raftlock --auth-token-file root.token auth token create alice > alice.token
  raftlock --auth-token-file alice.token auth whoami`

// newAuthCommand returns "raftlock auth" and its subcommands, bound to e.
func newAuthCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "auth COMMAND [flags] [args]",
		Short:   "administer users, roles and tokens; turn auth on",
		Long:    authAbout,
		Example: authExample,
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want user, role, token, whoami or enable"))
		}),
	}
	user := &cobra.Command{
		Use:     "user COMMAND [flags] [args]",
		Short:   "list, add (or replace) and remove users",
		Example: "  raftlock auth user list\n  raftlock auth user add alice --role jobs-worker --role reader\n  raftlock auth user remove alice",
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want list, add or remove"))
		}),
	}
	user.AddCommand(newUserListCommand(e), newUserAddCommand(e), newUserRemoveCommand(e))
	role := &cobra.Command{
		Use:     "role COMMAND [flags] [args]",
		Short:   "list, add (or replace) and remove roles",
		Example: "  raftlock auth role list\n  raftlock auth role add jobs-worker --perm jobs/=read,lock --perm =read\n  raftlock auth role remove jobs-worker",
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want list, add or remove"))
		}),
	}
	role.AddCommand(newRoleListCommand(e), newRoleAddCommand(e), newRoleRemoveCommand(e))
	token := &cobra.Command{
		Use:     "token COMMAND [flags] [args]",
		Short:   "list, create and revoke bearer tokens",
		Example: "  raftlock auth token list --user alice\n  raftlock auth token create alice > alice.token\n  raftlock auth token revoke 1234",
		Args:    cobra.NoArgs,
		RunE: e.action(func(c *cobra.Command, _ []string) int {
			return e.usageError(c, errors.New("no command: want list, create or revoke"))
		}),
	}
	token.AddCommand(newTokenListCommand(e), newTokenCreateCommand(e), newTokenRevokeCommand(e))
	c.AddCommand(user, role, token, newWhoAmICommand(e), newAuthEnableCommand(e))
	return c
}

// authRun is what every auth command does: check the arguments (check
// returns a usage error or nil), make a client, and run body with it.
func (e *env) authRun(check func(args []string) error, body func(ctx context.Context, cl *client.Client, args []string) int) func(*cobra.Command, []string) error {
	return e.action(func(c *cobra.Command, args []string) int {
		if err := check(args); err != nil {
			return e.usageError(c, err)
		}
		cl, code := e.newClient(c)
		if cl == nil {
			return code
		}
		defer cl.Close()
		return body(c.Context(), cl, args)
	})
}

// argsN returns a check for exactly n arguments named what, plus the
// --output flag's value.
func argsN(n int, what string, output *string) func([]string) error {
	return func(args []string) error {
		if len(args) != n {
			if n == 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			return fmt.Errorf("want exactly one %s, got %d arguments", what, len(args))
		}
		if output != nil {
			return checkOutput(*output)
		}
		return nil
	}
}

func newUserListCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "list [flags]",
		Short:   "list the users and their roles",
		Example: "  raftlock auth user list\n  raftlock auth user list --output json",
	}
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(0, "", output), func(ctx context.Context, cl *client.Client, _ []string) int {
		users, err := cl.Users(ctx)
		if err != nil {
			return e.fail("list users: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(api.UsersResponse{Users: users})
		}
		if len(users) == 0 {
			fmt.Fprintln(e.stdout, "no users")
			return exitOK
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "NAME\tROLES")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\n", u.Name, orDash(strings.Join(u.Roles, ",")))
		}
		tw.Flush()
		return exitOK
	})
	return c
}

func newUserAddCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "add [flags] NAME",
		Short: "add user NAME, or replace its roles",
		Long: `Adds user NAME with the roles given by --role (repeated, or comma-separated),
or replaces the roles of the user of that name. Every role must exist. A
client certificate whose common name is NAME is this user.`,
		Example: "  raftlock auth user add alice --role jobs-worker\n  raftlock auth user add ci --role reader,jobs-worker",
	}
	roles := c.Flags().StringSlice("role", nil, "a role of the user (repeat the flag, or separate roles with commas)")
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(1, "user NAME", output), func(ctx context.Context, cl *client.Client, args []string) int {
		u, err := cl.PutUser(ctx, api.User{Name: args[0], Roles: *roles})
		if err != nil {
			return e.fail("add user %s: %v", args[0], err)
		}
		if *output == "json" {
			return e.writeJSON(u)
		}
		fmt.Fprintf(e.stdout, "user %s: roles %s\n", u.Name, orDash(strings.Join(u.Roles, ",")))
		return exitOK
	})
	return c
}

func newUserRemoveCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "remove [flags] NAME",
		Short:   "remove user NAME and revoke its tokens",
		Example: "  raftlock auth user remove alice",
	}
	c.RunE = e.authRun(argsN(1, "user NAME", nil), func(ctx context.Context, cl *client.Client, args []string) int {
		if err := cl.DeleteUser(ctx, args[0]); err != nil {
			return e.fail("remove user %s: %v", args[0], err)
		}
		fmt.Fprintf(e.stdout, "removed user %s\n", args[0])
		return exitOK
	})
	return c
}

func newRoleListCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "list [flags]",
		Short:   "list the roles and their permissions",
		Example: "  raftlock auth role list\n  raftlock auth role list --output json",
	}
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(0, "", output), func(ctx context.Context, cl *client.Client, _ []string) int {
		roles, err := cl.Roles(ctx)
		if err != nil {
			return e.fail("list roles: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(api.RolesResponse{Roles: roles})
		}
		if len(roles) == 0 {
			fmt.Fprintln(e.stdout, "no roles")
			return exitOK
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "NAME\tPREFIX\tACTIONS")
		for _, r := range roles {
			if len(r.Permissions) == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\n", r.Name)
			}
			for _, p := range r.Permissions {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, prefixCell(p.Prefix), strings.Join(p.Actions, ","))
			}
		}
		tw.Flush()
		return exitOK
	})
	return c
}

// prefixCell shows a permission's prefix; the empty one is every name.
func prefixCell(p string) string {
	if p == "" {
		return "(all)"
	}
	return p
}

func newRoleAddCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "add [flags] NAME",
		Short: "add role NAME, or replace its permissions",
		Long: `Adds role NAME with the permissions given by --perm PREFIX=ACTIONS
(repeated), or replaces the permissions of the role of that name. ACTIONS
are comma-separated, among read, lock, elect and admin; they apply to
every lock and election whose name starts with PREFIX. An empty PREFIX
(--perm =read) is every name.`,
		Example: "  raftlock auth role add jobs-worker --perm jobs/=read,lock --perm jobs/leader=elect\n  raftlock auth role add reader --perm =read",
	}
	perms := c.Flags().StringArray("perm", nil, "a permission PREFIX=ACTIONS, e.g. jobs/=read,lock (repeat the flag for more)")
	output := outputFlag(c.Flags())
	var parsed []api.Permission
	check := func(args []string) error {
		if err := argsN(1, "role NAME", output)(args); err != nil {
			return err
		}
		var err error
		parsed, err = parsePerms(*perms)
		return err
	}
	c.RunE = e.authRun(check, func(ctx context.Context, cl *client.Client, args []string) int {
		r, err := cl.PutRole(ctx, api.Role{Name: args[0], Permissions: parsed})
		if err != nil {
			return e.fail("add role %s: %v", args[0], err)
		}
		if *output == "json" {
			return e.writeJSON(r)
		}
		var ps []string
		for _, p := range r.Permissions {
			ps = append(ps, p.Prefix+"="+strings.Join(p.Actions, ","))
		}
		fmt.Fprintf(e.stdout, "role %s: %s\n", r.Name, orDash(strings.Join(ps, " ")))
		return exitOK
	})
	return c
}

// parsePerms parses --perm values PREFIX=ACTION[,ACTION...].
func parsePerms(vals []string) ([]api.Permission, error) {
	out := []api.Permission{}
	for _, v := range vals {
		i := strings.LastIndex(v, "=")
		if i < 0 {
			return nil, fmt.Errorf("--perm %q: want PREFIX=ACTIONS, e.g. jobs/=read,lock", v)
		}
		prefix, acts := v[:i], v[i+1:]
		if err := api.ValidateLockPrefix(prefix); err != nil {
			return nil, fmt.Errorf("--perm %q: %v", v, err)
		}
		var actions []string
		for _, a := range strings.Split(acts, ",") {
			a = strings.TrimSpace(a)
			if !slices.Contains(api.Actions, a) {
				return nil, fmt.Errorf("--perm %q: action %q: want some of %s", v, a, strings.Join(api.Actions, ", "))
			}
			if !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
		out = append(out, api.Permission{Prefix: prefix, Actions: actions})
	}
	return out, nil
}

func newRoleRemoveCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "remove [flags] NAME",
		Short:   "remove role NAME (and take it from its users)",
		Example: "  raftlock auth role remove jobs-worker",
	}
	c.RunE = e.authRun(argsN(1, "role NAME", nil), func(ctx context.Context, cl *client.Client, args []string) int {
		if err := cl.DeleteRole(ctx, args[0]); err != nil {
			return e.fail("remove role %s: %v", args[0], err)
		}
		fmt.Fprintf(e.stdout, "removed role %s\n", args[0])
		return exitOK
	})
	return c
}

func newTokenListCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "list [flags]",
		Short:   "list the tokens (IDs and users; secrets are never kept)",
		Example: "  raftlock auth token list\n  raftlock auth token list --user alice --output json",
	}
	user := c.Flags().String("user", "", "only the tokens of this user")
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(0, "", output), func(ctx context.Context, cl *client.Client, _ []string) int {
		toks, err := cl.Tokens(ctx, *user)
		if err != nil {
			return e.fail("list tokens: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(api.TokensResponse{Tokens: toks})
		}
		if len(toks) == 0 {
			fmt.Fprintln(e.stdout, "no tokens")
			return exitOK
		}
		tw := newTable(e.stdout)
		fmt.Fprintln(tw, "ID\tUSER")
		for _, t := range toks {
			fmt.Fprintf(tw, "%s\t%s\n", t.ID, t.User)
		}
		tw.Flush()
		return exitOK
	})
	return c
}

func newTokenCreateCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "create [flags] USER",
		Short: "create a token for USER and print its secret (shown only this once)",
		Long: `Creates a bearer token for USER. Its secret alone goes to stdout (its ID to
stderr), so that it can be written to a file; the cluster keeps only its
hash: it is shown this once. With --output json, stdout has the ID, the
user and the secret.`,
		Example: "  (umask 077; raftlock auth token create alice > alice.token)\n  raftlock --auth-token-file alice.token auth whoami",
	}
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(1, "USER", output), func(ctx context.Context, cl *client.Client, args []string) int {
		tok, err := cl.CreateToken(ctx, args[0])
		if err != nil {
			return e.fail("create token for %s: %v", args[0], err)
		}
		if *output == "json" {
			return e.writeJSON(tok)
		}
		fmt.Fprintln(e.stdout, tok.Token)
		fmt.Fprintf(e.stderr, "raftlock: created token %s for user %s; its secret (on stdout) is not shown again\n", tok.ID, tok.User)
		return exitOK
	})
	return c
}

func newTokenRevokeCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "revoke [flags] ID",
		Short:   "revoke token ID: no node accepts it once revoked",
		Example: "  raftlock auth token revoke 1234",
	}
	c.RunE = e.authRun(func(args []string) error {
		if err := argsN(1, "token ID", nil)(args); err != nil {
			return err
		}
		_, err := api.ParseSessionID(args[0])
		return err
	}, func(ctx context.Context, cl *client.Client, args []string) int {
		id, _ := api.ParseSessionID(args[0])
		if err := cl.RevokeToken(ctx, id); err != nil {
			return e.fail("revoke token %s: %v", id, err)
		}
		fmt.Fprintf(e.stdout, "revoked token %s\n", id)
		return exitOK
	})
	return c
}

// writeAuthStatus writes st as a key/value block.
func (e *env) writeAuthStatus(st *api.AuthStatus) {
	tw := newTable(e.stdout)
	auth := "off"
	if st.Enabled {
		auth = "on"
	}
	fmt.Fprintf(tw, "AUTH\t%s\n", auth)
	principal := st.Principal
	if principal == "" {
		principal = "(anonymous)"
	}
	fmt.Fprintf(tw, "PRINCIPAL\t%s\n", principal)
	fmt.Fprintf(tw, "ROLES\t%s\n", orDash(strings.Join(st.Roles, ",")))
	tw.Flush()
}

func newWhoAmICommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "whoami [flags]",
		Short:   "show whether auth is on, and the principal and roles the cluster sees",
		Example: "  raftlock --auth-token-file alice.token auth whoami\n  raftlock --cert alice.pem --key alice-key.pem --cacert ca.pem auth whoami -o json",
	}
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(0, "", output), func(ctx context.Context, cl *client.Client, _ []string) int {
		st, err := cl.WhoAmI(ctx)
		if err != nil {
			return e.fail("whoami: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(st)
		}
		e.writeAuthStatus(st)
		return exitOK
	})
	return c
}

func newAuthEnableCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "enable [flags]",
		Short: "turn auth on in a running cluster",
		Long: `Turns auth on: from then on every request needs a principal (a token or a
client certificate) with the permission for it. A user with admin on every
name must exist first, with a token or certificate you hold, or nobody can
administer the cluster afterwards.`,
		Example: "  raftlock auth role add admin --perm =admin\n  raftlock auth user add root --role admin\n  (umask 077; raftlock auth token create root > root.token)\n  raftlock --auth-token-file root.token auth enable",
	}
	output := outputFlag(c.Flags())
	c.RunE = e.authRun(argsN(0, "", output), func(ctx context.Context, cl *client.Client, _ []string) int {
		st, err := cl.EnableAuth(ctx)
		if err != nil {
			return e.fail("enable auth: %v", err)
		}
		if *output == "json" {
			return e.writeJSON(st)
		}
		e.writeAuthStatus(st)
		return exitOK
	})
	return c
}
