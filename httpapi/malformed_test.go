package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// TestMalformedRequests sends bad requests: each must answer a 4xx JSON
// error with a code and a message, propose nothing and leave the state
// byte-identical.
func TestMalformedRequests(t *testing.T) {
	f, ts := newTestServer(t, nil)
	s := openSession(t, ts, "owner")
	tok := must(t, ts, "POST", "/v1/locks/held/acquire", `{"session":"`+s+`"}`, 200).num("token")

	long := strings.Repeat("n", 257)
	huge := `{"ttl":"10s","owner":"` + strings.Repeat("x", 2<<20) + `"}`
	const (
		inv = api.CodeInvalidArgument
		nf  = api.CodeNotFound
		mna = api.CodeMethodNotAllowed
		big = api.CodeTooLarge
	)
	acq := "/v1/locks/free/acquire"
	rel := "/v1/locks/held/release"
	cases := []struct {
		method, path, body string
		status             int
		code               string
		msg                string // a part of the message
	}{
		// Bodies of POST /v1/sessions.
		{"POST", "/v1/sessions", "", 400, inv, "body is required"},
		{"POST", "/v1/sessions", "   ", 400, inv, "body is required"},
		{"POST", "/v1/sessions", "{", 400, inv, "invalid JSON"},
		{"POST", "/v1/sessions", `{"ttl":"10s"}x`, 400, inv, "trailing"},
		{"POST", "/v1/sessions", `{"ttl":"10s"}{}`, 400, inv, "trailing"},
		{"POST", "/v1/sessions", `{"ttl":"10s","foo":1}`, 400, inv, `unknown field "foo"`},
		{"POST", "/v1/sessions", `{"TTL":"10s","Owner":"x","extra":true}`, 400, inv, "unknown field"},
		{"POST", "/v1/sessions", `{"ttl":10}`, 400, inv, "duration"},
		{"POST", "/v1/sessions", `{"ttl":"10"}`, 400, inv, "invalid duration"},
		{"POST", "/v1/sessions", `{"ttl":"abc"}`, 400, inv, "invalid duration"},
		{"POST", "/v1/sessions", `{"ttl":null}`, 400, inv, "ttl is required"},
		{"POST", "/v1/sessions", `{"ttl":"0s"}`, 400, inv, "ttl is required"},
		{"POST", "/v1/sessions", `{"ttl":"-5s"}`, 400, inv, "between 2s and 1h0m0s"},
		{"POST", "/v1/sessions", `{"ttl":"1s"}`, 400, inv, "between 2s and 1h0m0s"},
		{"POST", "/v1/sessions", `{"ttl":"2h"}`, 400, inv, "between 2s and 1h0m0s"},
		{"POST", "/v1/sessions", `{"ttl":"9999999h"}`, 400, inv, "invalid duration"},
		{"POST", "/v1/sessions", `{"ttl":"10s","owner":5}`, 400, inv, "owner"},
		{"POST", "/v1/sessions", `{"ttl":"10s","owner":"` + long + `"}`, 400, inv, "at most 256"},
		{"POST", "/v1/sessions", `{}`, 400, inv, "ttl is required"},
		{"POST", "/v1/sessions", `null`, 400, inv, "ttl is required"},
		{"POST", "/v1/sessions", `[]`, 400, inv, "must be a JSON object, not an array"},
		{"POST", "/v1/sessions", `"10s"`, 400, inv, "must be a JSON object, not a string"},
		{"POST", "/v1/sessions", huge, 413, big, "exceeds"},
		// Session IDs in paths, and bodies where none is needed.
		{"POST", "/v1/sessions/abc/keepalive", "", 400, inv, "session id"},
		{"POST", "/v1/sessions/0/keepalive", "", 400, inv, "session id"},
		{"POST", "/v1/sessions/-1/keepalive", "", 400, inv, "session id"},
		{"POST", "/v1/sessions/18446744073709551616/keepalive", "", 400, inv, "session id"},
		{"GET", "/v1/sessions/1.5", "", 400, inv, "session id"},
		{"GET", "/v1/sessions/%20" + s, "", 400, inv, "session id"},
		{"DELETE", "/v1/sessions/abc", "", 400, inv, "session id"},
		{"POST", "/v1/sessions/" + s + "/keepalive", `{"x":1}`, 400, inv, "unknown field"},
		{"DELETE", "/v1/sessions/" + s, `garbage`, 400, inv, "invalid JSON"},
		// Acquire bodies.
		{"POST", acq, "", 400, inv, "body is required"},
		{"POST", acq, `{}`, 400, inv, "exactly one of session"},
		{"POST", acq, `{"session":"` + s + `","ttl":"10s"}`, 400, inv, "exactly one of session"},
		{"POST", acq, `{"session":` + s + `}`, 400, inv, "session id must be a JSON string"},
		{"POST", acq, `{"session":"0"}`, 400, inv, "session id"},
		{"POST", acq, `{"session":""}`, 400, inv, "session id"},
		{"POST", acq, `{"session":"abc"}`, 400, inv, "session id"},
		{"POST", acq, `{"session":"` + s + `","wait":"-1s"}`, 400, inv, "between 0s"},
		{"POST", acq, `{"session":"` + s + `","wait":"10m"}`, 400, inv, "and 5m0s"},
		{"POST", acq, `{"session":"` + s + `","wait":5}`, 400, inv, "duration"},
		{"POST", acq, `{"session":"` + s + `","owner":"x"}`, 400, inv, "owner is only"},
		{"POST", acq, `{"session":"` + s + `","sesion":"1"}`, 400, inv, "unknown field"},
		{"POST", acq, `{"ttl":"1ms"}`, 400, inv, "between 2s"},
		{"POST", acq, `{"ttl":"48h"}`, 400, inv, "between 2s"},
		{"POST", acq, `{"ttl":"10s","owner":"` + long + `"}`, 400, inv, "at most 256"},
		{"POST", acq, huge, 413, big, "exceeds"},
		// Lock names.
		{"POST", "/v1/locks/bad%20name/acquire", `{"session":"` + s + `"}`, 400, inv, "only ASCII letters"},
		{"POST", "/v1/locks/bad*name/acquire", `{"session":"` + s + `"}`, 400, inv, "only ASCII letters"},
		{"POST", "/v1/locks/" + long + "/acquire", `{"session":"` + s + `"}`, 400, inv, "at most 256"},
		{"POST", "/v1/locks//acquire", `{"session":"` + s + `"}`, 400, inv, "lock name is empty"},
		{"GET", "/v1/locks/%C3%A9", "", 400, inv, "only ASCII letters"},
		{"GET", "/v1/locks/a%3Fb", "", 400, inv, "only ASCII letters"},
		{"GET", "/v1/locks/", "", 400, inv, "lock name is empty"},
		// Release bodies.
		{"POST", rel, `{"session":"` + s + `","token":0}`, 400, inv, "token"},
		{"POST", rel, `{"session":"` + s + `"}`, 400, inv, "token"},
		{"POST", rel, `{"session":"` + s + `","token":-1}`, 400, inv, "token"},
		{"POST", rel, `{"session":"` + s + `","token":"` + u(tok) + `"}`, 400, inv, "token"},
		{"POST", rel, `{"session":"` + s + `","token":1.5}`, 400, inv, "token"},
		{"POST", rel, `{"token":` + u(tok) + `}`, 400, inv, "session is required"},
		{"POST", rel, `{"session":"` + s + `","token":` + u(tok) + `,"forced":true}`, 400, inv, "unknown field"},
		// Query parameters.
		{"GET", "/v1/locks/held?consistency=strong", "", 400, inv, "consistency"},
		{"GET", "/v1/locks?consistency=", "", 400, inv, "consistency"},
		{"GET", "/v1/sessions/" + s + "?consistency=STALE", "", 400, inv, "consistency"},
		{"GET", "/v1/locks?prefix=bad%20", "", 400, inv, "prefix"},
		// Methods and paths.
		{"PUT", "/v1/sessions", `{"ttl":"10s"}`, 405, mna, "not allowed"},
		{"PUT", "/v1/sessions", "", 405, mna, "not allowed"},
		{"PATCH", "/v1/sessions/" + s, "", 405, mna, "not allowed"},
		{"GET", "/v1/sessions/" + s + "/keepalive", "", 405, mna, "not allowed"},
		{"DELETE", "/v1/locks/held", "", 405, mna, "not allowed"},
		{"POST", "/v1/locks/held", `{"session":"` + s + `"}`, 405, mna, "acquire"},
		{"POST", "/v1/locks/held/frobnicate", `{"session":"` + s + `"}`, 405, mna, "acquire"},
		{"POST", "/v1/status", "", 405, mna, "not allowed"},
		{"GET", "/v1/nope", "", 404, nf, "no such path"},
		{"GET", "/v2/locks/held", "", 404, nf, "no such path"},
		{"GET", "/", "", 404, nf, "no such path"},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	before, n := f.snapshot()
	for _, c := range cases {
		name := c.method + " " + c.path + " " + c.body
		if len(name) > 100 {
			name = name[:100]
		}
		t.Run(name, func(t *testing.T) {
			r := mustErr(t, ts, c.method, c.path, c.body, c.status, c.code)
			if !strings.Contains(r.errMessage(), c.msg) {
				t.Errorf("message %q does not say %q", r.errMessage(), c.msg)
			}
			if keys := len(r.body); keys != 1 {
				t.Errorf("body %s: want only the error object", r.raw)
			}
			after, m := f.snapshot()
			if m != n {
				t.Errorf("%d commands proposed", m-n)
			}
			if !bytes.Equal(after, before) {
				t.Errorf("the state changed")
			}
		})
	}
	// A huge body without Content-Length (chunked) is cut off too.
	req, err := http.NewRequest("POST", ts.URL+"/v1/sessions", io.MultiReader(strings.NewReader(`{"ttl":"10s","owner":"`), strings.NewReader(strings.Repeat("x", 2<<20))))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), `"code":"too_large"`) {
		t.Fatalf("chunked huge body: %d %s", resp.StatusCode, b)
	}
	if after, m := f.snapshot(); m != n || !bytes.Equal(after, before) {
		t.Fatal("a chunked huge body changed the state")
	}
	// The session and the lock are as they were.
	r := must(t, ts, "GET", "/v1/locks/held", "", 200)
	if h := r.body["holder"].(map[string]any); h["session"] != s || uint64(h["token"].(float64)) != tok {
		t.Fatalf("lock after the bad requests: %s", r.raw)
	}
}
