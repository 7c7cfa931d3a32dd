package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testcerts"
)

// memberCN is the common name of every member's peer certificate in these
// tests, pinned with --peer-cert-allowed-cn.
const memberCN = "raftlock-member"

// tlsPKI is the certificates of a TLS cluster: a CA for the members' peer
// certificates, two CAs for clients (the trusted-CA file holds both, as
// during a rotation), and a CA nobody trusts.
type tlsPKI struct {
	dir                      string
	peerCA, clientCA, newCA  *testcerts.CA
	otherCA                  *testcerts.CA
	peerCAFile, clientCAFile string
	// client presents a certificate of clientCA (CN "alice") and trusts
	// clientCA, which signs the members' client-port certificates.
	client *http.Client
}

func newTLSPKI(t *testing.T) *tlsPKI {
	t.Helper()
	p := &tlsPKI{
		dir:      t.TempDir(),
		peerCA:   testcerts.NewCA(t, "raftlock peer CA"),
		clientCA: testcerts.NewCA(t, "raftlock client CA"),
		newCA:    testcerts.NewCA(t, "raftlock client CA 2"),
		otherCA:  testcerts.NewCA(t, "somebody else's CA"),
	}
	p.peerCAFile = p.peerCA.WriteFile(t, p.dir, "peer-ca.crt")
	p.clientCAFile = testcerts.WriteBundle(t, p.dir, "client-ca.crt", p.clientCA, p.newCA)
	p.client = p.httpClient(p.clientPair(t, p.clientCA, "alice"))
	return p
}

// clientPair issues a client certificate.
func (p *tlsPKI) clientPair(t *testing.T, ca *testcerts.CA, cn string) *testcerts.Pair {
	t.Helper()
	return ca.Issue(t, testcerts.Options{CommonName: cn, Client: true})
}

// serverOpts are the options of a certificate for 127.0.0.1.
func serverOpts(cn string, client bool) testcerts.Options {
	o := testcerts.Loopback
	o.CommonName, o.Server, o.Client = cn, true, client
	return o
}

