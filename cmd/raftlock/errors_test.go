package main

import (
	"strings"
	"testing"
)

// With the server down, every command says once that it cannot reach it,
// why, and what to do: no layers of the SDK, no Go error chain.
func TestUnreachableSaysWhatToDo(t *testing.T) {
	const want = "raftlock: cannot reach raftlockd at http://127.0.0.1:1 (connection refused): is it running? set --endpoints or RAFTLOCK_ENDPOINTS\n"
	for _, args := range [][]string{{"status"}, {"locks"}, {"lock-info", "x"}, {"lock", "x", "--", "true"}, {"elect", "x", "v"}, {"elections"}, {"election-info", "x"}} {
		// Port 1 on the loopback: nobody listens there.
		r := runCLI(t, map[string]string{"RAFTLOCK_ENDPOINTS": "http://127.0.0.1:1"}, append([]string{"--timeout", "2s"}, args...)...)
		if r.code != exitError || r.stderr != want || r.stdout != "" {
			t.Errorf("%q against nothing: exit %d, stdout %q\nstderr %q\nwant   %q", args, r.code, r.stdout, r.stderr, want)
		}
	}
}

// An error the server answers is said in its words and with its code,
// after what the command was doing: once, without the SDK's layers.
func TestServerErrorsWithoutLayers(t *testing.T) {
	url := startAuthServer(t, "root-secret")
	dir := t.TempDir()
	root := map[string]string{"RAFTLOCK_ENDPOINTS": url, "RAFTLOCK_AUTH_TOKEN_FILE": writeFile(t, dir, "root.token", "root-secret\n")}
	wrong := map[string]string{"RAFTLOCK_ENDPOINTS": url, "RAFTLOCK_AUTH_TOKEN_FILE": writeFile(t, dir, "wrong.token", "not-the-secret\n")}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"RAFTLOCK_ENDPOINTS": url}, []string{"status"},
			"raftlock: status: auth is on, and this command sent neither a token nor a client certificate (unauthenticated): give one with --auth-token-file (or $RAFTLOCK_AUTH_TOKEN_FILE), or --cert and --key\n"},
		{wrong, []string{"auth", "user", "list"},
			"raftlock: list users: the bearer token is unknown or revoked (unauthenticated)\n"},
		{root, []string{"auth", "user", "add", "bob", "--role", "nosuch"},
			"raftlock: add user bob: role \"nosuch\" does not exist (not_found)\n"},
	} {
		r := runCLI(t, c.env, c.args...)
		if r.code != exitError || r.stderr != c.want || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q\nstderr %q\nwant   %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	r := runCLI(t, root, "lock", "--ttl", "1ms", "x", "--", "true")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "raftlock: open session: ttl 1ms is out of bounds") ||
		!strings.HasSuffix(r.stderr, " (invalid_argument)\n") || strings.Count(r.stderr, "raftlock") != 1 || strings.Contains(r.stderr, "client:") {
		t.Errorf("lock --ttl 1ms: exit %d, stderr %q", r.code, r.stderr)
	}
}
