package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// route is a fake's answer to one "METHOD /path".
type route struct {
	status int
	body   string
	header map[string]string
}

// recorded is one request a fake received.
type recorded struct {
	method, path, query, auth string
	body                      string
}

// apiFake is an httptest server that answers from routes (404 not_found
// otherwise) and records every request.
type apiFake struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]route
	reqs   []recorded
	// leader, when set, is sent as Raftlock-Leader on every answer.
	leader string
}

func newAPIFake(t *testing.T, tlsOn bool, routes map[string]route) *apiFake {
	t.Helper()
	f := &apiFake{routes: routes}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), string(b)})
		rt, ok := f.routes[r.Method+" "+r.URL.Path]
		leader := f.leader
		f.mu.Unlock()
		if !ok {
			rt = route{status: http.StatusNotFound, body: `{"error":{"code":"not_found","message":"no route"}}`}
		}
		if leader != "" {
			w.Header().Set(api.HeaderLeader, leader)
		}
		for k, v := range rt.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rt.status)
		io.WriteString(w, rt.body)
	})
	f.Server = httptest.NewUnstartedServer(h)
	quiet(f.Server)
	if tlsOn {
		f.StartTLS()
	} else {
		f.Start()
	}
	t.Cleanup(f.Close)
	return f
}

// quiet discards the server's error log: the handshakes that the tests
// make fail would fill the output.
func quiet(s *httptest.Server) { s.Config.ErrorLog = log.New(io.Discard, "", 0) }

func (f *apiFake) set(key string, rt route) {
	f.mu.Lock()
	f.routes[key] = rt
	f.mu.Unlock()
}

func (f *apiFake) setLeader(u string) {
	f.mu.Lock()
	f.leader = u
	f.mu.Unlock()
}

func (f *apiFake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *apiFake) hits() int { return len(f.requests()) }

