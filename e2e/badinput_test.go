package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// badAnswer is one answer to a malformed request.
type badAnswer struct {
	status int
	ctype  string
	body   []byte
}

// badSend sends a request with the path written exactly as given (bad
// percent-encoding, raw non-ASCII bytes and dot segments included). A nil
// body sends none; chunked forces Transfer-Encoding: chunked.
func badSend(t *testing.T, base, method, path string, body io.Reader, chunked bool, hdr ...string) badAnswer {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	opaque, query, _ := strings.Cut(path, "?")
	u.Path, u.RawPath, u.Opaque, u.RawQuery = "", "", opaque, query
	req, err := http.NewRequest(method, base, body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	if chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %.100s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return badAnswer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}
}

// badSendRaw writes req as it is on a new connection and reads one answer.
func badSendRaw(t *testing.T, base, req string) badAnswer {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw %.60q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return badAnswer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}
}

// jsonError reports whether a is a 4xx {"error":{"code","message"}} answer.
func (a badAnswer) jsonError() bool {
	if a.status < 400 || a.status > 499 || a.ctype != "application/json" {
		return false
	}
	var out map[string]json.RawMessage
	if json.Unmarshal(a.body, &out) != nil || len(out) != 1 {
		return false
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	return json.Unmarshal(a.body, &e) == nil && e.Error.Code != "" && e.Error.Message != ""
}

// badState is what must not change: the lock listing and the applied index.
func badState(t *testing.T, base string) (locks string, applied uint64) {
	t.Helper()
	resp, err := httpc.Get(base + "/v1/locks?prefix=&consistency=stale")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("list locks: %d %s", resp.StatusCode, b)
	}
	r, err := do("GET", base+"/v1/status?consistency=stale", nil)
	if err != nil || r.status != 200 {
		t.Fatalf("status: %v %v", r, err)
	}
	return string(b), num(r.body["applied"])
}

