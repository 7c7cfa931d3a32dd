package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/raftlock/raftlock/api"
)

// bodyKey is the echo.Context key of the buffered request body, kept for
// forwarding to the leader.
const bodyKey = "raftlock.body"

// readBody reads the whole request body (at most api.MaxBodyBytes) and keeps
// it in the context for forward.
func readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > api.MaxBodyBytes {
		return nil, api.Errorf(api.CodeTooLarge, "the request body is %d bytes: it exceeds the limit of %d bytes", r.ContentLength, api.MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, api.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, api.Errorf(api.CodeTooLarge, "the request body exceeds the limit of %d bytes", api.MaxBodyBytes)
		}
		return nil, api.Errorf(api.CodeInvalidArgument, "reading the request body: %v", err)
	}
	c.Set(bodyKey, b)
	return b, nil
}

// decodeBody reads the body and decodes it strictly into v: unknown fields,
// wrong types and trailing data are errors. An empty body is an error when
// required, and leaves v as it is otherwise.
func decodeBody(c echo.Context, v any, required bool, example string) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	if decodeFast(b, v) {
		return nil
	}
	return decodeStrict(b, v, required, example)
}

// decodeStrict is decodeBody's strict decoding of the body b into v.
func decodeStrict(b []byte, v any, required bool, example string) error {
	if len(bytes.TrimSpace(b)) == 0 {
		if required {
			return api.Errorf(api.CodeInvalidArgument, "a JSON body is required, e.g. %s", example)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "invalid JSON body: %s (expected e.g. %s)", strings.TrimPrefix(err.Error(), "json: "), example)
	}
	// Only white space may follow the value (InputOffset is where the
	// decoder stopped in b).
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return api.Errorf(api.CodeInvalidArgument, "invalid JSON body: trailing data after the JSON object")
	}
	return nil
}

// sessionParam parses the :id path parameter.
func sessionParam(c echo.Context) (api.SessionID, error) {
	raw := c.Param("id")
	s, err := url.PathUnescape(raw)
	if err != nil {
		s = raw
	}
	id, err := api.ParseSessionID(s)
	if err != nil {
		return 0, api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	return id, nil
}

// consistency reports whether the GET asks for a stale read.
func consistency(c echo.Context) (stale bool, err error) {
	vs, ok := c.QueryParams()[api.QueryConsistency]
	if !ok {
		return false, nil
	}
	if len(vs) == 1 && vs[0] == api.ConsistencyStale {
		return true, nil
	}
	return false, api.Errorf(api.CodeInvalidArgument, "consistency=%q: the only accepted value is %q (leave it out for a linearizable read)", strings.Join(vs, ","), api.ConsistencyStale)
}

func (s *Server) checkTTL(field string, d api.Duration) error {
	t := time.Duration(d)
	if t < s.cfg.MinTTL || t > s.cfg.MaxTTL {
		return api.Errorf(api.CodeInvalidArgument, "%s %v is out of bounds: it must be between %v and %v", field, t, s.cfg.MinTTL, s.cfg.MaxTTL)
	}
	return nil
}

func (s *Server) checkWait(d api.Duration) error {
	t := time.Duration(d)
	if t < 0 || t > s.cfg.MaxWait {
		return api.Errorf(api.CodeInvalidArgument, "wait %v is out of bounds: it must be between 0s (try once) and %v", t, s.cfg.MaxWait)
	}
	return nil
}

func checkOwner(owner string) error {
	if len(owner) > api.MaxOwnerLen {
		return api.Errorf(api.CodeInvalidArgument, "owner is %d bytes long: at most %d are allowed", len(owner), api.MaxOwnerLen)
	}
	return nil
}

// decodeFast decodes the bodies of acquire, release and batch when they are
// in the exact compact form the Go SDK sends ({"session":"42","wait":"5m0s"},
// {"session":"42","token":17}, see fastBatch) without encoding/json, and reports whether
// it did. Anything else (other spacing, key order or case, escapes,
// another type) returns false and goes through the strict decoder. It
// accepts only what the strict decoder accepts, with the same result
// (TestDecodeFastAgreesWithStrict).
func decodeFast(b []byte, v any) bool {
	switch req := v.(type) {
	case *api.AcquireRequest:
		id, rest, ok := fastSession(b)
		if !ok {
			return false
		}
		var wait api.Duration
		if r, ok := bytes.CutPrefix(rest, []byte(`,"wait":"`)); ok {
			j := bytes.IndexByte(r, '"')
			if j < 0 || !plainASCII(r[:j]) {
				return false
			}
			d, err := time.ParseDuration(string(r[:j]))
			if err != nil {
				return false
			}
			wait, rest = api.Duration(d), r[j+1:]
		}
		if string(rest) != "}" {
			return false
		}
		*req = api.AcquireRequest{Session: id, Wait: wait}
		return true
	case *api.ReleaseRequest:
		id, rest, ok := fastSession(b)
		if !ok {
			return false
		}
		r, ok := bytes.CutPrefix(rest, []byte(`,"token":`))
		if !ok || len(r) < 2 || r[len(r)-1] != '}' {
			return false
		}
		digits := r[:len(r)-1]
		if !allDigits(digits) || (len(digits) > 1 && digits[0] == '0') {
			return false // a JSON number has no leading zero
		}
		tok, err := strconv.ParseUint(string(digits), 10, 64)
		if err != nil {
			return false
		}
		*req = api.ReleaseRequest{Session: id, Token: tok}
		return true
	case *api.BatchRequest:
		return fastBatch(b, req)
	}
	return false
}

// fastBatch decodes a batch in the compact form the Go SDK sends:
// {"ops":[{"op":"acquire","name":"a","session":"42"},{"op":"release",
// "name":"b","session":"42","token":17}]}: keys in that order, strings of
// plain ASCII without escapes, at least one operation.
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
		sid, err := api.ParseSessionID(id)
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
	id, err := api.ParseSessionID(string(rest[:i]))
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
