package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/raftlock/raftlock/api"
)

func TestEncodeBatchIsJSONMarshal(t *testing.T) {
	cases := [][]api.BatchOp{
		{{Op: api.BatchAcquire, Name: "a", Session: 1}},
		{{Op: api.BatchRelease, Name: "jobs/nightly:backup_1.x-y", Session: 18446744073709551615, Token: 18446744073709551615}},
		{{Op: api.BatchAcquire, Name: "a", Session: 7}, {Op: api.BatchRelease, Name: "b/c", Session: 8, Token: 3}, {Op: api.BatchAcquire, Name: "d", Session: 9}},
		{{Op: api.BatchAcquire, Name: "a", Session: 7, KeepQueued: true}, {Op: api.BatchRelease, Name: "b", Session: 8, Token: 3}},
		{{Op: api.BatchAcquire, Name: "a", Session: 1, Mode: api.ModeShared, KeepQueued: true}},
		// Not what the SDK sends; encoded by encoding/json.
		{{Op: api.BatchAcquire, Name: "needs \"escaping\" <&>", Session: 1}},
		{{Op: "weird\"op", Name: "a", Session: 1}},
		{{Op: api.BatchAcquire, Name: "a", Session: 1, Mode: api.ModeShared}, {Op: api.BatchRelease, Name: "b", Session: 2, Token: 3}},
		{{Op: api.BatchAcquire, Name: "a", Session: 1, Mode: api.ModeExclusive}},
	}
	for _, ops := range cases {
		in := make([]*batchOp, len(ops))
		for i := range ops {
			in[i] = &batchOp{op: ops[i]}
		}
		want, err := json.Marshal(api.BatchRequest{Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeBatch(in); !bytes.Equal(got, want) {
			t.Errorf("encodeBatch:\n got %s\nwant %s", got, want)
		}
	}
}

// batchAnswers are batch answers near the compact form decodeBatchFast
// takes: the form itself and what differs from it in one way.
func batchAnswers() []string {
	g := `{"status":200,"grant":{"name":"jobs/a-1","session":"42","token":17}}`
	return []string{
		`{"results":[` + g + `]}`, `{"results":[` + g + `,` + g + `]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"18446744073709551615","token":18446744073709551615}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":0}}]}`,
		// Not in the compact form: encoding/json decides.
		`{"results":[]}`, `{"results":[` + g + `,]}`, `{"results":[` + g + `]} `, `{"results":[` + g + `]`,
		`{"results":[{"status":409,"error":{"code":"lock_held","message":"held"}}]}`,
		`{"results":[` + g + `,{"status":404,"error":{"code":"session_not_found","message":"gone"}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"01","token":1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":01}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":-1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":1.5}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"18446744073709551616","token":1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":18446744073709551616}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a b","session":"1","token":1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a\u0062","session":"1","token":1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"","session":"1","token":1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"","token":1}}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":1},"x":1}]}`,
		`{"results":[{"status":200,"grant":{"name":"a","session":"1","token":1,"mode":"shared"}}]}`,
		`{"results":[{"grant":{"name":"a","session":"1","token":1},"status":200}]}`,
		`{"results":[{"status":201,"grant":{"name":"a","session":"1","token":1}}]}`,
		`{"results":null}`, `{}`, ``, `null`,
	}
}

func checkBatchFast(t *testing.T, b []byte) (fast bool) {
	t.Helper()
	var fv, jv api.BatchResponse
	if !decodeBatchFast(b, &fv) {
		return false
	}
	if err := json.Unmarshal(b, &jv); err != nil {
		t.Errorf("%q: fast decode accepted what encoding/json refuses: %v", b, err)
		return true
	}
	if !reflect.DeepEqual(fv, jv) {
		t.Errorf("%q: fast %+v, json %+v", b, fv, jv)
	}
	return true
}

func TestDecodeBatchFastAgreesWithJSON(t *testing.T) {
	fast := 0
	for _, b := range batchAnswers() {
		if checkBatchFast(t, []byte(b)) {
			fast++
		}
	}
	if fast != 4 {
		t.Errorf("the fast path took %d answers, want the 4 compact ones", fast)
	}
}

func FuzzDecodeBatchFast(f *testing.F) {
	for _, b := range batchAnswers() {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkBatchFast(t, b) })
}
