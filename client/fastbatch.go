package client

// The batch path's JSON, written by hand: the SDK's lock requests coalesce
// in POST /v1/batch under load, and encoding/json's reflection was a large
// part of the client's cost per lock cycle; with these functions (and the
// server's, httpapi/fastbatch.go) lock-uncontended at 64 workers made 10.7 %
// more cycles per second (BENCHMARKS.md "Hand-written JSON on the batch
// path"). Each writes json.Marshal's bytes or decodes as json.Unmarshal
// does, or defers to it (TestEncodeBatchIsJSONMarshal,
// TestDecodeBatchFastAgreesWithJSON, FuzzDecodeBatchFast).

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/raftlock/raftlock/api"
)

// encodeBatch is json.Marshal(api.BatchRequest{...}) of ops, built without
// reflection when every name is a valid lock name, every op one of the
// two operations (such strings need no escaping in JSON) and no op has a
// mode (the shared tries of RWMutexes take encoding/json's path, and the
// server's strict decoder: they are rarer than exclusive ones). The output
// is identical (TestEncodeBatchIsJSONMarshal).
func encodeBatch(ops []*batchOp) []byte {
	b := make([]byte, 0, 16+len(ops)*80)
	b = append(b, `{"ops":[`...)
	for i, o := range ops {
		if api.ValidateLockName(o.op.Name) != nil || (o.op.Op != api.BatchAcquire && o.op.Op != api.BatchRelease) || o.op.Mode != "" {
			req := api.BatchRequest{Ops: make([]api.BatchOp, len(ops))}
			for i, o := range ops {
				req.Ops[i] = o.op
			}
			out, _ := json.Marshal(req) // cannot fail: strings and integers
			return out
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"op":"`...)
		b = append(b, o.op.Op...)
		b = append(b, `","name":"`...)
		b = append(b, o.op.Name...)
		b = append(b, `","session":"`...)
		b = strconv.AppendUint(b, uint64(o.op.Session), 10)
		b = append(b, '"')
		if o.op.Token != 0 {
			b = append(b, `,"token":`...)
			b = strconv.AppendUint(b, o.op.Token, 10)
		}
		if o.op.KeepQueued {
			b = append(b, `,"keep_queued":true`...)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// decodeBatchFast decodes a batch answer in the compact form the server
// writes when every operation was granted ({"results":[{"status":200,
// "grant":{"name":"a","session":"42","token":17}},...]}) without
// encoding/json, and reports whether it did. Anything else is left to
// json.Unmarshal; what it accepts decodes as json.Unmarshal would decode it
// (TestDecodeBatchFastAgreesWithJSON).
func decodeBatchFast(b []byte, out *api.BatchResponse) bool {
	rest, ok := bytes.CutPrefix(b, []byte(`{"results":[`))
	if !ok {
		return false
	}
	var res []api.BatchResult
	for {
		r, ok := bytes.CutPrefix(rest, []byte(`{"status":200,"grant":{"name":"`))
		if !ok {
			return false
		}
		i := bytes.IndexByte(r, '"')
		if i < 0 || api.ValidateLockName(string(r[:i])) != nil {
			return false
		}
		g := &api.LockGrant{Name: string(r[:i])}
		if r, ok = bytes.CutPrefix(r[i:], []byte(`","session":"`)); !ok {
			return false
		}
		n := digits(r)
		if n == 0 || r[0] == '0' || n >= len(r) || r[n] != '"' {
			return false
		}
		id, err := strconv.ParseUint(string(r[:n]), 10, 64)
		if err != nil {
			return false
		}
		g.Session = api.SessionID(id)
		if r, ok = bytes.CutPrefix(r[n:], []byte(`","token":`)); !ok {
			return false
		}
		if n = digits(r); n == 0 || (n > 1 && r[0] == '0') {
			return false
		}
		if g.Token, err = strconv.ParseUint(string(r[:n]), 10, 64); err != nil {
			return false
		}
		if rest, ok = bytes.CutPrefix(r[n:], []byte("}}")); !ok {
			return false
		}
		res = append(res, api.BatchResult{Status: http.StatusOK, Grant: g})
		if r, ok := bytes.CutPrefix(rest, []byte(",")); ok {
			rest = r
			continue
		}
		if string(rest) != "]}" {
			return false
		}
		*out = api.BatchResponse{Results: res}
		return true
	}
}

// digits returns the length of the run of ASCII digits that starts b.
func digits(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}
