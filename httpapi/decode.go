package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

// decodeBody reads the body and decodes it strictly into v: an unknown or
// repeated field, a field in another case, a wrong type, invalid UTF-8 and
// trailing data are errors (400 invalid_argument with a message that names
// the field in the API's words). An empty body is an error when required,
// and leaves v as it is otherwise.
func decodeBody(c echo.Context, v any, required bool, example string) error {
	b, err := readBody(c)
	if err != nil {
		return err
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
	if br, ok := v.(*api.BatchRequest); ok && fastBatch(b, br) {
		return nil // the SDK's compact form (fastbatch.go)
	}
	if err := jsonv2.Unmarshal(b, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "invalid JSON body: %s (expected e.g. %s)", describeJSONError(err), example)
	}
	return nil
}

// describeJSONError says what is wrong with a body in the API's words: the
// field by its path (ops[2].token), what was expected and what was found,
// never a Go type name.
func describeJSONError(err error) string {
	var sy *jsontext.SyntacticError
	if errors.As(err, &sy) {
		switch {
		case errors.Is(sy.Err, jsontext.ErrDuplicateName):
			return fmt.Sprintf("field %q appears more than once", fieldPath(sy.JSONPointer))
		case strings.Contains(sy.Err.Error(), "after top-level value"):
			return "trailing data after the JSON object"
		}
		return fmt.Sprintf("not valid JSON at byte %d: %v", sy.ByteOffset, sy.Err)
	}
	var se *jsonv2.SemanticError
	if !errors.As(err, &se) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	field := fieldPath(se.JSONPointer)
	switch {
	case errors.Is(se.Err, jsonv2.ErrUnknownName):
		name := se.JSONPointer.LastToken()
		if parent := fieldPath(se.JSONPointer.Parent()); parent != "" {
			return fmt.Sprintf("%s: unknown field %q", parent, name)
		}
		return fmt.Sprintf("unknown field %q", name)
	case field == "":
		return fmt.Sprintf("the body must be a JSON object, not %s", jsonKind(se.JSONKind))
	case se.Err != nil && se.GoType != nil && reflect.PointerTo(se.GoType).Implements(jsonUnmarshaler):
		// The API's own types (session IDs, durations) say what they want.
		return fmt.Sprintf("%s: %v", field, se.Err)
	case se.JSONKind == '0' && se.GoType != nil && isInteger(se.GoType.Kind()):
		return fmt.Sprintf("%s: %s is not an integer between 0 and %d", field, se.JSONValue, uint64(math.MaxUint64))
	case se.GoType != nil:
		return fmt.Sprintf("%s: expected %s, found %s", field, jsonWant(se.GoType.Kind()), jsonKind(se.JSONKind))
	}
	return fmt.Sprintf("%s: %v", field, se.Err)
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// fieldPath turns a JSON pointer (/ops/2/token) into the API's path of a
// field (ops[2].token).
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 64); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// jsonWant names the JSON a field of Go kind k takes.
func jsonWant(k reflect.Kind) string {
	switch {
	case isInteger(k):
		return "an integer (a JSON number)"
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "true or false"
	case k == reflect.Slice, k == reflect.Array:
		return "an array"
	}
	return "an object"
}

// jsonKind names a JSON value's kind.
func jsonKind(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "another value"
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

// listPage parses the ?limit= and ?after= of a listing.
func listPage(c echo.Context) (limit int, after string, err error) {
	limit = api.DefaultListLimit
	if v := c.QueryParam(api.QueryLimit); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n == 0 {
			return 0, "", api.Errorf(api.CodeInvalidArgument, "limit=%q: give an integer between 1 and %d", v, api.MaxListLimit)
		}
		if err := api.ValidateListLimit(n); err != nil {
			return 0, "", err
		}
		limit = n
	}
	after = c.QueryParam(api.QueryAfter)
	if after != "" {
		if err := api.ValidateLockName(after); err != nil {
			return 0, "", api.Errorf(api.CodeInvalidArgument, "after: %v (give the next of the previous page)", err)
		}
	}
	return limit, after, nil
}
