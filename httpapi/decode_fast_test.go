package httpapi

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// fastBodies are bodies near the compact forms decodeFast takes: the
// forms themselves and what differs from them in one way.
func fastBodies() []string {
	bodies := []string{
		`{"session":"42","wait":"5m0s"}`, `{"session":"42"}`, `{"session":"1","wait":"0s"}`,
		`{"session":"18446744073709551615","wait":"300s"}`, `{"session":"42","wait":"1h2m3.5s"}`,
		`{"session":"42","token":17}`, `{"session":"42","token":0}`, `{"session":"42","token":18446744073709551615}`,
		`{"session":"0042","wait":"1s"}`, `{"session":"0042","token":7}`,
		// Not in the compact form, or not valid: the strict decoder decides.
		`{"session":"42","token":017}`, `{"session":"42","token":18446744073709551616}`, `{"session":"42","token":-1}`,
		`{"session":"42","token":1.5}`, `{"session":"42","token":1e3}`, `{"session":"42","token":"17"}`,
		`{"session":"0"}`, `{"session":""}`, `{"session":"-1"}`, `{"session":"+1"}`, `{"session":"1e3"}`,
		`{"session":"18446744073709551616"}`, `{"session":"4\u0032"}`, `{"session":"4\\u0032"}`,
		`{"session":"42","wait":""}`, `{"session":"42","wait":"5"}`, `{"session":"42","wait":"-1s"}`,
		`{"session":"42","wait":"5µs"}`, `{"session":"42","wait":"5\u00b5s"}`, `{"session":"42","wait":"1\\u0073"}`,
		`{"session":"42","wait":"9999999999h"}`, `{"session":"42","wait":5}`, `{"session":"42","wait":"1s"`,
		`{"session":"42"} `, ` {"session":"42"}`, `{"session": "42"}`, `{"Session":"42"}`, `{"SESSION":"42"}`,
		`{"session":"42","session":"43"}`, `{"session":"42","wait":"1s","wait":"2s"}`, `{"session":"42","token":1,"token":2}`,
		`{"session":"42","ttl":"10s"}`, `{"session":"42","owner":"x"}`, `{"session":"42","x":1}`,
		`{"session":"42"}x`, `{"session":"42"}}`, `{"session":"42",}`, `{"session":"42","token":}`, `{"session":42}`,
		`{"wait":"1s","session":"42"}`, `{"token":1,"session":"42"}`, `{}`, ``, `null`, `[]`, `{"session":null}`,
		"{\"session\":\"42\"}\n", "{\"session\":\"42\",\"wait\":\"1s\"}\t", `{"session":"42","wait":"1s\"}`,
		`{"session":"42\"}`, `{"session":"4 2"}`, `{"session":"42","wait":"1 s"}`,
	}
	acq, rel := `{"op":"acquire","name":"jobs/a-1","session":"42"}`, `{"op":"release","name":"b","session":"7","token":17}`
	bodies = append(bodies,
		`{"ops":[`+acq+`]}`, `{"ops":[`+rel+`]}`, `{"ops":[`+acq+`,`+rel+`,`+acq+`]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"42","token":0}]}`,
		`{"ops":[{"op":"x","name":"","session":"1"}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":18446744073709551615}]}`,
		// Not in the compact form, or not valid: the strict decoder decides.
		`{"ops":[]}`, `{"ops":[`+acq+`,]}`, `{"ops":[`+acq+`]`, `{"ops":[`+acq+`]} `, `{"ops":[`+acq+`]}}`,
		`{"ops":[`+acq+` ]}`, `{"ops":[`+acq+`,,`+acq+`]}`, `{"ops":null}`, `{"ops":[null]}`, `{"ops":[{}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":017}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":-1}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":1.5}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":18446744073709551616}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":1,"token":2}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"0"}]}`, `{"ops":[{"op":"acquire","name":"a","session":"01"}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":""}]}`, `{"ops":[{"op":"acquire","name":"a","session":"1e3"}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":42}]}`, `{"ops":[{"op":"acquire","name":"a\u0062","session":"1"}]}`,
		`{"ops":[{"op":"acquire","name":"a"b","session":"1"}]}`, `{"ops":[{"op":"acquire","name":"µ","session":"1"}]}`,
		`{"ops":[{"name":"a","op":"acquire","session":"1"}]}`, `{"ops":[{"op":"acquire","name":"a","session":"1","wait":"1s"}]}`,
		`{"ops":[{"Op":"acquire","name":"a","session":"1"}]}`, `{"ops":[`+acq+`],"ops":[`+rel+`]}`,
		`{"ops":[`+acq+`],"x":1}`, `{"ops":[[`+acq+`]]}`,
	)
	return bodies
}

// checkFast fails if decodeFast accepts b for the type of newV() while the
// strict decoder refuses it or decodes something else.
func checkFast(t *testing.T, b []byte, newV func() any) (fast bool) {
	t.Helper()
	fv, sv := newV(), newV()
	if !decodeFast(b, fv) {
		return false
	}
	if err := decodeStrict(b, sv, true, "example"); err != nil {
		t.Errorf("%T %q: fast decode accepted what the strict decoder refuses: %v", fv, b, err)
		return true
	}
	if !reflect.DeepEqual(fv, sv) {
		t.Errorf("%T %q: fast %+v, strict %+v", fv, b, fv, sv)
	}
	return true
}

var fastTypes = []func() any{
	func() any { return new(api.AcquireRequest) },
	func() any { return new(api.ReleaseRequest) },
	func() any { return new(api.BatchRequest) },
}

func TestDecodeFastAgreesWithStrict(t *testing.T) {
	accepted := map[string]bool{}
	for _, b := range fastBodies() {
		for _, newV := range fastTypes {
			if checkFast(t, []byte(b), newV) {
				accepted[fmt.Sprintf("%T %s", newV(), b)] = true
			}
		}
	}
	// The forms the SDK sends do take the fast path.
	for _, want := range []string{
		`*api.AcquireRequest {"session":"42","wait":"5m0s"}`, `*api.AcquireRequest {"session":"42"}`,
		`*api.ReleaseRequest {"session":"42","token":17}`,
		`*api.BatchRequest {"ops":[{"op":"acquire","name":"jobs/a-1","session":"42"},{"op":"release","name":"b","session":"7","token":17},{"op":"acquire","name":"jobs/a-1","session":"42"}]}`,
	} {
		if !accepted[want] {
			t.Errorf("not taken by the fast path: %s", want)
		}
	}
	// And only those: nothing with spacing, escapes or other keys.
	for k := range accepted {
		if strings.ContainsAny(k[strings.IndexByte(k, ' ')+1:], " \t\n\\µ") || strings.Contains(k, "ttl") || strings.Contains(k, "owner") {
			t.Errorf("fast path took %s", k)
		}
	}
	// Other request types never do.
	var cs api.CreateSessionRequest
	if decodeFast([]byte(`{"session":"42"}`), &cs) {
		t.Error("fast path for CreateSessionRequest")
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, b := range fastBodies() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newV := range fastTypes {
			checkFast(t, b, newV)
		}
	})
}
