package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/testcerts"
)

func flags(t *testing.T, args ...string) *options {
	t.Helper()
	o, err := parseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	return o
}

// pki writes a CA for each port and a certificate for each, and returns
// the flags that turn TLS on for both.
func pki(t *testing.T) (dir string, tlsArgs []string) {
	t.Helper()
	dir = t.TempDir()
	peerCA, clientCA := testcerts.NewCA(t, "peer"), testcerts.NewCA(t, "client")
	o := testcerts.Loopback
	o.CommonName, o.Server, o.Client = "member", true, true
	pc, pk := peerCA.Issue(t, o).WriteFiles(t, dir, "peer")
	o.CommonName, o.Client = "node", false
	cc, ck := clientCA.Issue(t, o).WriteFiles(t, dir, "client")
	return dir, []string{
		"--peer-cert-file", pc, "--peer-key-file", pk, "--peer-trusted-ca-file", peerCA.WriteFile(t, dir, "peer-ca.crt"),
		"--cert-file", cc, "--key-file", ck, "--trusted-ca-file", clientCA.WriteFile(t, dir, "client-ca.crt"),
		"--listen-client", "https://127.0.0.1:7070", "--listen-peer", "https://127.0.0.1:7071",
	}
}

func TestURLAndTLSFlagChecks(t *testing.T) {
	_, tlsArgs := pki(t)
	for _, tc := range []struct {
		args []string
		want string // "" for no error
	}{
		{nil, ""}, // the no-flag default: loopback, plaintext
		{[]string{"--listen-client", "http://localhost:7070"}, ""},
		{[]string{"--listen-client", "http://[::1]:7070"}, ""},
		{[]string{"--listen-client", "http://0.0.0.0:7070"}, "refusing plaintext on the client port"},
		{[]string{"--listen-client", "http://10.0.0.1:7070"}, "--insecure-plaintext"},
		{[]string{"--listen-client", "http://myhost:7070"}, "refusing plaintext on the client port"},
		{[]string{"--listen-peer", "http://10.0.0.1:7071"}, "refusing plaintext on the peer port"},
		{[]string{"--listen-client", "http://0.0.0.0:7070", "--listen-peer", "http://10.0.0.1:7071", "--insecure-plaintext"}, ""},
		{[]string{"--listen-client", "https://127.0.0.1:7070"}, "an https URL needs --cert-file and --key-file"},
		{[]string{"--listen-peer", "https://127.0.0.1:7071"}, "an https URL needs --peer-cert-file"},
		{[]string{"--cert-file", "c", "--key-file", "k"}, "--listen-client http://127.0.0.1:7070: TLS is on"},
		{[]string{"--cert-file", "c"}, "both --cert-file and --key-file"},
		{[]string{"--peer-cert-file", "c", "--peer-key-file", "k"}, "--peer-trusted-ca-file"},
		{[]string{"--peer-client-cert-auth"}, "--peer-client-cert-auth needs"},
		{[]string{"--peer-cert-allowed-cn", "m"}, "--peer-cert-allowed-cn needs peer TLS"},
		{[]string{"--trusted-ca-file", "ca"}, "--trusted-ca-file verifies client certificates"},
		{[]string{"--cert-file", "c", "--key-file", "k", "--listen-client", "https://127.0.0.1:1", "--client-cert-auth"}, "--client-cert-auth needs --trusted-ca-file"},
		{[]string{"--pprof-listen", ":6060"}, "not a loopback address"},
		{[]string{"--pprof-listen", "0.0.0.0:6060"}, "not a loopback address"},
		{[]string{"--pprof-listen", "127.0.0.1:0"}, ""},
		{[]string{"--pprof-listen", "localhost:6060"}, ""},
		{[]string{"--listen-client", "ftp://127.0.0.1:1"}, "want http://host:port or https://host:port"},
		{tlsArgs, ""},
		{append(append([]string{}, tlsArgs...), "--listen-client", "https://0.0.0.0:7070", "--listen-peer", "https://0.0.0.0:7071"), ""},
		{append(append([]string{}, tlsArgs...), "--advertise-client", "http://127.0.0.1:7070"), "--advertise-client http://127.0.0.1:7070: TLS is on"},
	} {
		o := flags(t, tc.args...)
		_, _, err := o.checkURLs()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%q: the error is not one line: %q", tc.args, err)
		}
	}
}

