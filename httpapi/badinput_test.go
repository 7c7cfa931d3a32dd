package httpapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// badRow is one malformed request of TestBadInput.
type badRow struct {
	method, path, body string
	hdr                []string // header key, value pairs
	status             int
	code               string
	// logged marks a business refusal that goes through the log (the
	// command is proposed and applied, and refused by the state machine):
	// the proposal count may grow and the applied index with it, but
	// nothing else in the state may change. Every other row must propose
	// nothing and leave the snapshot byte-identical.
	logged bool
	// rawBad marks a path with invalid percent-encoding: Go's net/http
	// server refuses its request line itself with a plain-text "400 Bad
	// Request" before any handler runs, so only the status and the
	// unchanged state are checked.
	rawBad bool
}

// withoutApplied returns a lock.Machine snapshot without its applied index
// (the version byte and the uvarint after it), which every applied command
// advances, refused or not. The fake's clock never moves, so the clock that
// follows is unchanged by a refused command.
func withoutApplied(t *testing.T, snap []byte) []byte {
	t.Helper()
	if len(snap) < 2 {
		t.Fatalf("snapshot of %d bytes", len(snap))
	}
	_, n := binary.Uvarint(snap[1:])
	if n <= 0 {
		t.Fatal("snapshot: bad applied index")
	}
	return snap[1+n:]
}

// doRaw is do with the path sent exactly as written, bad percent-encoding
// included (http.NewRequest refuses to parse "%ZZ").
func doRaw(t *testing.T, ts *httptest.Server, lenient bool, method, path, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	opaque, query, _ := strings.Cut(path, "?")
	req.URL.Path, req.URL.RawPath, req.URL.Opaque, req.URL.RawQuery = "", "", opaque, query
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if err := json.Unmarshal(b, &r.body); err != nil && !lenient {
		t.Errorf("%s %s: %d with a body that is not a JSON object: %.200q", method, path, resp.StatusCode, b)
	}
	return r
}