// httpClient returns a client that presents pair (none when nil) and
// trusts the client CA.
func (p *tlsPKI) httpClient(pair *testcerts.Pair) *http.Client {
	cfg := &tls.Config{RootCAs: p.clientCA.Pool()}
	if pair != nil {
		cfg.Certificates = []tls.Certificate{pair.TLS}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// memberArgs writes member m's certificates and returns its TLS flags:
// mutual TLS on the peer port with the members' CN pinned, TLS on the
// client port with client certificates required.
func (p *tlsPKI) memberArgs(t *testing.T, m *member) []string {
	t.Helper()
	name := "member" + strconv.Itoa(m.id)
	peerCert, peerKey := p.peerCA.Issue(t, serverOpts(memberCN, true)).WriteFiles(t, p.dir, name+"-peer")
	cert, key := p.clientCA.Issue(t, serverOpts(name, false)).WriteFiles(t, p.dir, name+"-client")
	return []string{
		"--cert-file", cert, "--key-file", key, "--trusted-ca-file", p.clientCAFile, "--client-cert-auth",
		"--peer-cert-file", peerCert, "--peer-key-file", peerKey, "--peer-trusted-ca-file", p.peerCAFile,
		"--peer-client-cert-auth", "--peer-cert-allowed-cn", memberCN,
	}
}

// doWith is do with another client.
func doWith(hc *http.Client, method, url string, body any) (reply, error) {
	return request(hc, method, url, "", body)
}

// leaderWith is cluster.leader through client hc.
func (c *cluster) leaderWith(hc *http.Client, ms ...*member) *member {
	c.t.Helper()
	var lead *member
	await.True(c.t, 30*time.Second, "a leader all members agree on", func() bool {
		var id float64
		for i, m := range ms {
			r, err := doWith(hc, "GET", m.clientURL+"/v1/status?consistency=stale", nil)
			if err != nil || r.status != 200 {
				return false
			}
			l, _ := r.body["leader"].(float64)
			if l == 0 || (i > 0 && l != id) {
				return false
			}
			id = l
			if r, err := doWith(hc, "GET", m.clientURL+"/readyz", nil); err != nil || r.status != 200 {
				return false
			}
		}
		for _, m := range ms {
			if float64(m.id) == id {
				lead = m
				return true
			}
		}
		return false
	})
	return lead
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// tlsSession dials addr with cfg, sends a GET of path and reads the first
// byte of the answer. It returns nil when the server answered, and the
// error otherwise: a refused handshake, or (TLS 1.3, where the client's
// handshake ends before the server has checked the client's certificate)
// the alert on the first read. A timeout is reported as such: a server
// that neither answers nor refuses is no refusal.
func tlsSession(addr, path string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := conn.Read(b); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("timeout: the server neither answered nor refused: %w", err)
		}
		return err
	}
	return nil
}

// A three-node cluster with mutual TLS between members and TLS with client
// certificates on the client port: it elects, serves a lock through a
// follower (which forwards to the leader's https URL, proving itself with
// its member certificate), and refuses handshakes without a certificate of
// the right CA (and, on the peer port, the members' CN).
func TestTLSCluster(t *testing.T) {
	pki := newTLSPKI(t)
	c := startClusterWith(t, 3, clusterOptions{scheme: "https", args: func(m *member) []string { return pki.memberArgs(t, m) }})
	lead := c.leaderWith(pki.client, c.members...)
	var follower *member
	for _, m := range c.members {
		if m != lead {
			follower = m
			break
		}
	}

	t.Run("a follower forwards to the leader over TLS", func(t *testing.T) {
		r, err := doWith(pki.client, "POST", follower.clientURL+"/v1/locks/tls-lock/acquire", map[string]any{"ttl": "10s", "owner": "tls-test"})
		if err != nil || r.status != 200 {
			t.Fatalf("acquire through follower %d: %v %v", follower.id, r, err)
		}
		if got := r.header.Get("Raftlock-Leader"); got != lead.clientURL {
			t.Fatalf("Raftlock-Leader %q, want the leader's https URL %q", got, lead.clientURL)
		}
		token := num(r.body["token"])
		r, err = doWith(pki.client, "GET", follower.clientURL+"/v1/locks/tls-lock", nil)
		if _, tok := holderOf(r); err != nil || tok != token {
			t.Fatalf("the follower reads %v %v, want the grant of token %d", r, err, token)
		}
	})

	t.Run("a client of the second trusted CA is served", func(t *testing.T) {
		hc := pki.httpClient(pki.clientPair(t, pki.newCA, "bob"))
		if r, err := doWith(hc, "GET", follower.clientURL+"/v1/status", nil); err != nil || r.status != 200 {
			t.Fatalf("status with a certificate of the second CA in --trusted-ca-file: %v %v", r, err)
		}
	})

	peerAddr, clientAddr := hostOf(t, lead.peerURL), hostOf(t, lead.clientURL)
	memberCert := pki.peerCA.Issue(t, testcerts.Options{CommonName: memberCN, Client: true})
	wrongCN := pki.peerCA.Issue(t, testcerts.Options{CommonName: "intruder", Client: true})
	stranger := pki.otherCA.Issue(t, testcerts.Options{CommonName: memberCN, Client: true})
	alice := pki.clientPair(t, pki.clientCA, "alice")
	mallory := pki.clientPair(t, pki.otherCA, "alice")
	peerCfg := func(p *testcerts.Pair, maxVersion uint16) *tls.Config {
		cfg := &tls.Config{RootCAs: pki.peerCA.Pool(), MaxVersion: maxVersion}
		if p != nil {
			cfg.Certificates = []tls.Certificate{p.TLS}
		}
		return cfg
	}
	clientCfg := func(p *testcerts.Pair, maxVersion uint16) *tls.Config {
		cfg := &tls.Config{RootCAs: pki.clientCA.Pool(), MaxVersion: maxVersion}
		if p != nil {
			cfg.Certificates = []tls.Certificate{p.TLS}
		}
		return cfg
	}
	// The same checks succeed with the right certificate: the refusals
	// below are the certificate's doing.
	if err := tlsSession(peerAddr, "/raft/probing", peerCfg(memberCert, 0)); err != nil {
		t.Fatalf("a member certificate on the peer port: %v", err)
	}
	if err := tlsSession(clientAddr, "/healthz", clientCfg(alice, 0)); err != nil {
		t.Fatalf("a client certificate on the client port: %v", err)
	}
	for _, tc := range []struct {
		name, addr, path string
		cfg              func(*testcerts.Pair, uint16) *tls.Config
		pair             *testcerts.Pair
	}{
		{"peer port, no certificate", peerAddr, "/raft/probing", peerCfg, nil},
		{"peer port, another CA's certificate", peerAddr, "/raft/probing", peerCfg, stranger},
		{"peer port, the peer CA's certificate with another CN", peerAddr, "/raft/probing", peerCfg, wrongCN},
		{"client port, no certificate", clientAddr, "/healthz", clientCfg, nil},
		{"client port, another CA's certificate", clientAddr, "/healthz", clientCfg, mallory},
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(fmt.Sprintf("%s refused (TLS 1.%d)", tc.name, v-tls.VersionTLS10), func(t *testing.T) {
				err := tlsSession(tc.addr, tc.path, tc.cfg(tc.pair, v))
				if err == nil {
					t.Fatal("the server answered")
				}
				if strings.HasPrefix(err.Error(), "timeout") {
					t.Fatal(err)
				}
				t.Logf("refused: %v", err)
			})
		}
	}
	// A plaintext client gets nothing from either port.
	for _, u := range []string{strings.Replace(lead.peerURL, "https", "http", 1) + "/raft/probing", strings.Replace(lead.clientURL, "https", "http", 1) + "/healthz"} {
		if r, err := doWith(httpc, "GET", u, nil); err == nil && r.status < 400 {
			t.Errorf("plaintext GET %s: %v", u, r)
		}
	}
}