// The no-flag default still starts: run gets as far as serving, and stops
// on its context.
func TestDefaultStartsOnLoopbackWithoutTLS(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	errC := make(chan error, 1)
	var ports [2]string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().String()
		ln.Close()
	}
	go func() {
		errC <- run(ctx, []string{"--data-dir", filepath.Join(dir, "data"), "--listen-client", "http://" + ports[0], "--listen-peer", "http://" + ports[1], "--tick", "10ms"},
			func(string) string { return "" }, io.Discard)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + ports[0] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		select {
		case err := <-errC:
			t.Fatalf("run returned %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errC; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestBuildTLS(t *testing.T) {
	_, tlsArgs := pki(t)
	o := flags(t, append(tlsArgs, "--client-cert-auth", "--peer-cert-allowed-cn", "member")...)
	if _, _, err := o.checkURLs(); err != nil {
		t.Fatal(err)
	}
	s, err := buildTLS(o)
	if err != nil {
		t.Fatal(err)
	}
	if s.peerServer == nil || s.peerServer.ClientAuth != tls.RequireAndVerifyClientCert || s.peerServer.ClientCAs == nil {
		t.Fatalf("peer server config: %+v", s.peerServer)
	}
	if s.peer.TrustedCAFile == "" || len(s.peer.AllowedCNs) != 1 {
		t.Fatalf("peer TLSInfo: %+v", s.peer)
	}
	if s.client == nil || s.client.ClientAuth != tls.RequireAndVerifyClientCert || s.client.GetCertificate == nil {
		t.Fatalf("client config: %+v", s.client)
	}
	if s.forward == nil || s.forward.GetClientCertificate == nil || s.forward.RootCAs == nil {
		t.Fatalf("forward config: %+v", s.forward)
	}
	if s.isMember == nil || s.sharedCA {
		t.Fatalf("isMember %v, sharedCA %v", s.isMember != nil, s.sharedCA)
	}

	// Without --client-cert-auth a client certificate is verified if
	// given; without peer TLS nobody is a member.
	o = flags(t, "--cert-file", o.certFile, "--key-file", o.keyFile, "--trusted-ca-file", o.trustedCAFile, "--listen-client", "https://127.0.0.1:1")
	s, err = buildTLS(o)
	if err != nil {
		t.Fatal(err)
	}
	if s.client.ClientAuth != tls.VerifyClientCertIfGiven || s.isMember != nil || s.peerServer != nil {
		t.Fatalf("client auth %v, isMember %v, peer %v", s.client.ClientAuth, s.isMember != nil, s.peerServer != nil)
	}

	// A missing or empty CA file is an error that names it.
	empty := filepath.Join(t.TempDir(), "empty.crt")
	if err := os.WriteFile(empty, []byte("no PEM here"), 0o644); err != nil {
		t.Fatal(err)
	}
	o = flags(t, "--cert-file", o.certFile, "--key-file", o.keyFile, "--trusted-ca-file", empty, "--listen-client", "https://127.0.0.1:1")
	if _, err := buildTLS(o); err == nil || !strings.Contains(err.Error(), "empty.crt") {
		t.Fatalf("an empty CA file: %v", err)
	}
}

// A request is from a member when its client certificate chains to the
// peer CA (with the allowed CN, when set), not when it chains to a client
// CA or comes without TLS.
func TestMemberProof(t *testing.T) {
	peerCA, clientCA := testcerts.NewCA(t, "peer"), testcerts.NewCA(t, "client")
	leaf := func(ca *testcerts.CA, cn string) *http.Request {
		p := ca.Issue(t, testcerts.Options{CommonName: cn, Client: true})
		return &http.Request{TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{p.Cert}, VerifiedChains: [][]*x509.Certificate{{p.Cert, ca.Cert}}}}
	}
	unpinned, pinned := memberProof([]*x509.Certificate{peerCA.Cert}, ""), memberProof([]*x509.Certificate{peerCA.Cert}, "member")
	for _, tc := range []struct {
		name        string
		r           *http.Request
		any, pinned bool
	}{
		{"member certificate", leaf(peerCA, "member"), true, true},
		{"peer CA, another CN", leaf(peerCA, "someone"), true, false},
		{"client CA", leaf(clientCA, "member"), false, false},
		{"no TLS", &http.Request{}, false, false},
		{"TLS without a verified chain", &http.Request{TLS: &tls.ConnectionState{}}, false, false},
	} {
		if got := unpinned(tc.r); got != tc.any {
			t.Errorf("%s, no CN pinned: %v, want %v", tc.name, got, tc.any)
		}
		if got := pinned(tc.r); got != tc.pinned {
			t.Errorf("%s, CN pinned: %v, want %v", tc.name, got, tc.pinned)
		}
	}
}

func TestNumericFlagBounds(t *testing.T) {
	for _, args := range [][]string{{"--max-connections", "0"}, {"--peer-max-snapshot-bytes", "-1"}} {
		if _, err := parseFlags(args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if o := flags(t, "--peer-max-snapshot-bytes", "200000000"); o.maxSnapshotBytes != 200000000 || o.maxConnections != 10000 {
		t.Fatalf("%+v", o)
	}
}

func TestAllowedHosts(t *testing.T) {
	o := flags(t, "--listen-client", "http://127.0.0.1:7070", "--advertise-client", "http://Node-1.example.:7070", "--allowed-hosts", " lb.example.com,node-1.example ,,other")
	got, err := o.allowedHostList()
	if err != nil {
		t.Fatal(err)
	}
	if want := "node-1.example,127.0.0.1,lb.example.com,other"; strings.Join(got, ",") != want {
		t.Fatalf("allowed hosts %q, want %q", got, want)
	}
	for _, bad := range []string{"a.example:8080", "http://a", "a b"} {
		if _, err := flags(t, "--allowed-hosts", bad).allowedHostList(); err == nil {
			t.Errorf("--allowed-hosts %q accepted", bad)
		}
	}
}

func TestBootstrapTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok, err := readBootstrapToken(write("ok", "s3cret-token\n \t\n", 0o600))
	if err != nil || tok != "s3cret-token" {
		t.Fatalf("token %q, %v", tok, err)
	}
	if tok, err := readBootstrapToken(write("group", "tok", 0o640)); err != nil || tok != "tok" {
		t.Fatalf("group-readable: %q %v", tok, err)
	}
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"empty":          {"", 0o600, "is empty"},
		"blank":          {" \n\n", 0o600, "is empty"},
		"world":          {"tok", 0o644, "readable by others"},
		"space inside":   {"a b", 0o600, "printable ASCII"},
		"control char":   {"a\x01b", 0o600, "printable ASCII"},
		"not ASCII":      {"jéton", 0o600, "printable ASCII"},
		"other-writable": {"tok", 0o602, "readable by others"},
	} {
		if _, err := readBootstrapToken(write(name, tc.content, tc.mode)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	if _, err := readBootstrapToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file accepted")
	}
}

// The peer listener's per-read timeout notices a silent peer, and it keeps
// the server's own, earlier deadlines: a client that dribbles its headers
// is cut at ReadHeaderTimeout, not kept alive by each byte (as etcd's
// timeout listener would).
func TestIOTimeoutConnKeepsServerDeadlines(t *testing.T) {
	ln, err := listen("127.0.0.1:0", 10, 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 700 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	// Silent: cut after the per-read timeout.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	conn.Close()
	if d := time.Since(start); err == nil || d > 2*time.Second {
		t.Fatalf("a silent connection: %v after %v, want it closed after about 300ms", err, d)
	}

	// Dribbling a byte every 100ms (within the per-read timeout): cut by
	// ReadHeaderTimeout.
	conn, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start = time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	req := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for i := 0; ; i++ {
		select {
		case d := <-closed:
			if d > 3*time.Second {
				t.Fatalf("the dribbling client was cut after %v, want about 700ms", d)
			}
			return
		case <-tk.C:
			if _, err := conn.Write([]byte{req[i%len(req)]}); err != nil {
				d := time.Since(start)
				if d > 3*time.Second {
					t.Fatalf("the dribbling client was cut after %v, want about 700ms", d)
				}
				return
			}
		}
	}
}

func TestMaxConnections(t *testing.T) {
	ln, err := listen("127.0.0.1:0", 1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c1, _ := net.Dial("tcp", ln.Addr().String())
	defer c1.Close()
	first := <-accepted
	c2, _ := net.Dial("tcp", ln.Addr().String()) // waits in the backlog
	defer c2.Close()
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted while the first is open")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection was not accepted after the first closed")
	}
}