// TestBadInput sends malformed requests to the election, watch, lock and
// session endpoints, in addition to TestMalformedRequests: each must answer
// 4xx with a JSON body that holds only {"error":{"code","message"}} and a
// non-empty message, never 5xx, and leave the state as it was.
func TestBadInput(t *testing.T) {
	f, ts := newTestServer(t, nil)
	a := openSession(t, ts, "a")
	b := openSession(t, ts, "b")
	tok := must(t, ts, "POST", "/v1/locks/held/acquire", `{"session":"`+a+`"}`, 200).num("token")
	term := must(t, ts, "POST", "/v1/elections/el/campaign", `{"session":"`+a+`","value":"v1"}`, 200).num("term")
	// b waits in el's queue, so that a resign or proclaim by it is a
	// refusal, not a no-op on a free election.
	mustErr(t, ts, "POST", "/v1/elections/el/campaign", `{"session":"`+b+`","value":"v2"}`, 409, api.CodeNotLeader)

	const (
		inv = api.CodeInvalidArgument
		snf = api.CodeSessionNotFound
		nf  = api.CodeNotFound
		mna = api.CodeMethodNotAllowed
		big = api.CodeTooLarge
		nh  = api.CodeNotHolder
		nl  = api.CodeNotLeader
	)
	A, B, T, K := `"`+a+`"`, `"`+b+`"`, u(term), u(tok)
	long := strings.Repeat("n", 257)
	value4097 := strings.Repeat("v", api.MaxValueSize+1)
	huge := `{"session":` + A + `,"value":"` + strings.Repeat("x", 1<<20) + `"}`
	justOver := `{"session":` + A + `,"value":"` + strings.Repeat("x", 1<<20-len(`{"session":`+A+`,"value":""}`)+1) + `"}`
	camp := "/v1/elections/ecamp/campaign"
	procl := "/v1/elections/el/proclaim"
	resign := "/v1/elections/el/resign"
	obs := "/v1/elections/el/observe"
	acq := "/v1/locks/free/acquire"
	rel := "/v1/locks/held/release"
	lei := api.HeaderLastEventID

	rows := []badRow{
		// Campaign bodies.
		{method: "POST", path: camp, body: "", status: 400, code: inv},
		{method: "POST", path: camp, body: "{", status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `}x`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `}{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"foo":1}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + a + `}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":"0"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":"-1"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":"18446744073709551616"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":"1e3"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":true}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"value":5}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"value":["x"]}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"value":"` + value4097 + `"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"wait":"-1s"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"wait":"5m0.000000001s"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"wait":"9999999h"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"wait":"1e30s"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"wait":30}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"wait":"abc"}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `{"session":` + A + `,"term":5}`, status: 400, code: inv},
		{method: "POST", path: camp, body: `[]`, status: 400, code: inv},
		{method: "POST", path: camp, body: `null`, status: 400, code: inv},
		{method: "POST", path: camp, body: `"x"`, status: 400, code: inv},
		{method: "POST", path: camp, body: huge, status: 413, code: big},
		{method: "POST", path: camp, body: justOver, status: 413, code: big},
		{method: "POST", path: camp, body: `{"session":"999999"}`, status: 404, code: snf, logged: true},
		// Election names.
		{method: "POST", path: "/v1/elections//campaign", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/bad%20name/campaign", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/bad*name/campaign", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/" + long + "/campaign", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/%ZZ/campaign", body: `{"session":` + A + `}`, status: 400, code: inv, rawBad: true},
		{method: "POST", path: "/v1/elections/a%/campaign", body: `{"session":` + A + `}`, status: 400, code: inv, rawBad: true},
		{method: "POST", path: "/v1/elections/%C3%A9/campaign", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/a%00b/campaign", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/a%0Ab/proclaim", body: `{"session":` + A + `,"term":` + T + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/elections/a%3Fb/resign", body: `{"session":` + A + `,"term":` + T + `}`, status: 400, code: inv},
		// Election methods and actions.
		{method: "POST", path: "/v1/elections/el/frobnicate", body: `{}`, status: 405, code: mna},
		{method: "POST", path: "/v1/elections/el", body: `{}`, status: 405, code: mna},
		{method: "PUT", path: "/v1/elections/el/campaign", body: `{"session":` + A + `}`, status: 405, code: mna},
		{method: "DELETE", path: "/v1/elections/el", status: 405, code: mna},
		{method: "PATCH", path: "/v1/elections", status: 405, code: mna},
		{method: "POST", path: "/v1/elections", body: `{}`, status: 405, code: mna},
		{method: "POST", path: obs, body: `{}`, status: 405, code: mna},
		{method: "DELETE", path: obs, status: 405, code: mna},
		// Proclaim.
		{method: "POST", path: procl, body: "", status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":0,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":-1,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":1e30,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":18446744073709551616,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":"` + T + `","value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":1.5,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":` + T + `,"value":"` + value4097 + `"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"term":` + T + `,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":` + T + `,"value":"x","wait":"1s"}`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":` + T + `}x`, status: 400, code: inv},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":` + T + `,"value":{}}`, status: 400, code: inv},
		{method: "POST", path: procl, body: huge, status: 413, code: big},
		{method: "POST", path: procl, body: `{"session":` + B + `,"term":` + T + `,"value":"x"}`, status: 409, code: nl, logged: true},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":` + u(term+1) + `,"value":"x"}`, status: 409, code: nl, logged: true},
		{method: "POST", path: procl, body: `{"session":` + A + `,"term":18446744073709551615,"value":"x"}`, status: 409, code: nl, logged: true},
		{method: "POST", path: "/v1/elections/other/proclaim", body: `{"session":` + A + `,"term":` + T + `,"value":"x"}`, status: 409, code: nl, logged: true},
		// Resign.
		{method: "POST", path: resign, body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":0}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":-5}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":1e30}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":18446744073709551616}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":` + T + `,"value":"x"}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":` + T + `,"extra":{}}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `{}`, status: 400, code: inv},
		{method: "POST", path: resign, body: `true`, status: 400, code: inv},
		{method: "POST", path: resign, body: huge, status: 413, code: big},
		{method: "POST", path: resign, body: `{"session":` + B + `,"term":` + T + `}`, status: 409, code: nl, logged: true},
		{method: "POST", path: resign, body: `{"session":` + A + `,"term":` + u(term-1) + `}`, status: 409, code: nl, logged: true},
		{method: "POST", path: resign, body: `{"session":"999999","term":` + T + `}`, status: 409, code: nl, logged: true},
		// Reading elections.
		{method: "GET", path: "/v1/elections/bad%20name", status: 400, code: inv},
		{method: "GET", path: "/v1/elections/%ZZ", status: 400, code: inv, rawBad: true},
		{method: "GET", path: "/v1/elections/" + long, status: 400, code: inv},
		{method: "GET", path: "/v1/elections/", status: 400, code: inv},
		{method: "GET", path: "/v1/elections/el?consistency=strong", status: 400, code: inv},
		{method: "GET", path: "/v1/elections/el?consistency=stale&consistency=stale", status: 400, code: inv},
		{method: "GET", path: "/v1/elections?prefix=bad%20", status: 400, code: inv},
		{method: "GET", path: "/v1/elections?prefix=" + long, status: 400, code: inv},
		{method: "GET", path: "/v1/elections?consistency=x", status: 400, code: inv},
		// Observe: refused before the stream starts.
		{method: "GET", path: obs, hdr: []string{lei, "abc"}, status: 400, code: inv},
		{method: "GET", path: obs, hdr: []string{lei, "-1"}, status: 400, code: inv},
		{method: "GET", path: obs, hdr: []string{lei, "18446744073709551616"}, status: 400, code: inv},
		{method: "GET", path: obs, hdr: []string{lei, "1.5"}, status: 400, code: inv},
		{method: "GET", path: obs, hdr: []string{lei, "1e3"}, status: 400, code: inv},
		{method: "GET", path: obs + "?after=x", status: 400, code: inv},
		{method: "GET", path: obs + "?consistency=strong", status: 400, code: inv},
		{method: "GET", path: "/v1/elections/bad%20/observe", status: 400, code: inv},
		{method: "GET", path: "/v1/elections/%ZZ/observe", status: 400, code: inv, rawBad: true},
		// Watch: refused before the stream starts.
		{method: "GET", path: "/v1/watch?prefix=bad%20", status: 400, code: inv},
		{method: "GET", path: "/v1/watch?prefix=" + long, status: 400, code: inv},
		{method: "GET", path: "/v1/watch?prefix=%C3%A9", status: 400, code: inv},
		{method: "GET", path: "/v1/watch?consistency=strong", status: 400, code: inv},
		{method: "GET", path: "/v1/watch", hdr: []string{lei, "abc"}, status: 400, code: inv},
		{method: "GET", path: "/v1/watch", hdr: []string{lei, "5x"}, status: 400, code: inv},
		{method: "GET", path: "/v1/watch", hdr: []string{lei, "99999999999999999999999"}, status: 400, code: inv},
		{method: "GET", path: "/v1/watch?after=-3", status: 400, code: inv},
		{method: "GET", path: "/v1/watch?after=1e3", status: 400, code: inv},
		{method: "POST", path: "/v1/watch", body: `{}`, status: 405, code: mna},
		{method: "DELETE", path: "/v1/watch", status: 405, code: mna},
		// Release: overflowing and foreign tokens.
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":1e30}`, status: 400, code: inv},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":18446744073709551616}`, status: 400, code: inv},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":-` + K + `}`, status: 400, code: inv},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":null}`, status: 400, code: inv},
		{method: "POST", path: rel, body: `{"session":null,"token":` + K + `}`, status: 400, code: inv},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":` + K + `,"token":"x"}`, status: 400, code: inv},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":true}`, status: 400, code: inv},
		{method: "POST", path: rel, body: huge, status: 413, code: big},
		{method: "POST", path: rel, body: `{"session":` + B + `,"token":` + K + `}`, status: 409, code: nh, logged: true},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":` + u(tok+1) + `}`, status: 409, code: nh, logged: true},
		{method: "POST", path: rel, body: `{"session":` + A + `,"token":18446744073709551615}`, status: 409, code: nh, logged: true},
		{method: "POST", path: "/v1/locks/free/release", body: `{"session":` + A + `,"token":` + K + `}`, status: 409, code: nh, logged: true},
		// Acquire: TTLs and waits.
		{method: "POST", path: acq, body: `{"session":` + A + `,"wait":"1e30s"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"session":` + A + `,"wait":"18446744073709551616ns"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"session":` + A + `,"wait":"5m0.000000001s"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"ttl":"0s"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"ttl":"-10s"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"ttl":"2562047h"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"ttl":"1h0m0.000000001s"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"ttl":"10s","wait":"-1ns"}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"ttl":10}`, status: 400, code: inv},
		{method: "POST", path: acq, body: `{"session":"999999"}`, status: 404, code: snf, logged: true},
		// Lock names with bad percent-encoding or bytes.
		{method: "POST", path: "/v1/locks/%ZZ/acquire", body: `{"session":` + A + `}`, status: 400, code: inv, rawBad: true},
		{method: "POST", path: "/v1/locks/a%/acquire", body: `{"session":` + A + `}`, status: 400, code: inv, rawBad: true},
		{method: "POST", path: "/v1/locks/a%00/acquire", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/locks/a%FFb/release", body: `{"session":` + A + `,"token":` + K + `}`, status: 400, code: inv},
		{method: "POST", path: "/v1/locks/" + strings.Repeat("a%2F", 129) + "/acquire", body: `{"session":` + A + `}`, status: 400, code: inv},
		{method: "GET", path: "/v1/locks/%ZZ", status: 400, code: inv, rawBad: true},
		{method: "GET", path: "/v1/locks?prefix=" + long, status: 400, code: inv},
		{method: "GET", path: "/v1/locks?prefix=%C3%A9", status: 400, code: inv},
		{method: "GET", path: "/v1/locks?consistency=stale&consistency=stale", status: 400, code: inv},
		// Sessions.
		{method: "POST", path: "/v1/sessions", body: `{"ttl":"10s","owner":"x","ttl":"bad"}`, status: 400, code: inv},
		{method: "POST", path: "/v1/sessions", body: `{"ttl":"1e30s"}`, status: 400, code: inv},
		{method: "POST", path: "/v1/sessions", body: `{"ttl":"-9223372036854775808ns"}`, status: 400, code: inv},
		{method: "POST", path: "/v1/sessions", body: `{"ttl":"9223372036854775807ns"}`, status: 400, code: inv},
		{method: "POST", path: "/v1/sessions", body: `{"ttl":"10s","owner":null,"x":1}`, status: 400, code: inv},
		{method: "POST", path: "/v1/sessions/" + a + "/keepalive", body: `[]`, status: 400, code: inv},
		{method: "DELETE", path: "/v1/sessions/18446744073709551616", status: 400, code: inv},
		{method: "GET", path: "/v1/sessions/" + a + "?consistency=linearizable", status: 400, code: inv},
		{method: "GET", path: "/v1/sessions/999999", status: 404, code: snf},
		{method: "POST", path: "/v1/sessions/999999/keepalive", status: 404, code: snf, logged: true},
		{method: "DELETE", path: "/v1/sessions/999999", status: 404, code: snf, logged: true},
		// Other methods and paths.
		{method: "PUT", path: "/v1/locks/held/acquire", body: `{"session":` + A + `}`, status: 405, code: mna},
		{method: "DELETE", path: "/v1/locks", status: 405, code: mna},
		{method: "POST", path: "/v1/locks", body: `{}`, status: 405, code: mna},
		{method: "GET", path: "/v1/status?consistency=bogus", status: 400, code: inv},
		{method: "POST", path: "/healthz", status: 405, code: mna},
		{method: "GET", path: "/v1/elections-x", status: 404, code: nf},
		{method: "GET", path: "/v1/../v1/status/x", status: 404, code: nf},
	}
	if len(rows) < 100 {
		t.Fatalf("only %d rows", len(rows))
	}
	var plain, logged, rawBad int
	for _, r := range rows {
		switch {
		case r.logged:
			logged++
		case r.rawBad:
			rawBad++
		default:
			plain++
		}
	}
	t.Logf("%d rows: %d refused before the log with a JSON error (no proposal, snapshot byte-identical), %d business refusals through the log (snapshot identical but for the applied index), %d bad percent-encodings refused by net/http with a plain-text 400 (no proposal, snapshot byte-identical)",
		len(rows), plain, logged, rawBad)

	snap0, n0 := f.snapshot()
	checkBadRows(t, f, ts, rows)
	snap1, n1 := f.snapshot()
	if !bytes.Equal(withoutApplied(t, snap1), withoutApplied(t, snap0)) {
		t.Error("the state changed over the table")
	}
	if n1-n0 > logged {
		t.Errorf("%d commands proposed for %d logged rows", n1-n0, logged)
	}
	// The lock and the election are as they were.
	if r := must(t, ts, "GET", "/v1/locks/held", "", 200); r.body["holder"].(map[string]any)["session"] != a {
		t.Fatalf("lock after the table: %s", r.raw)
	}
	if r := must(t, ts, "GET", "/v1/elections/el", "", 200); r.body["leader"].(map[string]any)["value"] != "v1" {
		t.Fatalf("election after the table: %s", r.raw)
	}
}