// servedSerial returns the serial number of the certificate the server at
// addr presents.
func servedSerial(addr string, cfg *tls.Config) (*big.Int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0].SerialNumber, nil
}

// Certificates and keys are re-read when their files change: after the
// files are replaced (each by a rename, as a Kubernetes secret update or an
// atomic deploy does), the next handshake on either port presents the new
// certificate, without a restart.
func TestTLSCertificatesReloadWithoutRestart(t *testing.T) {
	pki := newTLSPKI(t)
	c := startClusterWith(t, 1, clusterOptions{scheme: "https", args: func(m *member) []string { return pki.memberArgs(t, m) }})
	m := c.members[0]
	c.leaderWith(pki.client, m)
	memberCert := pki.peerCA.Issue(t, testcerts.Options{CommonName: memberCN, Client: true})
	alice := pki.clientCA.Issue(t, testcerts.Options{CommonName: "alice", Client: true})
	for _, port := range []struct {
		name, addr, file string
		ca               *testcerts.CA
		client           bool
		cfg              *tls.Config
	}{
		{"client port", hostOf(t, m.clientURL), "member1-client", pki.clientCA, false,
			&tls.Config{RootCAs: pki.clientCA.Pool(), Certificates: []tls.Certificate{alice.TLS}}},
		{"peer port", hostOf(t, m.peerURL), "member1-peer", pki.peerCA, true,
			&tls.Config{RootCAs: pki.peerCA.Pool(), Certificates: []tls.Certificate{memberCert.TLS}}},
	} {
		t.Run(port.name, func(t *testing.T) {
			before, err := servedSerial(port.addr, port.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cn := "member1"
			if port.client {
				cn = memberCN
			}
			next := port.ca.Issue(t, serverOpts(cn, port.client))
			if next.Cert.SerialNumber.Cmp(before) == 0 {
				t.Fatal("the new certificate has the old serial")
			}
			next.WriteFiles(t, pki.dir, port.file)
			await.True(t, 10*time.Second, "the new certificate served", func() bool {
				s, err := servedSerial(port.addr, port.cfg)
				return err == nil && s.Cmp(next.Cert.SerialNumber) == 0
			})
		})
	}
	// The node still works with its new certificates: the status answers
	// over the new client certificate.
	if r, err := doWith(pki.client, "GET", m.clientURL+"/v1/status", nil); err != nil || r.status != 200 {
		t.Fatalf("status after the rotation: %v %v", r, err)
	}
}

// On SIGTERM a leader lets a waiting acquire end cleanly: the request gets
// a 503 once its grace has passed, its session leaves the queue through
// Raft before Raft stops (another member shows no waiter, and the session
// is still open), and the process exits 0.
func TestSIGTERMWaitingAcquireLeavesItsQueue(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.leader(c.members...)
	var other *member
	for _, m := range c.members {
		if m != lead {
			other = m
			break
		}
	}
	holder := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "30s", "owner": "holder"}, 201).body["id"]
	c.must("POST", lead.clientURL+"/v1/locks/graceful/acquire", map[string]any{"session": holder}, 200)
	waiter := c.must("POST", lead.clientURL+"/v1/sessions", map[string]any{"ttl": "30s", "owner": "waiter"}, 201).body["id"]

	type result struct {
		r   reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := do("POST", lead.clientURL+"/v1/locks/graceful/acquire", map[string]any{"session": waiter, "wait": "60s"})
		done <- result{r, err}
	}()
	waiters := func(m *member, consistency string) ([]any, reply, bool) {
		r, err := do("GET", m.clientURL+"/v1/locks/graceful"+consistency, nil)
		if err != nil || r.status != 200 {
			return nil, r, false
		}
		ws, _ := r.body["waiters"].([]any)
		return ws, r, true
	}
	await.True(t, 10*time.Second, "the waiter is queued", func() bool {
		ws, _, ok := waiters(other, "?consistency=stale")
		return ok && len(ws) == 1
	})

	if err := lead.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting acquire did not answer within 20s of SIGTERM")
	}
	if res.err != nil || res.r.status != 503 {
		t.Fatalf("the waiting acquire answered %v %v, want 503", res.r, res.err)
	}
	t.Logf("the waiting acquire answered %v", res.r)
	select {
	case <-lead.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the leader did not exit within 20s of SIGTERM")
	}
	if code := lead.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the leader exited %d, want 0", code)
	}
	await.True(t, 15*time.Second, "no waiter on another member, the holder unchanged", func() bool {
		ws, r, ok := waiters(other, "")
		s, _ := holderOf(r)
		return ok && len(ws) == 0 && s == holder
	})
	c.must("GET", other.clientURL+"/v1/sessions/"+waiter.(string), nil, 200)
}