// TestBadInputRealProcess sends some of the worst requests to one real
// raftlockd: each answers 4xx (JSON from the API; a plain-text 4xx from Go's
// HTTP server for request lines it refuses itself), the lock listing and the
// applied index do not change, and the process stays up.
func TestBadInputRealProcess(t *testing.T) {
	c := startCluster(t, 1)
	m := c.leader(c.members[0])
	base := m.clientURL
	sid, _ := c.must("POST", base+"/v1/sessions", map[string]any{"ttl": "1h", "owner": "bad-input"}, 201).body["id"].(string)
	grant := c.must("POST", base+"/v1/locks/held/acquire", map[string]any{"session": sid}, 200)
	tok := num(grant.body["token"])
	c.must("POST", base+"/v1/elections/el/campaign", map[string]any{"session": sid, "value": "v"}, 200)
	locks0, applied0 := badState(t, base)

	twoMiB := strings.Repeat("x", 2<<20)
	hugeJSON := `{"ttl":"10s","owner":"` + twoMiB + `"}`
	S := `"` + sid + `"`
	type row struct {
		name    string
		send    func() badAnswer
		netHTTP bool // may be refused by net/http itself (plain text)
	}
	req := func(method, path, body string, hdr ...string) func() badAnswer {
		return func() badAnswer {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			return badSend(t, base, method, path, rd, false, hdr...)
		}
	}
	rows := []row{
		{"2 MiB body", req("POST", "/v1/sessions", hugeJSON), false},
		{"2 MiB chunked body", func() badAnswer {
			return badSend(t, base, "POST", "/v1/sessions", strings.NewReader(hugeJSON), true)
		}, false},
		{"2 MiB chunked body on acquire", func() badAnswer {
			return badSend(t, base, "POST", "/v1/locks/held/acquire", io.MultiReader(strings.NewReader(`{"session":`+S+`,"x":"`), strings.NewReader(twoMiB)), true)
		}, false},
		{"chunked bad JSON", func() badAnswer {
			return badSend(t, base, "POST", "/v1/locks/held/release", strings.NewReader(`{"session":`+S+`,"token":`), true)
		}, false},
		{"Content-Length over the limit, no body", func() badAnswer {
			return badSendRaw(t, base, "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\nContent-Type: application/json\r\n\r\n")
		}, false},
		{"invalid UTF-8 in a name (percent-encoded)", req("POST", "/v1/locks/%FF%FEx/acquire", `{"session":`+S+`}`), false},
		{"invalid UTF-8 in a name (raw bytes)", req("POST", "/v1/locks/\xff\xfex/acquire", `{"session":`+S+`}`), true},
		{"invalid UTF-8 in an election name", req("POST", "/v1/elections/%C3%28/campaign", `{"session":`+S+`}`), false},
		{"NUL in a name", req("GET", "/v1/locks/a%00b", ""), false},
		{"bad percent-encoding", req("GET", "/v1/locks/%ZZ", ""), true},
		{"path traversal with an encoded NUL", req("POST", "/v1/locks/..%2F..%2Fetc%2Fpasswd%00/acquire", `{"session":`+S+`}`), false},
		{"path traversal out of /v1", req("GET", "/v1/locks/../../../etc/passwd%20", ""), false},
		{"dot segments to another route", req("POST", "/v1/locks/../sessions", `{"ttl":"10s"}`), false},
		{"very long URL (64 KiB name)", req("GET", "/v1/locks/"+strings.Repeat("a", 64<<10), ""), false},
		{"very long URL (2 MiB)", req("GET", "/v1/locks/"+strings.Repeat("a", 2<<20), ""), true},
		{"long query", req("GET", "/v1/locks?prefix="+strings.Repeat("p", 64<<10), ""), false},
		{"unknown field", req("POST", "/v1/sessions", `{"ttl":"10s","admin":true}`), false},
		{"overflowing token", req("POST", "/v1/locks/held/release", `{"session":`+S+`,"token":18446744073709551616}`), false},
		{"token 1e30", req("POST", "/v1/locks/held/release", `{"session":`+S+`,"token":1e30}`), false},
		{"huge TTL", req("POST", "/v1/sessions", `{"ttl":"2562047h47m16.854775807s"}`), false},
		{"negative wait", req("POST", "/v1/locks/held/acquire", `{"session":`+S+`,"wait":"-1s"}`), false},
		{"value over 4096 bytes", req("POST", "/v1/elections/el/campaign", `{"session":`+S+`,"value":"`+strings.Repeat("v", 4097)+`"}`), false},
		{"proclaim with term 0", req("POST", "/v1/elections/el/proclaim", `{"session":`+S+`,"term":0,"value":"x"}`), false},
		{"bad Last-Event-ID", req("GET", "/v1/watch", "", "Last-Event-ID", "\xff\xfe"), false},
		{"bad consistency", req("GET", "/v1/locks/held?consistency=%FF", ""), false},
		{"wrong method", req("DELETE", "/v1/locks/held", ""), false},
	}
	for _, r := range rows {
		a := r.send()
		switch {
		case a.jsonError():
		case r.netHTTP && a.status >= 400 && a.status <= 499:
			t.Logf("%s: refused by net/http: %d %q", r.name, a.status, clipBytes(a.body))
		default:
			t.Errorf("%s: %d %s %q, want a 4xx JSON error", r.name, a.status, a.ctype, clipBytes(a.body))
		}
		if locks, applied := badState(t, base); applied != applied0 || locks != locks0 {
			t.Errorf("%s: state changed: applied %d → %d, locks %s → %s", r.name, applied0, applied, locks0, locks)
			locks0, applied0 = locks, applied
		}
		select {
		case <-m.exited:
			t.Fatalf("%s: raftlockd exited", r.name)
		default:
		}
	}
	t.Logf("%d bad requests, applied index stayed at %d", len(rows), applied0)
	if r, err := do("GET", base+"/healthz", nil); err != nil || r.status != 200 {
		t.Fatalf("healthz after the bad input: %v %v", r, err)
	}
	// The node still works: the holder is unchanged and can release.
	c.must("POST", base+"/v1/locks/held/release", map[string]any{"session": sid, "token": tok}, 200)
}

func clipBytes(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%s… (%d bytes)", b[:200], len(b))
	}
	return string(b)
}
