package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/testserver"
)

// seen is one request a fake server received.
type seen struct {
	method, path, query, auth, body string
}

// recorder is a fake API: canned answers by "METHOD /path", every request
// recorded.
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]string // "METHOD /path" → "STATUS BODY"
	reqs   []seen
}

func newRecorder(t *testing.T, routes map[string]string) *recorder {
	r := &recorder{routes: routes}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, seen{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Get("Authorization"), string(b)})
		ans, ok := r.routes[req.Method+" "+req.URL.Path]
		r.mu.Unlock()
		if !ok {
			ans = `404 {"error":{"code":"not_found","message":"no route"}}`
		}
		code, body, _ := strings.Cut(ans, " ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(map[string]int{"200": 200, "201": 201, "403": 403, "404": 404}[code])
		io.WriteString(w, body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) last() seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return seen{}
	}
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every auth command sends its request with the token of
// RAFTLOCK_AUTH_TOKEN_FILE, and prints text or the API's JSON.
func TestAuthCommands(t *testing.T) {
	f := newRecorder(t, map[string]string{
		"GET /v1/auth/users":          `200 {"users":[{"name":"alice","roles":["jobs","ops"]},{"name":"root","roles":["admin"]}]}`,
		"POST /v1/auth/users":         `201 {"name":"alice","roles":["jobs","ops"]}`,
		"DELETE /v1/auth/users/alice": `200 {"name":"alice","roles":[]}`,
		"GET /v1/auth/roles":          `200 {"roles":[{"name":"admin","permissions":[{"prefix":"","actions":["admin"]}]},{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["read","lock"]}]},{"name":"empty","permissions":[]}]}`,
		"POST /v1/auth/roles":         `201 {"name":"jobs","permissions":[{"prefix":"","actions":["read"]},{"prefix":"jobs/","actions":["read","lock"]}]}`,
		"DELETE /v1/auth/roles/jobs":  `200 {"name":"jobs","permissions":[]}`,
		"GET /v1/auth/tokens":         `200 {"tokens":[{"id":"17","user":"alice"},{"id":"21","user":"root"}]}`,
		"POST /v1/auth/tokens":        `201 {"id":"22","user":"alice","token":"the-secret"}`,
		"DELETE /v1/auth/tokens/17":   `200 {"id":"17","user":"alice"}`,
		"GET /v1/auth/whoami":         `200 {"enabled":true,"principal":"root","roles":["admin"]}`,
		"POST /v1/auth/enable":        `200 {"enabled":true,"principal":"root","roles":["admin"]}`,
	})
	dir := t.TempDir()
	env := map[string]string{
		"RAFTLOCK_ENDPOINTS":       f.URL,
		"RAFTLOCK_AUTH_TOKEN_FILE": writeFile(t, dir, "root.token", "  root-token\n"),
	}
	for _, c := range []struct {
		args              []string
		method, path, qry string
		body              string // JSON, compared as values; "" for none
		stdout            []string
		stderr            string
	}{
		{[]string{"auth", "user", "list"}, "GET", "/v1/auth/users", "", "", []string{"NAME   ROLES", "alice  jobs,ops", "root   admin"}, ""},
		{[]string{"auth", "user", "add", "alice", "--role", "jobs", "--role", "ops"}, "POST", "/v1/auth/users", "", `{"name":"alice","roles":["jobs","ops"]}`, []string{"user alice: roles jobs,ops"}, ""},
		{[]string{"auth", "user", "add", "--role", "jobs,ops", "alice"}, "POST", "/v1/auth/users", "", `{"name":"alice","roles":["jobs","ops"]}`, []string{"user alice"}, ""},
		{[]string{"auth", "user", "remove", "alice"}, "DELETE", "/v1/auth/users/alice", "", "", []string{"removed user alice"}, ""},
		{[]string{"auth", "role", "list"}, "GET", "/v1/auth/roles", "", "", []string{"NAME   PREFIX  ACTIONS", "admin  (all)   admin", "jobs   jobs/   read,lock", "empty  -       -"}, ""},
		{[]string{"auth", "role", "add", "jobs", "--perm", "jobs/=read,lock", "--perm", "=read"}, "POST", "/v1/auth/roles", "",
			`{"name":"jobs","permissions":[{"prefix":"jobs/","actions":["read","lock"]},{"prefix":"","actions":["read"]}]}`, []string{"role jobs: =read jobs/=read,lock"}, ""},
		{[]string{"auth", "role", "remove", "jobs"}, "DELETE", "/v1/auth/roles/jobs", "", "", []string{"removed role jobs"}, ""},
		{[]string{"auth", "token", "list"}, "GET", "/v1/auth/tokens", "", "", []string{"ID  USER", "17  alice", "21  root"}, ""},
		{[]string{"auth", "token", "list", "--user", "alice"}, "GET", "/v1/auth/tokens", "user=alice", "", []string{"17  alice"}, ""},
		{[]string{"auth", "token", "create", "alice"}, "POST", "/v1/auth/tokens", "", `{"user":"alice"}`, []string{"the-secret"}, "created token 22 for user alice"},
		{[]string{"auth", "token", "revoke", "17"}, "DELETE", "/v1/auth/tokens/17", "", "", []string{"revoked token 17"}, ""},
		{[]string{"auth", "whoami"}, "GET", "/v1/auth/whoami", "", "", []string{"AUTH       on", "PRINCIPAL  root", "ROLES      admin"}, ""},
		{[]string{"auth", "enable"}, "POST", "/v1/auth/enable", "", "{}", []string{"AUTH       on"}, ""},
	} {
		got := runCLI(t, env, c.args...)
		if got.code != exitOK {
			t.Errorf("%q: exit %d\n%s%s", c.args, got.code, got.stdout, got.stderr)
			continue
		}
		for _, w := range c.stdout {
			if !strings.Contains(got.stdout, w) {
				t.Errorf("%q: stdout lacks %q:\n%s", c.args, w, got.stdout)
			}
		}
		if !strings.Contains(got.stderr, c.stderr) || (c.stderr == "" && got.stderr != "") {
			t.Errorf("%q: stderr %q, want %q", c.args, got.stderr, c.stderr)
		}
		r := f.last()
		if r.method != c.method || r.path != c.path || r.query != c.qry || r.auth != "Bearer root-token" {
			t.Errorf("%q: sent %s %s?%s with %q, want %s %s?%s with the token", c.args, r.method, r.path, r.query, r.auth, c.method, c.path, c.qry)
		}
		if c.body == "" {
			if r.body != "" {
				t.Errorf("%q: body %q, want none", c.args, r.body)
			}
			continue
		}
		var gotBody, wantBody any
		json.Unmarshal([]byte(r.body), &gotBody)
		json.Unmarshal([]byte(c.body), &wantBody)
		if !reflect.DeepEqual(gotBody, wantBody) {
			t.Errorf("%q: body %s, want %s", c.args, r.body, c.body)
		}
	}
	// The token secret alone on stdout, for "> file".
	if got := runCLI(t, env, "auth", "token", "create", "alice"); got.stdout != "the-secret\n" {
		t.Errorf("token create: stdout %q, want the secret and a newline", got.stdout)
	}
	// --output json: the API's types.
	for _, c := range []struct {
		args []string
		into any
		want any
	}{
		{[]string{"auth", "user", "list", "-o", "json"}, &api.UsersResponse{}, &api.UsersResponse{Users: []api.User{{Name: "alice", Roles: []string{"jobs", "ops"}}, {Name: "root", Roles: []string{"admin"}}}}},
		{[]string{"auth", "token", "create", "alice", "-o", "json"}, &api.CreateTokenResponse{}, &api.CreateTokenResponse{ID: 22, User: "alice", Token: "the-secret"}},
		{[]string{"auth", "token", "list", "--output", "json"}, &api.TokensResponse{}, &api.TokensResponse{Tokens: []api.Token{{ID: 17, User: "alice"}, {ID: 21, User: "root"}}}},
		{[]string{"auth", "whoami", "-o", "json"}, &api.AuthStatus{}, &api.AuthStatus{Enabled: true, Principal: "root", Roles: []string{"admin"}}},
		{[]string{"auth", "role", "add", "jobs", "--perm", "jobs/=read", "-o", "json"}, &api.Role{}, &api.Role{Name: "jobs", Permissions: []api.Permission{{Prefix: "", Actions: []string{"read"}}, {Prefix: "jobs/", Actions: []string{"read", "lock"}}}}},
	} {
		got := runCLI(t, env, c.args...)
		if err := json.Unmarshal([]byte(got.stdout), c.into); err != nil || got.code != exitOK || !reflect.DeepEqual(c.into, c.want) {
			t.Errorf("%q: exit %d, %v, %+v, want %+v\n%s", c.args, got.code, err, c.into, c.want, got.stderr)
		}
	}
	// A refusal is an error, with the server's message.
	f.mu.Lock()
	f.routes["GET /v1/auth/users"] = `403 {"error":{"code":"permission_denied","message":"\"bob\" may not administer access control"}}`
	f.mu.Unlock()
	if got := runCLI(t, env, "auth", "user", "list"); got.code != exitError || !strings.Contains(got.stderr, "permission_denied") || got.stdout != "" {
		t.Errorf("user list refused: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
}

// Bad command lines are usage errors (exit 2) and send nothing; files
// that cannot be read are errors (exit 1).
func TestAuthUsageErrors(t *testing.T) {
	f := newRecorder(t, map[string]string{})
	dir := t.TempDir()
	token := writeFile(t, dir, "t", "tok\n")
	env := map[string]string{"RAFTLOCK_ENDPOINTS": f.URL, "RAFTLOCK_AUTH_TOKEN_FILE": token}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"auth"}, exitUsage, "no command: want user, role"},
		{[]string{"auth", "frob"}, exitUsage, `unknown command "frob"`},
		{[]string{"auth", "user"}, exitUsage, "want list, add or remove"},
		{[]string{"auth", "user", "add"}, exitUsage, "want exactly one user NAME"},
		{[]string{"auth", "user", "remove", "a", "b"}, exitUsage, "want exactly one user NAME"},
		{[]string{"auth", "user", "list", "x"}, exitUsage, "unexpected arguments"},
		{[]string{"auth", "role", "add", "r", "--perm", "jobs/"}, exitUsage, "want PREFIX=ACTIONS"},
		{[]string{"auth", "role", "add", "r", "--perm", "jobs/=fly"}, exitUsage, `action "fly"`},
		{[]string{"auth", "role", "add", "r", "--perm", "a b=read"}, exitUsage, "prefix"},
		{[]string{"auth", "token", "revoke", "abc"}, exitUsage, "not a decimal integer"},
		{[]string{"auth", "token", "create"}, exitUsage, "want exactly one USER"},
		{[]string{"auth", "whoami", "-o", "yaml"}, exitUsage, `--output "yaml"`},
		{[]string{"--cert", token, "auth", "whoami"}, exitUsage, "--cert needs --key"},
		{[]string{"--key", token, "auth", "whoami"}, exitUsage, "--key needs --cert"},
		{[]string{"--cacert", filepath.Join(dir, "none.pem"), "auth", "whoami"}, exitError, "--cacert: open"},
		{[]string{"--cacert", token, "auth", "whoami"}, exitError, "holds no PEM certificate"},
		{[]string{"--auth-token-file", filepath.Join(dir, "none"), "auth", "whoami"}, exitError, "--auth-token-file: open"},
		{[]string{"--auth-token-file", writeFile(t, dir, "empty", "\n"), "auth", "whoami"}, exitError, "is empty"},
		{[]string{"--auth-token-file", writeFile(t, dir, "spaced", "a b\n"), "auth", "whoami"}, exitError, "does not hold a token"},
	} {
		got := runCLI(t, env, c.args...)
		if got.code != c.code || !strings.Contains(got.stderr, c.stderr) || got.stdout != "" {
			t.Errorf("%q: exit %d (want %d), stdout %q, stderr %q (want %q)", c.args, got.code, c.code, got.stdout, got.stderr, c.stderr)
		}
	}
	// The token file's content never shows, even when it is not a token.
	got := runCLI(t, env, "--auth-token-file", writeFile(t, dir, "bad", "se cret\n"), "auth", "whoami")
	if strings.Contains(got.stderr, "se cret") {
		t.Errorf("the token file's content is in the error: %q", got.stderr)
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests sent by command lines that are wrong", n)
	}
}

