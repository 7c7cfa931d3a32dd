package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
)

// TestStrictJSONRefusals: what the strict decoder refuses (issue 11: keys
// in another case, repeated keys, leading zeros in numbers and in the
// numbers the API writes as strings, invalid UTF-8) is a 400
// invalid_argument whose message names the field by its path, on the
// library path and on the batch's fast path alike, and nothing is
// proposed.
func TestStrictJSONRefusals(t *testing.T) {
	f, ts := newTestServer(t, nil)
	id := openSession(t, ts, "w")
	before := len(f.proposals())
	for _, c := range []struct {
		method, path, body string
		want               []string // in the message
	}{
		{"POST", "/v1/locks/a/acquire", `{"Session":"` + id + `"}`, []string{`unknown field "Session"`, `did you mean "session"`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"` + id + `","SESSION":"` + id + `"}`, []string{`unknown field "SESSION"`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"` + id + `","session":"` + id + `"}`, []string{`field "session" appears more than once`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"046033"}`, []string{`session: session id "046033" has a leading zero`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"0` + id + `"}`, []string{`session: session id "0` + id + `" has a leading zero`}},
		{"POST", "/v1/locks/a/release", `{"session":"` + id + `","token":046033}`, []string{`token: a number has no leading zeros`}},
		{"POST", "/v1/locks/a/release", `{"session":"` + id + `","token":00}`, []string{`token: a number has no leading zeros`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"` + id + `","wait":"010s"}`, []string{`wait: invalid duration "010s": a number has a leading zero`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"` + id + `","wait":"+1s"}`, []string{`wait: invalid duration "+1s"`, "'+'"}},
		{"POST", "/v1/locks/a/acquire", `{"session":"` + id + `","wait":".5s"}`, []string{`wait: invalid duration ".5s"`}},
		{"POST", "/v1/locks/a/acquire", `{"session":"` + id + `","wait":"1.s"}`, []string{`wait: invalid duration "1.s"`}},
		{"POST", "/v1/sessions", `{"ttl":"1m05s"}`, []string{`ttl: invalid duration "1m05s": a number has a leading zero`}},
		{"POST", "/v1/sessions", "{\"ttl\":\"10s\",\"owner\":\"a\xffb\"}", []string{`owner: the string is not valid UTF-8`}},
		{"POST", "/v1/sessions", "{\"ttl\":\"10s\",\"owner\":\"\xc3\"}", []string{`owner: the string is not valid UTF-8`}},
		{"POST", "/v1/sessions", `{"ttl":"10s","owner":"a\udc00b"}`, []string{`owner: the string is not valid UTF-8`}},
		{"POST", "/v1/sessions", "{\"ttl\":\"10s\",\"ow\xffner\":\"a\"}", []string{`a field name is not valid UTF-8`}},
		{"POST", "/v1/sessions/keepalive", `{"ids":["` + id + `","012"]}`, []string{`ids[1]: session id "012" has a leading zero`}},
		{"POST", "/v1/batch", `{"ops":[{"op":"acquire","name":"a","session":"0` + id + `"}]}`, []string{`ops[0].session: session id "0` + id + `" has a leading zero`}},
		{"POST", "/v1/batch", `{"ops":[{"op":"release","name":"a","session":"` + id + `","token":01}]}`, []string{`ops[0].token: a number has no leading zeros`}},
		{"POST", "/v1/batch", `{"ops":[{"op":"acquire","name":"a","Session":"` + id + `"}]}`, []string{`ops[0]: unknown field "Session"`, `did you mean "session"`}},
		{"POST", "/v1/batch", `{"ops":[{"op":"acquire","name":"a","name":"b","session":"` + id + `"}]}`, []string{`field "ops[0].name" appears more than once`}},
		{"POST", "/v1/batch", "{\"ops\":[{\"op\":\"acquire\",\"name\":\"a\xff\",\"session\":\"" + id + "\"}]}", []string{`ops[0].name: the string is not valid UTF-8`}},
		{"POST", "/v1/elections/e/campaign", "{\"session\":\"" + id + "\",\"value\":\"\xed\xa0\x80\"}", []string{`value: the string is not valid UTF-8`}},
		{"POST", "/v1/elections/e/proclaim", `{"session":"` + id + `","term":07,"value":"v"}`, []string{`term: a number has no leading zeros`}},
		// Paths and queries hold decimal numbers too.
		{"POST", "/v1/sessions/0" + id + "/keepalive", "", []string{`session id "0` + id + `" has a leading zero`}},
		{"DELETE", "/v1/sessions/0" + id, "", []string{`has a leading zero`}},
		{"GET", "/v1/sessions/00" + id, "", []string{`has a leading zero`}},
		{"GET", "/v1/locks?limit=010", "", []string{`limit="010"`}},
		{"GET", "/v1/locks?limit=%2B5", "", []string{`limit="+5"`}},
		{"GET", "/v1/locks?limit=10001", "", []string{`limit 10001 is out of bounds`}},
		{"GET", "/v1/watch?after=007", "", []string{`after "007" is not a revision`}},
	} {
		// Bounded: a watch that is not refused would stream forever.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := doCtx(ctx, t, ts, c.method, c.path, c.body)
		cancel()
		if r.status != 400 || r.errCode() != api.CodeInvalidArgument {
			t.Errorf("%s %s %q: %d %s, want 400 invalid_argument", c.method, c.path, c.body, r.status, r.raw)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.errMessage(), w) {
				t.Errorf("%s %s %q: message %q does not say %q", c.method, c.path, c.body, r.errMessage(), w)
			}
		}
	}
	if n := len(f.proposals()); n != before {
		t.Errorf("%d commands proposed by refused requests", n-before)
	}
}

