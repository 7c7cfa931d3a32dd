package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/client"
	"github.com/raftlock/raftlock/internal/testcerts"
)

// TestSpawnTLS runs --spawn --tls end to end with a tiny workload: both
// clusters come up with TLS on both ports, refuse clients without a
// certificate and strangers on the peer port, and every cycle workload
// runs against both without errors.
func TestSpawnTLS(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := buildRaftlockd(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hooked := false
	spawnedHook = func(rl, base, et *cluster, pki *benchPKI) {
		hooked = true
		if base != nil {
			t.Errorf("a baseline cluster without --baseline-raftlockd")
		}
		if argValue(rl.members[0].args, "--rate-limit") != "-1" {
			t.Errorf("raftlockd without --rate-limit -1: %q", rl.members[0].args)
		}
		checkTLSCluster(t, rl, pki)
		checkTLSCluster(t, et, pki)
	}
	defer func() { spawnedHook = nil }()
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"--spawn", "--tls", "--raftlockd", bin,
		"--workloads", "lock-uncontended,lock-contended,election", "--workers", "2",
		"--duration", "300ms", "--ttl", "5s", "--json"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	if !hooked {
		t.Fatal("the clusters were never checked")
	}
	if !strings.Contains(stderr.String(), "raftlock cluster: https://127.0.0.1:") || !strings.Contains(stderr.String(), "etcd cluster: https://127.0.0.1:") {
		t.Errorf("clusters not on https:\n%s", stderr.String())
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		key := r["target"].(string) + " " + r["workload"].(string)
		seen[key] = true
		if c, _ := r["cycles"].(float64); c <= 0 {
			t.Errorf("%s: cycles %v", key, r["cycles"])
		}
		if e, ok := r["errors"].(float64); !ok || e != 0 {
			t.Errorf("%s: errors %v", key, r["errors"])
		}
	}
	for _, tgt := range []string{"raftlock", "etcd"} {
		for _, wl := range []string{wlUncontended, wlContended, wlElection} {
			if !seen[tgt+" "+wl] {
				t.Errorf("no result for %s %s:\n%s", tgt, wl, stdout.String())
			}
		}
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// checkTLSCluster checks that every member of c serves TLS on both ports:
// its client port answers a client with the bench's certificate, and
// refuses one without a certificate and plaintext; its peer port refuses
// a client certificate that is not a member's.
func checkTLSCluster(t *testing.T, c *cluster, pki *benchPKI) {
	t.Helper()
	noCert := &tls.Config{RootCAs: pki.clientCA.Pool()}
	stranger := pki.clientTLS() // a valid client certificate, not a member's
	// A certificate of the peer CA with another name than the members'.
	var intruder *tls.Config
	if err := withCerts(func(tb testing.TB) {
		p := pki.peerCA.Issue(tb, testcerts.Options{CommonName: "intruder", Client: true})
		intruder = &tls.Config{RootCAs: pki.peerCA.Pool(), Certificates: []tls.Certificate{p.TLS}}
	}); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		if !strings.HasPrefix(m.clientURL, "https://") {
			t.Errorf("%s: client URL %s", m.name, m.clientURL)
		}
		if !m.ready(context.Background()) {
			t.Errorf("%s: not ready for a client with a certificate", m.name)
		}
		if err := get(m.probeURL+"/readyz", noCert); err == nil {
			t.Errorf("%s: %s/readyz answered a client without a certificate", m.name, m.probeURL)
		}
		if c.target == "etcd" && m.probeURL != m.clientURL {
			// The gRPC port: a TLS handshake without a certificate.
			if err := handshake(m.clientURL, noCert); err == nil {
				t.Errorf("%s: the client port %s completed a handshake without a client certificate", m.name, m.clientURL)
			}
		}
		if err := get(strings.Replace(m.probeURL, "https://", "http://", 1)+"/readyz", nil); err == nil {
			t.Errorf("%s: answered plaintext http", m.name)
		}
		peer := argValue(m.args, "--listen-peer")
		if !strings.HasPrefix(peer, "https://") {
			t.Errorf("%s: peer URL %q", m.name, peer)
			continue
		}
		if err := handshake(peer, stranger); err == nil {
			t.Errorf("%s: the peer port %s accepted a client certificate of another CA", m.name, peer)
		}
		if err := handshake(peer, intruder); err == nil {
			t.Errorf("%s: the peer port %s accepted a peer-CA certificate whose CN is not %s", m.name, peer, memberCN)
		}
	}
}

// get GETs u with cfg and fails unless the answer is 200.
func get(u string, cfg *tls.Config) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// handshake completes a TLS handshake with the host of u and reads from
// the connection: with TLS 1.3 the server's refusal of a client
// certificate arrives after the client's side of the handshake, on the
// first read.
func handshake(u string, cfg *tls.Config) error {
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	conn, err := tls.Dial("tcp", pu.Host, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return nil // the server waits for a request: accepted
	}
	if err == nil {
		return nil
	}
	return err
}

// argValue returns the value after flag in args, "" when absent.
func argValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func TestTLSRaftlockdArgs(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old-raftlockd")
	script := "#!/bin/sh\nprintf 'Usage: raftlockd [flags]\\n  -data-dir string\\n    \\tdirectory\\n  -id uint\\n    \\tid\\n' >&2\nexit 0\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := tlsRaftlockdArgs(context.Background(), old, "--baseline-raftlockd")
	if err == nil || !strings.Contains(err.Error(), "predates TLS") || !strings.Contains(err.Error(), "--peer-cert-file") ||
		!strings.Contains(err.Error(), "--baseline-raftlockd") {
		t.Fatalf("an old raftlockd: %v", err)
	}
	current := filepath.Join(dir, "raftlockd")
	var b strings.Builder
	b.WriteString("#!/bin/sh\ncat >&2 <<'EOF'\nUsage: raftlockd [flags]\n")
	for _, f := range tlsFlagsOfRaftlockd {
		if strings.HasSuffix(f, "-auth") {
			b.WriteString("  " + f + "\n    \tbool flag\n")
		} else {
			b.WriteString("  " + f + " string\n    \tstring flag\n")
		}
	}
	noRate := b.String() + "EOF\nexit 0\n"
	b.WriteString("  -rate-limit float\n    \trequests per second (default 1000)\nEOF\nexit 0\n")
	for _, tc := range []struct {
		script string
		want   []string
	}{
		{noRate, nil}, // TLS, but from before the rate limit
		{b.String(), []string{"--rate-limit", "-1"}},
	} {
		if err := os.WriteFile(current, []byte(tc.script), 0o755); err != nil {
			t.Fatal(err)
		}
		args, err := tlsRaftlockdArgs(context.Background(), current, "--raftlockd")
		if err != nil || !slices.Equal(args, tc.want) {
			t.Fatalf("a raftlockd with TLS: %q, %v; want %q", args, err, tc.want)
		}
	}
}

func TestParseFlagsTLS(t *testing.T) {
	o, err := parseFlags([]string{"--spawn", "--tls", "--etcd-tls-shared-port"}, io.Discard)
	if err != nil || !o.tls || !o.etcdSharedPort {
		t.Fatalf("parseFlags: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "raftlock", "--endpoints", "https://127.0.0.1:1", "--tls"}, "only used with --spawn"},
		{[]string{"--spawn", "--etcd-tls-shared-port"}, "needs --tls"},
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestBenchPKI(t *testing.T) {
	p, err := newBenchPKI(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	args, err := p.raftlockdArgs("raftlock-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--cert-file", "--key-file", "--trusted-ca-file", "--peer-cert-file", "--peer-key-file", "--peer-trusted-ca-file"} {
		if _, err := os.Stat(argValue(args, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if argValue(args, "--peer-cert-allowed-cn") != memberCN || !slices.Contains(args, "--client-cert-auth") {
		t.Errorf("args %q", args)
	}
	// A failure of testcerts comes back as an error, not a crash.
	err = withCerts(func(tb testing.TB) { tb.Fatalf("boom %d", 1) })
	if err == nil || err.Error() != "boom 1" {
		t.Fatalf("withCerts: %v", err)
	}
}

// TestTLSTransportMatchesSDK keeps the raftlock target's transport (the
// SDK's Config.HTTPClient, for counting keep-alives) equal to the one the
// SDK makes itself for Config.TLS, in what a TLS run measures: the HTTP
// version negotiated with an HTTPS server that offers both, and the
// client certificate presented.
func TestTLSTransportMatchesSDK(t *testing.T) {
	pki, err := newBenchPKI(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := pki.member("server")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(mc.cert, mc.key)
	if err != nil {
		t.Fatal(err)
	}
	// seen returns what a TLS server saw of a client's first GET /v1/status.
	seen := func(status func(ctx context.Context, url string) error) string {
		got := make(chan string, 16)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cn := ""
			if len(r.TLS.PeerCertificates) > 0 {
				cn = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			select {
			case got <- r.Proto + " " + cn:
			default:
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{}`)
		}))
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pki.clientCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
		srv.StartTLS()
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := status(ctx, srv.URL); err != nil {
			t.Fatalf("GET /v1/status: %v", err)
		}
		return <-got
	}
	sdk := seen(func(ctx context.Context, url string) error {
		c, err := client.New(client.Config{Endpoints: []string{url}, TLS: pki.clientTLS()})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Status(ctx)
		return err
	})
	bench := seen(func(ctx context.Context, url string) error {
		tgt, err := newRaftlockTargetWith([]string{url}, raftlockOptions{idlePerHost: 32, keepaliveClients: 1, tls: pki.clientTLS()})
		if err != nil {
			return err
		}
		defer tgt.Close()
		_, err = tgt.c.Status(ctx)
		return err
	})
	if bench != sdk {
		t.Fatalf("the benchmark's raftlock client sent %q, the SDK's own transport %q", bench, sdk)
	}
	if !strings.HasSuffix(sdk, " "+benchClientCN) {
		t.Fatalf("no client certificate: %q", sdk)
	}
	t.Logf("both: %s", sdk)
}