// checkBadRows sends each row's request and checks its answer: a 4xx JSON
// error with the row's status and code and a message (a plain 400 for a
// rawBad row), nothing proposed and the state byte-identical (for a logged
// row: identical but for the applied index).
func checkBadRows(t *testing.T, f *fakeNode, ts *httptest.Server, rows []badRow) {
	t.Helper()
	for i, c := range rows {
		name := c.method + " " + c.path + " " + c.body
		if len(name) > 80 {
			name = name[:80]
		}
		before, n := f.snapshot()
		r := doRaw(t, ts, c.rawBad, c.method, c.path, c.body, c.hdr...)
		switch {
		case c.rawBad:
			if r.status != 400 {
				t.Errorf("row %d %s: %d %.300s, want 400", i, name, r.status, r.raw)
			}
		case r.status >= 500 || r.status != c.status || r.errCode() != c.code || r.errMessage() == "" || len(r.body) != 1:
			t.Errorf("row %d %s %v: %d %.300s, want %d with code %q and a message", i, name, c.hdr, r.status, r.raw, c.status, c.code)
		case r.header.Get("Content-Type") != "application/json":
			t.Errorf("row %d %s: Content-Type %q", i, name, r.header.Get("Content-Type"))
		}
		after, m := f.snapshot()
		if c.logged {
			if !bytes.Equal(withoutApplied(t, after), withoutApplied(t, before)) {
				t.Errorf("row %d %s: a refusal through the log changed the state", i, name)
			}
		} else {
			if m != n {
				t.Errorf("row %d %s: %d commands proposed", i, name, m-n)
			}
			if !bytes.Equal(after, before) {
				t.Errorf("row %d %s: the state changed", i, name)
			}
		}
	}
}