// statusBody is a GET /v1/status answer listing members with these client URLs.
func statusBody(t *testing.T, clientURLs ...string) string {
	st := api.Status{ID: 1, Leader: 1, Ready: true}
	for i, u := range clientURLs {
		st.Members = append(st.Members, api.Member{ID: uint64(i + 1), ClientURL: u, PeerURL: "http://127.0.0.1:1"})
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// trusting returns a TLS config that trusts the certificate of the httptest
// TLS servers (they all share one).
func trusting(s *httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return &tls.Config{RootCAs: pool}
}

func TestNewRefusesUnsafeConfigs(t *testing.T) {
	const secret = "s3cret-token-value"
	for _, c := range []struct {
		what string
		cfg  Config
		want string
	}{
		{"mixed schemes", Config{Endpoints: []string{"https://a:1", "http://b:2"}}, "same scheme"},
		{"TLS with HTTPClient", Config{Endpoints: []string{"https://a:1"}, TLS: &tls.Config{}, HTTPClient: &http.Client{}}, "HTTPClient"},
		{"TLS with http", Config{Endpoints: []string{"http://a:1"}, TLS: &tls.Config{}}, "http://"},
		{"token with a space", Config{Endpoints: []string{"http://a:1"}, AuthToken: secret + " x"}, "not a token"},
		{"token too long", Config{Endpoints: []string{"http://a:1"}, AuthToken: strings.Repeat("x", 513)}, "not a token"},
	} {
		_, err := New(c.cfg)
		if !errors.Is(err, api.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want api.ErrInvalidArgument saying %q", c.what, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the token: %v", c.what, err)
		}
	}
	if _, err := New(Config{Endpoints: []string{"https://a:1", "https://b:2"}, TLS: &tls.Config{}, AuthToken: secret}); err != nil {
		t.Errorf("a valid TLS and token config: %v", err)
	}
}

// The Client's own transport uses Config.TLS: without it the httptest CA is
// unknown and nothing succeeds; with it, requests go through.
func TestTLSConfigUsed(t *testing.T) {
	f := newAPIFake(t, true, map[string]route{"GET /v1/status": {status: 200, body: statusBody(t)}})
	ctx := testCtx(t)
	untrusting, err := New(Config{Endpoints: []string{f.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	var ce *tls.CertificateVerificationError
	if _, err := untrusting.Status(ctx); !errors.As(err, &ce) && !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Status without the CA: %v, want a certificate error", err)
	}
	c, err := New(Config{Endpoints: []string{f.URL}, TLS: trusting(f.Server)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status with the CA: %v", err)
	}
}

// A client certificate in Config.TLS reaches a server that requires one;
// its common name is what the server sees.
func TestTLSClientCertificate(t *testing.T) {
	ca, caKey := newCA(t)
	cert := newLeaf(t, ca, caKey, "alice")
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		json.NewEncoder(w).Encode(api.AuthStatus{Enabled: true, Principal: cn})
	}))
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	quiet(srv)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx := testCtx(t)

	cfg := trusting(srv)
	cfg.Certificates = []tls.Certificate{cert}
	c, err := New(Config{Endpoints: []string{srv.URL}, TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.WhoAmI(ctx)
	if err != nil || st.Principal != "alice" {
		t.Fatalf("WhoAmI with alice's certificate: %+v %v", st, err)
	}
	// Without a certificate the handshake fails.
	anon, err := New(Config{Endpoints: []string{srv.URL}, TLS: trusting(srv)})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.WhoAmI(ctx); err == nil {
		t.Fatal("WhoAmI without a certificate succeeded against a server that requires one")
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func newLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A Raftlock-Leader header is followed only to a member's client URL with
// the endpoints' scheme: not from https to http (even to a member), not to
// a host that is no member; the requests stay on the endpoint.
func TestLeaderHeaderOnlyToMembersWithTheScheme(t *testing.T) {
	plain := newAPIFake(t, false, map[string]route{})   // a member, but http
	stranger := newAPIFake(t, true, map[string]route{}) // https, not a member
	member := newAPIFake(t, true, map[string]route{})   // https, a member
	ep := newAPIFake(t, true, map[string]route{})       // the endpoint
	members := statusBody(t, ep.URL, plain.URL, member.URL)
	ep.set("GET /v1/status", route{status: 200, body: members})
	member.set("GET /v1/status", route{status: 200, body: members})
	ctx := testCtx(t)

	for _, c := range []struct {
		what   string
		leader *apiFake
		follow bool
	}{
		{"https endpoint, http member", plain, false},
		{"https endpoint, stranger", stranger, false},
		{"https endpoint, https member", member, true},
	} {
		ep.setLeader(c.leader.URL)
		cl, err := New(Config{Endpoints: []string{ep.URL}, TLS: trusting(ep.Server)})
		if err != nil {
			t.Fatal(err)
		}
		before, leaderBefore := ep.hits(), c.leader.hits()
		for i := 0; i < 3; i++ {
			if _, err := cl.Status(ctx); err != nil {
				t.Errorf("%s: Status: %v", c.what, err)
			}
		}
		cl.Close()
		gotLeader, gotEp := c.leader.hits()-leaderBefore, ep.hits()-before
		if c.follow && (gotLeader != 2 || gotEp != 2) {
			// First call at the endpoint, the member list from it, then the leader.
			t.Errorf("%s: %d requests to the leader and %d to the endpoint, want 2 and 2 (the call and the member list)", c.what, gotLeader, gotEp)
		}
		if !c.follow && (gotLeader != 0 || gotEp != 4) {
			// Three calls and one read of the member list (paced).
			t.Errorf("%s: %d requests to %s and %d to the endpoint, want 0 and 4", c.what, gotLeader, c.leader.URL, gotEp)
		}
	}

	// The same with a plain http endpoint naming an https URL: no scheme change either way.
	httpEp := newAPIFake(t, false, map[string]route{"GET /v1/status": {status: 200, body: statusBody(t, member.URL)}})
	httpEp.setLeader(member.URL)
	cl := newClient(t, httpEp.URL)
	before := member.hits()
	for i := 0; i < 3; i++ {
		if _, err := cl.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := member.hits() - before; n != 0 {
		t.Errorf("an http Client followed a header to https: %d requests", n)
	}
}

// A header naming a stranger keeps the requests on the endpoint for every
// kind of request: sessions, keep-alives, locks, batches, observe.
func TestLeaderHeaderToStrangerIgnoredEverywhere(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	stranger := newAPIFake(t, false, map[string]route{})
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		r.Header.Set(api.HeaderLeader, stranger.URL)
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	c := newClient(t, front.URL)
	ctx := testCtx(t)
	exerciseClient(t, ctx, c)
	if n := stranger.hits(); n != 0 {
		t.Fatalf("%d requests went to the stranger named by Raftlock-Leader: %+v", n, stranger.requests())
	}
}

// exerciseClient sends every kind of request the SDK makes: open a session,
// keep it alive, lock (alone and, with concurrency, batched), unlock,
// observe, read, close.
func exerciseClient(t *testing.T, ctx context.Context, c *Client) {
	t.Helper()
	s, err := c.NewSession(ctx, WithTTL(600*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	m := s.NewMutex("exercise")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu := s.NewMutex("exercise-" + strconv.Itoa(i))
			if err := mu.TryLock(ctx); err != nil {
				t.Error(err)
				return
			}
			if err := mu.Unlock(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	octx, stop := context.WithCancel(ctx)
	evs := c.Observe(octx, "exercise-election")
	select {
	case <-evs:
	case <-ctx.Done():
		t.Fatal("no observe event")
	}
	stop()
	for range evs {
	}
	// Outlive a renewal or two.
	safe := s.SafeUntil()
	await.True(t, 5*time.Second, "a renewal", func() bool { return s.SafeUntil().After(safe) })
	if _, err := c.LockInfo(ctx, "exercise"); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// Config.AuthToken goes on every request (sessions, keep-alives, locks,
// batches, observe streams), and into no log line.
func TestAuthTokenOnEveryRequestNeverLogged(t *testing.T) {
	const token = "tok-0123456789abcdef"
	srv := testserver.Start(t, testserver.Options{})
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var front *httptest.Server
	proxy.ModifyResponse = func(r *http.Response) error {
		// The proxy is the leader, or the SDK would go around it.
		r.Header.Set(api.HeaderLeader, front.URL)
		return nil
	}
	var (
		mu      sync.Mutex
		paths   = map[string]bool{}
		without []string
	)
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.Method+" "+r.URL.Path] = true
		if r.Header.Get("Authorization") != "Bearer "+token {
			without = append(without, r.Method+" "+r.URL.Path)
		}
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	// A dead first endpoint makes the SDK log failures and retries.
	c, err := New(Config{Endpoints: []string{"http://127.0.0.1:1", front.URL}, AuthToken: token, Logger: logger, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	exerciseClient(t, ctx, c)
	// A batch, for certain: send one directly.
	s, err := c.NewSession(ctx, WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	op := &batchOp{op: api.BatchOp{Op: api.BatchAcquire, Name: "batched", Session: s.ID()}, done: make(chan struct{})}
	c.batch.send([]*batchOp{op})
	<-op.done
	if op.fail || op.res.Grant == nil {
		t.Fatalf("batch: %+v", op)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"POST /v1/sessions", "POST /v1/sessions/keepalive", "POST /v1/locks/exercise/acquire",
		"POST /v1/locks/exercise/release", "GET /v1/elections/exercise-election/observe", "POST /v1/batch", "GET /v1/locks/exercise"} {
		if !paths[p] {
			t.Errorf("no %s was sent (sent: %v)", p, paths)
		}
	}
	if len(without) > 0 {
		t.Errorf("requests without the token: %q", without)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if logs.Len() == 0 {
		t.Error("nothing logged: the test does not test the logs")
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token is in the logs:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The SDK's own HTTP client follows no 3xx: the token never travels to a
// Location.
func TestRedirectNotFollowed(t *testing.T) {
	elsewhere := newAPIFake(t, false, map[string]route{"GET /v1/status": {status: 200, body: statusBody(t)}})
	f := newAPIFake(t, false, map[string]route{"GET /v1/status": {status: http.StatusTemporaryRedirect, header: map[string]string{"Location": elsewhere.URL + "/v1/status"}}})
	c, err := New(Config{Endpoints: []string{f.URL}, AuthToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(testCtx(t)); err == nil {
		t.Fatal("Status succeeded through a redirect")
	}
	if n := elsewhere.hits(); n != 0 {
		t.Fatalf("the redirect was followed: %+v", elsewhere.requests())
	}
}

func TestRateLimitedRetriedAfterRetryAfter(t *testing.T) {
	const limited = `{"error":{"code":"rate_limited","message":"slow down"}}`
	f := newAPIFake(t, false, map[string]route{"GET /v1/status": {status: 429, body: limited, header: map[string]string{"Retry-After": "1"}}})
	c := newClient(t, f.URL)
	ctx := testCtx(t)
	// The second attempt succeeds: switch the route once the first arrived.
	go func() {
		await.Within(10*time.Second, func() bool { return f.hits() > 0 })
		f.set("GET /v1/status", route{status: 200, body: statusBody(t, f.URL)})
	}()
	start := time.Now()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status after a 429: %v", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, before the Retry-After of 1s", d)
	}
	if n := f.hits(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}

	// A Retry-After beyond the deadline ends the call at once.
	f.set("GET /v1/status", route{status: 429, body: limited, header: map[string]string{"Retry-After": "30"}})
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start = time.Now()
	if _, err := c.Status(sctx); !errors.Is(err, api.ErrRateLimited) {
		t.Errorf("Status with Retry-After past the deadline: %v, want api.ErrRateLimited", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("gave up after %v, want at once", d)
	}
}

// 401, 403, 429 quota_exceeded and 507 are definite: one request, the
// sentinel of the code, also without the API's error body.
func TestDefiniteSecurityAnswers(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   error
	}{
		{401, `{"error":{"code":"unauthenticated","message":"no token"}}`, api.ErrUnauthenticated},
		{403, `{"error":{"code":"permission_denied","message":"needs lock on x"}}`, api.ErrPermissionDenied},
		{429, `{"error":{"code":"quota_exceeded","message":"sessions per principal"}}`, api.ErrQuotaExceeded},
		{507, `{"error":{"code":"no_space","message":"state quota"}}`, api.ErrNoSpace},
		{401, `<html>proxy says no</html>`, api.ErrUnauthenticated},
		{403, `forbidden`, api.ErrPermissionDenied},
		{507, ``, api.ErrNoSpace},
	} {
		f := newAPIFake(t, false, map[string]route{"POST /v1/sessions": {status: c.status, body: c.body}})
		cl := newClient(t, f.URL)
		_, err := cl.NewSession(testCtx(t), WithTTL(time.Second))
		if !errors.Is(err, c.want) {
			t.Errorf("%d %s: %v, want %v", c.status, c.body, err, c.want)
		}
		if n := f.hits(); n != 1 {
			t.Errorf("%d %s: %d requests, want 1 (no retry)", c.status, c.body, n)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %v %v, want %v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
