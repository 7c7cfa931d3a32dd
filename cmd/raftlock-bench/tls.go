package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/testcerts"
)

// With --tls both clusters run with TLS on both ports, configured alike:
//
//   - peer port: mutual TLS between members. Every member presents a
//     certificate of the peer CA (serverAuth and clientAuth) whose common
//     name is memberCN, requires one from the others, and pins that name
//     (raftlockd --peer-cert-allowed-cn, etcd PeerTLSInfo.AllowedCNs; both
//     check it in both directions).
//   - client port: TLS with a server certificate of the client CA for
//     127.0.0.1 per member, and client certificates required (raftlockd
//     --trusted-ca-file --client-cert-auth, etcd ClientTLSInfo with
//     TrustedCAFile and ClientCertAuth): the clients prove who they are, as
//     issue 11 asks of a shared network. The benchmark's clients (raftlock
//     SDK, etcd clientv3, the readiness probes) present one client
//     certificate of the client CA, CN benchClientCN, and trust the client
//     CA.
//
// etcd serves gRPC natively on its client port in plaintext (cmux hands
// HTTP/2 connections to grpc.Server), but with TLS on a single port it
// serves gRPC through net/http's HTTP/2 server (grpc.Server.ServeHTTP),
// which is slower. So that the TLS run measures TLS and nothing else, each
// etcd member gets its HTTP endpoints (/readyz, /metrics) on a second
// https port (embed.Config.ListenClientHttpUrls, etcd's
// --listen-client-http-urls), and its client port serves gRPC natively
// over TLS. --etcd-tls-shared-port keeps etcd's one-port default instead.
//
// raftlockd members also get --rate-limit -1: see tlsRaftlockdArgs.
//
// The raftlock target's HTTP transport is the one client.New makes for
// Config.TLS (the SDK's default over TLS), wrapped to count keep-alives;
// TestTLSTransportMatchesSDK keeps the two alike. Today that is HTTP/2:
// every request of a Client to a member shares one connection, where over
// plaintext the SDK speaks HTTP/1.1 on up to 32 idle connections per
// member.

// memberCN is the common name of every member's peer certificate, pinned
// on both clusters.
const memberCN = "raftlock-bench-member"

// benchClientCN is the common name of the benchmark's client certificate.
const benchClientCN = "raftlock-bench"

// benchPKI is the certificates of a --tls run, as files under dir.
type benchPKI struct {
	dir          string
	peerCA       *testcerts.CA
	clientCA     *testcerts.CA
	peerCAFile   string
	clientCAFile string
	// client is the benchmark's client certificate (client CA).
	client *testcerts.Pair
}

// memberCerts are the files of one member's certificates.
type memberCerts struct {
	peerCert, peerKey string // peer CA, CN memberCN, serverAuth+clientAuth
	cert, key         string // client port: client CA, serverAuth, 127.0.0.1
}

// errCert carries a failure of internal/testcerts out of certTB.Fatalf.
type errCert struct{ err error }

// certTB lets internal/testcerts, which is made for tests, run in this
// command: testcerts calls only Helper and Fatalf of its testing.TB, and
// Fatalf here panics with an errCert that withCerts turns into an error.
// Any other method would panic on the nil embedded TB: a change in
// testcerts shows up at once rather than silently.
type certTB struct{ testing.TB }

func (certTB) Helper() {}

func (certTB) Fatalf(format string, args ...any) {
	panic(errCert{fmt.Errorf(format, args...)})
}

// withCerts runs f with a certTB and returns the failure it reports.
func withCerts(f func(tb testing.TB)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(errCert)
			if !ok {
				panic(r)
			}
			err = e.err
		}
	}()
	f(certTB{})
	return nil
}

// newBenchPKI makes a peer CA, a client CA and the benchmark's client
// certificate, with the CA files under dir (created).
func newBenchPKI(dir string) (*benchPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &benchPKI{dir: dir}
	err := withCerts(func(tb testing.TB) {
		p.peerCA = testcerts.NewCA(tb, "raftlock-bench peer CA")
		p.clientCA = testcerts.NewCA(tb, "raftlock-bench client CA")
		p.peerCAFile = p.peerCA.WriteFile(tb, dir, "peer-ca.crt")
		p.clientCAFile = p.clientCA.WriteFile(tb, dir, "client-ca.crt")
		p.client = p.clientCA.Issue(tb, testcerts.Options{CommonName: benchClientCN, Client: true})
	})
	if err != nil {
		return nil, fmt.Errorf("--tls: certificates: %w", err)
	}
	return p, nil
}

// member issues the certificates of the member called name and writes
// them under p.dir.
func (p *benchPKI) member(name string) (memberCerts, error) {
	var mc memberCerts
	err := withCerts(func(tb testing.TB) {
		peer := testcerts.Loopback
		peer.CommonName, peer.Server, peer.Client = memberCN, true, true
		mc.peerCert, mc.peerKey = p.peerCA.Issue(tb, peer).WriteFiles(tb, p.dir, name+"-peer")
		srv := testcerts.Loopback
		srv.CommonName, srv.Server = name, true
		mc.cert, mc.key = p.clientCA.Issue(tb, srv).WriteFiles(tb, p.dir, name+"-server")
	})
	if err != nil {
		return mc, fmt.Errorf("--tls: certificates of %s: %w", name, err)
	}
	return mc, nil
}