// Every auth command has its help, with an example.
func TestAuthHelp(t *testing.T) {
	for _, args := range [][]string{
		{"auth"}, {"auth", "user"}, {"auth", "user", "list"}, {"auth", "user", "add"}, {"auth", "user", "remove"},
		{"auth", "role"}, {"auth", "role", "list"}, {"auth", "role", "add"}, {"auth", "role", "remove"},
		{"auth", "token"}, {"auth", "token", "list"}, {"auth", "token", "create"}, {"auth", "token", "revoke"},
		{"auth", "whoami"}, {"auth", "enable"},
	} {
		got := runCLI(t, nil, append(args, "--help")...)
		want := "Usage: raftlock " + strings.Join(args, " ")
		if got.code != exitOK || !strings.HasPrefix(got.stdout, want) || !strings.Contains(got.stdout, "Example:") ||
			!strings.Contains(got.stdout, "--auth-token-file") || got.stderr != "" {
			t.Errorf("%q --help: exit %d, stderr %q, stdout:\n%s", args, got.code, got.stderr, got.stdout)
		}
	}
}

// testPKI is a CA made in the test, and files of certificates it signed.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raftlock test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key, serial: 1}
	p.caFile = writeFile(t, p.dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return p
}

// leaf makes a certificate for cn (a server one for 127.0.0.1 when server)
// and returns it with the paths of its PEM files.
func (p *testPKI) leaf(t *testing.T, cn string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c, writeFile(t, p.dir, cn+".pem", string(certPEM)), writeFile(t, p.dir, cn+"-key.pem", string(keyPEM))
}

