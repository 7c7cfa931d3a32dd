package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// TestGuardRefusesCrossSiteWrites: a browser's cross-site write (issue 11:
// a POST with Content-Type text/plain and a foreign Origin was served) is
// a 403 that names the origin, and changes nothing; curl's requests, which
// carry neither Origin nor Sec-Fetch-Site, and same-origin ones pass.
func TestGuardRefusesCrossSiteWrites(t *testing.T) {
	f, ts := newTestServer(t, nil)
	before := len(f.proposals())
	for _, hdr := range [][]string{
		{"Content-Type", "text/plain", "Origin", "https://evil.example"},
		{"Origin", "https://evil.example"},
		{"Origin", "null"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site", "Origin", "https://other.localhost"},
		{"Sec-Fetch-Site", "cross-site", "Origin", ts.URL}, // Sec-Fetch-Site decides
	} {
		r := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, hdr...)
		if r.status != 403 || r.errCode() != api.CodePermissionDenied || !strings.Contains(r.errMessage(), "cross-site request refused") {
			t.Errorf("POST with %q: %d %s, want 403 permission_denied", hdr, r.status, r.raw)
		}
		if o := hdrValue(hdr, "Origin"); o != "" && !strings.Contains(r.errMessage(), o) {
			t.Errorf("POST with %q: message %q does not name the origin", hdr, r.errMessage())
		}
	}
	if n := len(f.proposals()); n != before {
		t.Fatalf("%d commands proposed by refused requests", n-before)
	}
	for _, hdr := range [][]string{
		nil, // curl -d
		{"Content-Type", "application/json"},
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Site", "none"}, // typed in the address bar, a bookmark
		{"Origin", ts.URL},         // same origin, a browser without Sec-Fetch-Site
	} {
		must(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, 201)
		if r := do(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, hdr...); r.status != 201 {
			t.Errorf("POST with %q: %d %s, want 201", hdr, r.status, r.raw)
		}
	}
	// Safe methods are not refused: the browser keeps the answer from the
	// other site's page anyway (no CORS headers).
	if r := do(t, ts, "GET", "/v1/locks", "", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); r.status != 200 {
		t.Errorf("cross-site GET: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "GET", "/v1/locks", "", "Access-Control-Request-Method", "POST", "Origin", "https://evil.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an answer allows cross-origin reads: %v", r.header)
	}
}

func hdrValue(hdr []string, key string) string {
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == key {
			return hdr[i+1]
		}
	}
	return ""
}

// TestGuardChecksHost: Host names this node (DNS rebinding, issue 11):
// loopback names, IP literals, the cluster's advertised client URLs and
// Config.AllowedHosts pass; any other name is a 403 that names it.
func TestGuardChecksHost(t *testing.T) {
	f, ts := newTestServer(t, func(c *Config) {
		c.AllowedHosts = []string{"raft.example.com", "*.svc.cluster.local", "Upper.Example."}
	})
	before := len(f.proposals())
	for _, host := range []string{"evil.example", "evil.example:80", "localhost.evil.example", "svc.cluster.local", "example.com", "raft.example.com.evil", "127.0.0.1.nip.io"} {
		r := doHost(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, host)
		if r.status != 403 || r.errCode() != api.CodePermissionDenied || !strings.Contains(r.errMessage(), `Host "`+host+`"`) {
			t.Errorf("Host %q: %d %s, want 403 naming the host", host, r.status, r.raw)
		}
		if r := doHost(t, ts, "GET", "/v1/status", "", host); r.status != 403 {
			t.Errorf("GET with Host %q: %d", host, r.status)
		}
	}
	if n := len(f.proposals()); n != before {
		t.Fatalf("%d commands proposed by refused requests", n-before)
	}
	for _, host := range []string{
		"localhost", "localhost:7070", "LOCALHOST.", "node1.localhost:7070",
		"127.0.0.1", "127.0.0.1:7070", "10.1.2.3:7070", "[::1]:7070", "[::1]", "[fe80::1%25eth0]:7070",
		"raft.example.com", "RAFT.example.com:7070", "raft.example.com.", "a.svc.cluster.local", "b.a.svc.cluster.local:1", "upper.example",
		"leader.example:7070", // the fake cluster's advertised client URL
	} {
		if r := doHost(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, host); r.status != 201 {
			t.Errorf("Host %q: %d %s, want 201", host, r.status, r.raw)
		}
	}
	// Probes are not checked.
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := doHost(t, ts, "GET", p, "", "evil.example"); r.status != 200 {
			t.Errorf("GET %s with a foreign Host: %d", p, r.status)
		}
	}
}

// TestGuardAllowsAnyHostWithStar: AllowedHosts "*" turns the Host check
// off (behind a proxy that checks names itself).
func TestGuardAllowsAnyHostWithStar(t *testing.T) {
	_, ts := newTestServer(t, func(c *Config) { c.AllowedHosts = []string{"*"} })
	if r := doHost(t, ts, "POST", "/v1/sessions", `{"ttl":"10s"}`, "anything.example"); r.status != 201 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// doHost sends a request with the Host header host.
func doHost(t *testing.T, ts *httptest.Server, method, path, body, host string) reply {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("%s %s (Host %q): %d with a body that is not a JSON object: %q", method, path, host, resp.StatusCode, b)
	}
	return r
}