// raftlockdArgs returns the TLS flags of raftlockd member name.
func (p *benchPKI) raftlockdArgs(name string) ([]string, error) {
	mc, err := p.member(name)
	if err != nil {
		return nil, err
	}
	return []string{
		"--cert-file", mc.cert, "--key-file", mc.key,
		"--trusted-ca-file", p.clientCAFile, "--client-cert-auth",
		"--peer-cert-file", mc.peerCert, "--peer-key-file", mc.peerKey,
		"--peer-trusted-ca-file", p.peerCAFile, "--peer-client-cert-auth",
		"--peer-cert-allowed-cn", memberCN,
	}, nil
}

// etcdArgs returns the TLS flags of the etcd-member subcommand for member
// name (see runEtcdMember).
func (p *benchPKI) etcdArgs(name string) ([]string, error) {
	mc, err := p.member(name)
	if err != nil {
		return nil, err
	}
	return []string{
		"--cert-file", mc.cert, "--key-file", mc.key,
		"--trusted-ca-file", p.clientCAFile, "--client-cert-auth",
		"--peer-cert-file", mc.peerCert, "--peer-key-file", mc.peerKey,
		"--peer-trusted-ca-file", p.peerCAFile, "--peer-cert-allowed-cn", memberCN,
	}, nil
}

// clientTLS returns the TLS configuration of the benchmark's clients:
// trust the client CA, present the client certificate.
func (p *benchPKI) clientTLS() *tls.Config {
	return &tls.Config{
		RootCAs:      p.clientCA.Pool(),
		Certificates: []tls.Certificate{p.client.TLS},
		MinVersion:   tls.VersionTLS12,
	}
}

// probeClient returns the HTTP client of the readiness probes. It keeps
// no connection open between probes (they are few), so nothing of it
// outlives the run.
func (p *benchPKI) probeClient() *http.Client {
	if p == nil {
		return probeClient
	}
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: p.clientTLS(), DisableKeepAlives: true}}
}

// scheme returns the scheme of the URLs: https with p, else http.
func (p *benchPKI) scheme() string {
	if p == nil {
		return "http"
	}
	return "https"
}

// tlsFlagsOfRaftlockd are the raftlockd flags --tls uses.
var tlsFlagsOfRaftlockd = []string{"-cert-file", "-key-file", "-trusted-ca-file", "-client-cert-auth",
	"-peer-cert-file", "-peer-key-file", "-peer-trusted-ca-file", "-peer-client-cert-auth", "-peer-cert-allowed-cn"}

// raftlockdHelp returns the output of bin --help (its flags).
func raftlockdHelp(ctx context.Context, bin, flag string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if err != nil && len(out) == 0 {
		return "", fmt.Errorf("%s %s: run --help: %w", flag, bin, err)
	}
	return string(out), nil
}

// hasFlag reports whether the --help output of a Go program lists flag
// name (with its leading '-').
func hasFlag(help, name string) bool {
	return strings.Contains(help, "  "+name+" ") || strings.Contains(help, "  "+name+"\n")
}

// tlsRaftlockdArgs returns the flags that --tls adds to every member of
// the raftlockd binary bin (named by flag in errors), besides the
// certificates, or an error naming the TLS flags bin lacks (an older
// build): it reads the binary's --help.
//
// The flags: --rate-limit -1 when bin has that flag. The benchmark runs
// without auth, and raftlockd limits principals only once auth is on, so
// the flag changes nothing for this version; it keeps a baseline build from
// the version that limited a certificate's name without auth (the
// benchmark's workers share one certificate: the election workload at 64
// workers dropped from about 2,300 to 600 cycles/s) comparable, as etcd has
// no per-client limit. A TLS run measures TLS.
func tlsRaftlockdArgs(ctx context.Context, bin, flag string) ([]string, error) {
	help, err := raftlockdHelp(ctx, bin, flag)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range tlsFlagsOfRaftlockd {
		if !hasFlag(help, f) {
			missing = append(missing, "-"+f)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("--tls: the raftlockd of %s (%s) has no %s: it predates TLS. Build it from a version with TLS on both ports, or leave out --tls", flag, bin, strings.Join(missing, ", "))
	}
	if hasFlag(help, "-rate-limit") {
		return []string{"--rate-limit", "-1"}, nil
	}
	return nil, nil
}

// tlsDir returns the directory of a run's certificates.
func tlsDir(dir string) string { return filepath.Join(dir, "tls") }

// errTLSNeedsSpawn is the error of --tls without --spawn.
var errTLSNeedsSpawn = errors.New("--tls is only used with --spawn: it makes its own CA and certificates for the clusters it starts")

// tlsLegend is the line printed above the table of a --tls run.
func tlsLegend(etcdSharedPort bool) string {
	etcd := "etcd's gRPC natively on its client port, its HTTP endpoints on a second https port"
	if etcdSharedPort {
		etcd = "etcd's gRPC and HTTP on one client port (gRPC through net/http's HTTP/2 server)"
	}
	return "TLS on both ports of every cluster: mutual TLS between members (CN " + memberCN + " pinned), client certificates required on the client port; raftlockd with --rate-limit -1 (no effect without auth; for older baselines: etcd has no per-client limit); " + etcd + "."
}