// --cacert, --cert and --key (or their variables) make the TLS of the
// requests: the server's CA is trusted, and the client certificate's
// common name is the principal the server sees.
func TestTLSFlags(t *testing.T) {
	pki := newPKI(t)
	serverCert, _, _ := pki.leaf(t, "server", true)
	_, aliceCert, aliceKey := pki.leaf(t, "alice", false)
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.AuthStatus{Enabled: true, Principal: r.TLS.PeerCertificates[0].Subject.CommonName})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)

	for _, c := range []struct {
		what string
		env  map[string]string
		args []string
	}{
		{"flags", nil, []string{"--endpoints", srv.URL, "--cacert", pki.caFile, "--cert", aliceCert, "--key", aliceKey}},
		{"variables", map[string]string{"RAFTLOCK_ENDPOINTS": srv.URL, "RAFTLOCK_CACERT": pki.caFile, "RAFTLOCK_CERT": aliceCert, "RAFTLOCK_KEY": aliceKey}, nil},
		{"flags after the command", nil, []string{"auth", "whoami", "--endpoints", srv.URL, "--cacert", pki.caFile, "--cert", aliceCert, "--key", aliceKey}},
	} {
		args := c.args
		if len(args) == 0 || args[0] != "auth" {
			args = append(args, "auth", "whoami")
		}
		got := runCLI(t, c.env, append(args, "-o", "json")...)
		var st api.AuthStatus
		if err := json.Unmarshal([]byte(got.stdout), &st); err != nil || got.code != exitOK || st.Principal != "alice" {
			t.Errorf("%s: exit %d, %v, %+v\n%s", c.what, got.code, err, st, got.stderr)
		}
	}
	// Without a client certificate, or without the CA: no handshake.
	for _, args := range [][]string{
		{"--endpoints", srv.URL, "--cacert", pki.caFile, "--timeout", "2s", "auth", "whoami"},
		{"--endpoints", srv.URL, "--cert", aliceCert, "--key", aliceKey, "--timeout", "2s", "auth", "whoami"},
	} {
		if got := runCLI(t, nil, args...); got.code != exitError || !strings.Contains(got.stderr, "tls") && !strings.Contains(got.stderr, "certificate") {
			t.Errorf("%q: exit %d, stderr %q; want exit 1 and a TLS error", args, got.code, got.stderr)
		}
	}
	// TLS flags with an http:// endpoint are a usage error.
	if got := runCLI(t, nil, "--endpoints", "http://127.0.0.1:1", "--cacert", pki.caFile, "status"); got.code != exitUsage || !strings.Contains(got.stderr, "https://") {
		t.Errorf("--cacert with http://: exit %d, stderr %q", got.code, got.stderr)
	}
}

