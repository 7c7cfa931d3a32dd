package httpapi

// The batch path's JSON, written by hand. POST /v1/batch is what the Go SDK
// sends under load (its lock requests coalesce there), and reflection was
// a tenth of the cost of a lock cycle at 64 workers: with these functions,
// lock-uncontended at 64 workers made 10.7 % more cycles per second
// (median of 5 runs each, alternating, BENCHMARKS.md "Hand-written JSON on
// the batch path"), the threshold under which the project uses a library.
// Single requests go through the library (decodeStrict, writeJSON).
//
// Each function accepts or writes only a compact form and defers anything
// else to the library: fastBatch takes only what the strict decoder takes,
// with the same result (TestFastBatchAgreesWithStrict, FuzzFastBatch), and
// appendBatchResponse writes json.Marshal's bytes
// (TestAppendBatchResponseIsJSONMarshal).

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/raftlock/raftlock/api"
)

// fastBatch decodes a batch in the compact form the Go SDK sends:
// {"ops":[{"op":"acquire","name":"a","session":"42","keep_queued":true},
// {"op":"release","name":"b","session":"42","token":17}]}: keys in that
// order (token and keep_queued optional), each once
// and spelled exactly, strings of plain ASCII without escapes (so valid
// UTF-8), session IDs and tokens without leading zeros, at least one
// operation. It returns false for anything else, which the strict decoder
// then decodes or refuses with its message: fastBatch never accepts what
// decodeStrict's library path refuses, nor decodes it differently.
func fastBatch(b []byte, req *api.BatchRequest) bool {
	rest, ok := bytes.CutPrefix(b, []byte(`{"ops":[`))
	if !ok {
		return false
	}
	var ops []api.BatchOp
	for {
		var op api.BatchOp
		if op.Op, rest, ok = fastString(rest, `{"op":"`); !ok {
			return false
		}
		if op.Name, rest, ok = fastString(rest, `,"name":"`); !ok {
			return false
		}
		var id string
		if id, rest, ok = fastString(rest, `,"session":"`); !ok || !allDigits([]byte(id)) {
			return false
		}
		sid, err := parseSessionID(id) // no leading zero, as strictJSON
		if err != nil {
			return false
		}
		op.Session = sid
		if r, ok := bytes.CutPrefix(rest, []byte(`,"token":`)); ok {
			n := 0
			for n < len(r) && r[n] >= '0' && r[n] <= '9' {
				n++
			}
			if n == 0 || (n > 1 && r[0] == '0') {
				return false // a JSON number has no leading zero
			}
			tok, err := strconv.ParseUint(string(r[:n]), 10, 64)
			if err != nil {
				return false
			}
			op.Token, rest = tok, r[n:]
		}
		if r, ok := bytes.CutPrefix(rest, []byte(`,"keep_queued":true`)); ok {
			op.KeepQueued, rest = true, r
		}
		if rest, ok = bytes.CutPrefix(rest, []byte("}")); !ok {
			return false
		}
		ops = append(ops, op)
		if r, ok := bytes.CutPrefix(rest, []byte(",")); ok {
			rest = r
			continue
		}
		if string(rest) != "]}" {
			return false
		}
		*req = api.BatchRequest{Ops: ops}
		return true
	}
}

// fastString parses prefix followed by the body of a JSON string of plain
// ASCII and its closing quote, and returns the body and the rest.
func fastString(b []byte, prefix string) (string, []byte, bool) {
	r, ok := bytes.CutPrefix(b, []byte(prefix))
	if !ok {
		return "", nil, false
	}
	i := bytes.IndexByte(r, '"')
	if i < 0 || !plainASCII(r[:i]) {
		return "", nil, false
	}
	return string(r[:i]), r[i+1:], true
}

// fastSession parses the prefix {"session":"<decimal ID>" of b and returns
// the rest.
func fastSession(b []byte) (api.SessionID, []byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"session":"`))
	if !ok {
		return 0, nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i <= 0 || !allDigits(rest[:i]) {
		return 0, nil, false
	}
	id, err := parseSessionID(string(rest[:i])) // no leading zero, as strictJSON
	if err != nil {
		return 0, nil, false
	}
	return id, rest[i+1:], true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// plainASCII reports whether b is printable ASCII without a backslash or a
// quote: the body of a JSON string that means itself.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

// appendBatchResponse appends json.Marshal(api.BatchResponse{results}) to
// b, building the grants of valid lock names (no escaping needed) without
// reflection (TestAppendBatchResponseIsJSONMarshal).
func appendBatchResponse(b []byte, results []api.BatchResult) []byte {
	b = append(b, `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		if r.Grant == nil || r.Error != nil || r.Grant.Mode != "" || api.ValidateLockName(r.Grant.Name) != nil {
			one, err := json.Marshal(r)
			if err != nil { // strings, integers and pointers to them: cannot fail
				one = []byte(`{"status":500,"error":{"code":"internal","message":"encode result"}}`)
			}
			b = append(b, one...)
			continue
		}
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
		b = append(b, `,"grant":{"name":"`...)
		b = append(b, r.Grant.Name...)
		b = append(b, `","session":"`...)
		b = strconv.AppendUint(b, uint64(r.Grant.Session), 10)
		b = append(b, `","token":`...)
		b = strconv.AppendUint(b, r.Grant.Token, 10)
		b = append(b, "}}"...)
	}
	return append(b, "]}"...)
}
