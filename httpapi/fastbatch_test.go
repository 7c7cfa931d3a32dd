package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/api"
)

// batchBodies are bodies near the compact form fastBatch takes: the form
// itself and what differs from it in one way.
func batchBodies() []string {
	acq, rel := `{"op":"acquire","name":"jobs/a-1","session":"42"}`, `{"op":"release","name":"b","session":"7","token":17}`
	return []string{
		`{"ops":[` + acq + `]}`, `{"ops":[` + rel + `]}`, `{"ops":[` + acq + `,` + rel + `,` + acq + `]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"42","token":0}]}`,
		`{"ops":[{"op":"x","name":"","session":"1"}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":18446744073709551615}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"1","keep_queued":true},` + rel + `]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":3,"keep_queued":true}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"1","keep_queued":false}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"1","keep_queued":true,"keep_queued":true}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"1","keep_queued":1}]}`,
		// Not in the compact form, or not valid: the strict decoder decides.
		`{"ops":[]}`, `{"ops":[` + acq + `,]}`, `{"ops":[` + acq + `]`, `{"ops":[` + acq + `]} `, `{"ops":[` + acq + `]}}`,
		`{"ops":[` + acq + ` ]}`, `{"ops":[` + acq + `,,` + acq + `]}`, `{"ops":null}`, `{"ops":[null]}`, `{"ops":[{}]}`,
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
		`{"ops":[{"Op":"acquire","name":"a","session":"1"}]}`, `{"ops":[` + acq + `],"ops":[` + rel + `]}`,
		`{"ops":[` + acq + `],"x":1}`, `{"ops":[[` + acq + `]]}`, `{"OPS":[` + acq + `]}`, ``, `null`, `[]`,
		// What the strict decoder refuses (issue 11): keys in another case,
		// repeated keys, leading zeros, invalid UTF-8. None is fast.
		`{"ops":[{"op":"acquire","name":"a","session":"046033"}]}`, `{"ops":[{"op":"acquire","name":"a","session":"00"}]}`,
		`{"ops":[{"op":"release","name":"a","session":"1","token":00}]}`, `{"ops":[{"op":"release","name":"a","session":"1","token":046033}]}`,
		`{"ops":[{"op":"acquire","name":"a","Session":"1"}]}`, `{"ops":[{"OP":"acquire","name":"a","session":"1"}]}`,
		`{"Ops":[` + acq + `]}`, `{"ops":[{"op":"acquire","Name":"a","session":"1"}]}`,
		`{"ops":[{"op":"acquire","name":"a","name":"b","session":"1"}]}`, `{"ops":[{"op":"acquire","op":"acquire","name":"a","session":"1"}]}`,
		`{"ops":[{"op":"acquire","name":"a","session":"1","session":"2"}]}`,
		"{\"ops\":[{\"op\":\"acquire\",\"name\":\"a\xff\",\"session\":\"1\"}]}", "{\"ops\":[{\"op\":\"acq\xc3uire\",\"name\":\"a\",\"session\":\"1\"}]}",
		`{"ops":[{"op":"acquire","name":"a\udc00","session":"1"}]}`, `{"ops":[{"op":"acquire","name":"a","session":"\u0031"}]}`,
		`{"ops":[{"op":"acquire","name":"a/../b","session":"1"}]}`, `{"ops":[{"op":"acquire","name":"a\u0000","session":"1"}]}`,
	}
}

// checkFastBatch fails if fastBatch accepts b while the strict decoder
// (its library path) refuses it or decodes something else.
func checkFastBatch(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	var fv, sv api.BatchRequest
	if !fastBatch(b, &fv) {
		return false
	}
	// The library path, not decodeStrict (which would take fastBatch's
	// answer).
	if err := decodeLibrary(b, &sv, "example"); err != nil {
		t.Errorf("%q: fastBatch accepted what the strict decoder refuses: %v", b, err)
		return true
	}
	if !reflect.DeepEqual(fv, sv) {
		t.Errorf("%q: fast %+v, strict %+v", b, fv, sv)
	}
	return true
}

func TestFastBatchAgreesWithStrict(t *testing.T) {
	fast := 0
	for _, b := range batchBodies() {
		if checkFastBatch(t, []byte(b)) {
			fast++
			if strings.ContainsAny(b, " \t\n\\µ") || strings.Contains(b, "wait") {
				t.Errorf("fastBatch took %s", b)
			}
		}
	}
	if fast != 9 {
		t.Errorf("fastBatch took %d bodies, want the 9 compact ones (a session ID with a leading zero is not one: the strict decoder refuses it; a name with a \"..\" segment is one: Validate refuses it after either decoder)", fast)
	}
}

func FuzzFastBatch(f *testing.F) {
	for _, b := range batchBodies() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFastBatch(t, b) })
}

func TestAppendBatchResponseIsJSONMarshal(t *testing.T) {
	grant := func(name string, session api.SessionID, token uint64) *api.LockGrant {
		return &api.LockGrant{Name: name, Session: session, Token: token}
	}
	cases := [][]api.BatchResult{
		{},
		{{Status: 200, Grant: grant("a", 1, 2)}},
		{{Status: 200, Grant: grant("jobs/nightly:x_y-z.1", 18446744073709551615, 18446744073709551615)}, {Status: 409, Error: &api.Error{Code: api.CodeLockHeld, Message: "held \"x\" <&>", Holder: &api.Holder{Session: 3, Owner: "o", Token: 4}}}},
		{{Status: 503, Error: &api.Error{Code: api.CodeTimeout, Message: "unknown"}}, {Status: 200, Grant: grant("b", 5, 6)}},
		// Not what the server makes; encoded by encoding/json.
		{{Status: 200, Grant: grant("needs \"escaping\"", 1, 2)}},
		{{Status: 200}},
	}
	for _, results := range cases {
		want, err := json.Marshal(api.BatchResponse{Results: results})
		if err != nil {
			t.Fatal(err)
		}
		if len(results) == 0 {
			want = []byte(`{"results":[]}`) // the server never answers an empty batch
		}
		if got := appendBatchResponse(nil, results); !bytes.Equal(got, want) {
			t.Errorf("appendBatchResponse:\n got %s\nwant %s", got, want)
		}
	}
}