// The client certificate is read again after its files change: a sidecar
// that runs for months follows a rotation.
func TestClientCertificateReloaded(t *testing.T) {
	pki := newPKI(t)
	_, certA, keyA := pki.leaf(t, "alice", false)
	_, certB, keyB := pki.leaf(t, "bob", false)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(certA, cert)
	cp(keyA, key)
	kp := &keyPair{cert: cert, key: key}
	cn := func() string {
		c, err := kp.get()
		if err != nil {
			t.Fatal(err)
		}
		x, _ := x509.ParseCertificate(c.Certificate[0])
		return x.Subject.CommonName
	}
	if got := cn(); got != "alice" {
		t.Fatalf("first read: %q", got)
	}
	cp(certB, cert)
	cp(keyB, key)
	// Make sure the change is visible in the stamp even on coarse clocks.
	later := time.Now().Add(time.Minute)
	os.Chtimes(cert, later, later)
	os.Chtimes(key, later, later)
	if got := cn(); got != "bob" {
		t.Fatalf("after the rotation: %q, want bob", got)
	}
	// A half-done rotation (a key that does not match) keeps the last good pair.
	cp(keyA, key)
	later = later.Add(time.Minute)
	os.Chtimes(key, later, later)
	if got := cn(); got != "bob" {
		t.Fatalf("after a mismatched key: %q, want bob kept", got)
	}
}