// TestStrictJSONAccepts: what is valid JSON in the API's form still works:
// escapes that spell the same characters, durations as Go prints them.
func TestStrictJSONAccepts(t *testing.T) {
	_, ts := newTestServer(t, nil)
	id := openSession(t, ts, "w")
	for _, c := range []struct{ path, body string }{
		{"/v1/sessions", `{"ttl":"1m0.5s","owner":"caf\u00e9 \ud83d\ude00"}`},
		{"/v1/sessions", `{"ttl":"10s","owner":"café"}`},
		{"/v1/sessions", `{"ttl":"0.5h"}`},
		{"/v1/sessions", `{"ttl":"1h0m0s"}`},
		{"/v1/sessions", ` {"ttl" : "10s"} `},
		{"/v1/locks/a/acquire", `{"session":"` + id + `","wait":"1.05s"}`},
		{"/v1/locks/b/acquire", `{"session":"\u00` + hexDigit(id[0]) + id[1:] + `"}`},
		{"/v1/locks/c/acquire", `{"session":"` + id + `","wait":"0s"}`},
	} {
		if r := do(t, ts, "POST", c.path, c.body); r.status >= 300 {
			t.Errorf("POST %s %s: %d %s", c.path, c.body, r.status, r.raw)
		}
	}
	// A negative wait decodes and is refused by the bounds, which say so.
	if r := do(t, ts, "POST", "/v1/locks/d/acquire", `{"session":"`+id+`","wait":"-1s"}`); r.status != 400 || !strings.Contains(r.errMessage(), "out of bounds") {
		t.Errorf("wait -1s: %d %s", r.status, r.raw)
	}
}

// hexDigit returns the two hex digits of an ASCII byte.
func hexDigit(c byte) string {
	const hex = "0123456789abcdef"
	return string([]byte{hex[c>>4], hex[c&15]})
}

// TestCheckDurationNumbers: the spellings of numbers in a duration.
func TestCheckDurationNumbers(t *testing.T) {
	for _, s := range []string{"0s", "10s", "1.5s", "0.5s", "1h2m3.04s", "-1s", "100ms", "1us", "1µs", "2h45m", "0.000001s"} {
		if err := checkDurationNumbers(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"01s", "00s", "1m05s", "+1s", "-+1s", ".5s", "1.s", "1h.5m", "-01s", "1m0.s"} {
		if err := checkDurationNumbers(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