// startAuthServer starts a real single-node server whose auth is on, with
// root's token rootToken, and returns its URL.
func startAuthServer(t *testing.T, rootToken string) string {
	t.Helper()
	return testserver.Start(t, testserver.Options{AuthBootstrapToken: rootToken}).URL
}

// The walk-through of the README against a real server with auth on: root
// makes a role, a user and its token; the user runs a command under a lock
// of its prefix, is refused another, and loses its access with its token.
func TestAuthWalkThrough(t *testing.T) {
	url := startAuthServer(t, "root-secret")
	dir := t.TempDir()
	root := map[string]string{"RAFTLOCK_ENDPOINTS": url, "RAFTLOCK_AUTH_TOKEN_FILE": writeFile(t, dir, "root.token", "root-secret\n")}
	mustRun := func(env map[string]string, args ...string) result {
		t.Helper()
		got := runCLI(t, env, args...)
		if got.code != exitOK {
			t.Fatalf("%q: exit %d\n%s%s", args, got.code, got.stdout, got.stderr)
		}
		return got
	}
	mustRun(root, "auth", "role", "add", "jobs-worker", "--perm", "jobs/=read,lock")
	mustRun(root, "auth", "user", "add", "alice", "--role", "jobs-worker")
	secret := mustRun(root, "auth", "token", "create", "alice").stdout
	alice := map[string]string{"RAFTLOCK_ENDPOINTS": url, "RAFTLOCK_AUTH_TOKEN_FILE": writeFile(t, dir, "alice.token", secret)}

	if got := mustRun(alice, "auth", "whoami"); !strings.Contains(got.stdout, "PRINCIPAL  alice") {
		t.Errorf("whoami as alice:\n%s", got.stdout)
	}
	if got := mustRun(alice, "lock", "--ttl", "1s", "jobs/nightly", "--", "sh", "-c", `echo "ran $RAFTLOCK_NAME"`); got.stdout != "ran jobs/nightly\n" {
		t.Errorf("lock as alice: %q", got.stdout)
	}
	got := runCLI(t, alice, "lock", "--ttl", "1s", "other/x", "--", "echo", "ran")
	if got.code != exitError || !strings.Contains(got.stderr, "permission_denied") || got.stdout != "" {
		t.Errorf("lock outside alice's prefix: exit %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	if got := runCLI(t, alice, "auth", "user", "list"); got.code != exitError || !strings.Contains(got.stderr, "permission_denied") {
		t.Errorf("user list as alice: exit %d, stderr %q", got.code, got.stderr)
	}
	if got := runCLI(t, map[string]string{"RAFTLOCK_ENDPOINTS": url}, "status"); got.code != exitError || !strings.Contains(got.stderr, "unauthenticated") {
		t.Errorf("status without a token: exit %d, stderr %q", got.code, got.stderr)
	}
	var toks api.TokensResponse
	if err := json.Unmarshal([]byte(mustRun(root, "auth", "token", "list", "--user", "alice", "-o", "json").stdout), &toks); err != nil || len(toks.Tokens) != 1 {
		t.Fatalf("token list: %v %+v", err, toks)
	}
	mustRun(root, "auth", "token", "revoke", toks.Tokens[0].ID.String())
	if got := runCLI(t, alice, "auth", "whoami"); got.code != exitError || !strings.Contains(got.stderr, "unauthenticated") {
		t.Errorf("whoami with a revoked token: exit %d, stderr %q", got.code, got.stderr)
	}
}
