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
	"time"

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
	return decodeLibrary(b, v, example)
}

// decodeLibrary decodes the non-empty body b into v with the JSON library
// and strictJSON: the reference that fastBatch is held to.
func decodeLibrary(b []byte, v any, example string) error {
	if err := jsonv2.Unmarshal(b, v, strictJSON); err != nil {
		return api.Errorf(api.CodeInvalidArgument, "invalid JSON body: %s (expected e.g. %s)", describeJSONError(err, b, v), example)
	}
	return nil
}

// strictJSON are the options of every body decode, spelled out rather than
// left to the library's defaults: object keys match the API's field names
// exactly (no case folding), an unknown or repeated key is an error, strings
// must be valid UTF-8, and the API's own string types are read strictly
// (strictSessionID, strictDuration). The JSON grammar itself already
// refuses numbers with leading zeros (017) and trailing data.
var strictJSON = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
	jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		jsonv2.UnmarshalFunc(strictSessionID),
		jsonv2.UnmarshalFunc(strictDuration),
	)),
)

// strictSessionID decodes a session ID as api.SessionID does (a JSON string
// holding a decimal integer > 0; null leaves it alone) but refuses leading
// zeros: "046033" is not the ID the server wrote ("46033"), and an ID has
// one spelling (parseSessionID).
func strictSessionID(b []byte, id *api.SessionID) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] != '"' {
		return fmt.Errorf("session id must be a JSON string holding a decimal integer, not %s", clipValue(string(b)))
	}
	var s string
	if err := jsonv2.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("session id must be a JSON string holding a decimal integer, not %s", clipValue(string(b)))
	}
	v, err := parseSessionID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// strictDuration decodes a duration as api.Duration does (a Go duration
// string; null leaves it alone) but refuses what a JSON number would not
// be: a '+' sign, a number with a leading zero ("010s"), a fraction without
// digits on both sides of its point (".5s", "1.s").
func strictDuration(b []byte, d *api.Duration) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if len(b) == 0 || b[0] != '"' || jsonv2.Unmarshal(b, &s) != nil {
		return fmt.Errorf("duration must be a JSON string such as \"10s\", not %s", clipValue(string(b)))
	}
	if err := checkDurationNumbers(s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as \"500ms\", \"10s\" or \"1m30s\"", clipValue(s))
	}
	*d = api.Duration(v)
	return nil
}

// checkDurationNumbers refuses the spellings of numbers in a duration
// string that JSON's grammar refuses in a number: each must be 0 or start
// with 1-9, and a '.' has digits on both sides. An optional leading '-' is
// left for the bounds check, which explains it.
func checkDurationNumbers(s string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid duration %q: %s; write it as Go prints durations, e.g. \"500ms\", \"1.5s\" or \"1m30s\"", clipValue(s), why)
	}
	rest := strings.TrimPrefix(s, "-")
	if strings.HasPrefix(rest, "+") {
		return bad("a '+' sign is not allowed")
	}
	for i := 0; i < len(rest); {
		c := rest[i]
		if c < '0' || c > '9' {
			if c == '.' {
				return bad("a '.' needs a digit before it")
			}
			i++ // a unit letter
			continue
		}
		j := i
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j-i > 1 && c == '0' {
			return bad("a number has a leading zero")
		}
		if j < len(rest) && rest[j] == '.' {
			k := j + 1
			for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
				k++
			}
			if k == j+1 {
				return bad("a '.' needs a digit after it")
			}
			j = k
		}
		i = j
	}
	return nil
}

// parseSessionID parses a session ID as api.ParseSessionID does, and
// refuses leading zeros: the server writes IDs without them, and "046033"
// in a path or a body must not name session 46033 under a second spelling.
func parseSessionID(s string) (api.SessionID, error) {
	if t := strings.TrimLeft(s, "0"); len(t) < len(s) && t != "" {
		return 0, fmt.Errorf("session id %q has a leading zero: write it as the server does (%q)", clipValue(s), clipValue(t))
	}
	return api.ParseSessionID(s) // "0", "00": not an ID at all
}

// parseDecimal parses a query or header value that is a decimal integer
// written as the server writes one: digits only, no sign, no leading zero.
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// describeJSONError says what is wrong with the body b, which failed to
// decode into v, in the API's words: the field by its path (ops[2].token),
// what was expected and what was found, never a Go type name.
func describeJSONError(err error, b []byte, v any) string {
	var sy *jsontext.SyntacticError
	if errors.As(err, &sy) {
		return describeSyntaxError(sy, b)
	}
	var se *jsonv2.SemanticError
	if !errors.As(err, &se) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	field := fieldPath(se.JSONPointer)
	switch {
	case errors.Is(se.Err, jsonv2.ErrUnknownName):
		name := se.JSONPointer.LastToken()
		hint := ""
		if known := knownField(reflect.TypeOf(v), se.JSONPointer.Parent(), name); known != "" {
			hint = fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", known)
		}
		if parent := fieldPath(se.JSONPointer.Parent()); parent != "" {
			return fmt.Sprintf("%s: unknown field %q%s", parent, name, hint)
		}
		return fmt.Sprintf("unknown field %q%s", name, hint)
	case field == "":
		return fmt.Sprintf("the body must be a JSON object, not %s", jsonKind(se.JSONKind))
	case se.Err != nil && se.GoType != nil && (se.GoType.Implements(jsonUnmarshaler) || reflect.PointerTo(se.GoType).Implements(jsonUnmarshaler)):
		// The API's own types (session IDs, durations) say what they want
		// (strictJSON's functions report them as pointers).
		return fmt.Sprintf("%s: %v", field, se.Err)
	case se.JSONKind == '0' && se.GoType != nil && isInteger(se.GoType.Kind()):
		return fmt.Sprintf("%s: %s is not an integer between 0 and %d", field, se.JSONValue, uint64(math.MaxUint64))
	case se.GoType != nil:
		return fmt.Sprintf("%s: expected %s, found %s", field, jsonWant(se.GoType.Kind()), jsonKind(se.JSONKind))
	}
	return fmt.Sprintf("%s: %v", field, se.Err)
}

// describeSyntaxError describes a body that is not valid JSON (or repeats
// a key), naming the field where the error is, or the one it follows.
func describeSyntaxError(sy *jsontext.SyntacticError, b []byte) string {
	msg := sy.Err.Error()
	switch {
	case errors.Is(sy.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("field %q appears more than once", fieldPath(sy.JSONPointer))
	case strings.Contains(msg, "after top-level value"):
		return "trailing data after the JSON object"
	}
	at := locate(b, sy.ByteOffset)
	field := fieldPath(at.ptr)
	switch {
	case strings.Contains(msg, "invalid UTF-8") || strings.Contains(msg, "surrogate"):
		if at.name {
			if parent := fieldPath(at.ptr.Parent()); parent != "" {
				return fmt.Sprintf("%s: a field name is not valid UTF-8 (byte %d): JSON text must be UTF-8", parent, sy.ByteOffset)
			}
			return fmt.Sprintf("a field name is not valid UTF-8 (byte %d): JSON text must be UTF-8", sy.ByteOffset)
		}
		if field != "" {
			return fmt.Sprintf("%s: the string is not valid UTF-8 (byte %d): JSON text must be UTF-8", field, sy.ByteOffset)
		}
	case at.leadingZero && field != "":
		return fmt.Sprintf("%s: a number has no leading zeros (byte %d)", field, sy.ByteOffset)
	}
	if field != "" {
		return fmt.Sprintf("not valid JSON at byte %d, in or after field %q: %v", sy.ByteOffset, field, sy.Err)
	}
	return fmt.Sprintf("not valid JSON at byte %d: %v", sy.ByteOffset, sy.Err)
}

// location is where in a body a syntax error is.
type location struct {
	ptr         jsontext.Pointer // the value (or name) at the error, else the last one read before it
	name        bool             // the error is in an object's key
	leadingZero bool             // a digit follows a number 0 or -0: a leading zero
}

// locate finds the token of b that holds byte off, reading b again with a
// decoder that tolerates invalid UTF-8 and repeated names, or else the last
// token read before the decoder stopped.
func locate(b []byte, off int64) location {
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	var at location
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			break
		}
		kind, n := dec.StackIndex(dec.StackDepth())
		at = location{ptr: dec.StackPointer(), name: kind == '{' && n%2 == 1}
		if tok.Kind() == '0' && int(off) < len(b) && b[off] >= '0' && b[off] <= '9' {
			if num := tok.String(); num == "0" || num == "-0" {
				at.leadingZero = true
			}
		}
		if dec.InputOffset() > off {
			break
		}
	}
	return at
}

// knownField returns the field of the object at ptr in a value of type t
// whose JSON name equals name but for case, or "".
func knownField(t reflect.Type, ptr jsontext.Pointer, name string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for tok := range ptr.Tokens() {
		switch {
		case t == nil:
			return ""
		case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := structField(t, tok)
			if !ok {
				return ""
			}
			t = f.Type
		default:
			return ""
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	for i := 0; i < t.NumField(); i++ {
		if n := jsonName(t.Field(i)); n != "" && strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

// structField returns t's field whose JSON name is name.
func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is a struct field's JSON name, "" when it has none.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	if n, _, _ := strings.Cut(tag, ","); n != "" {
		return n
	}
	return f.Name
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
	id, err := parseSessionID(s)
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
		n, ok := parseDecimal(v)
		if !ok || n == 0 {
			return 0, "", api.Errorf(api.CodeInvalidArgument, "limit=%q: give an integer between 1 and %d (digits only, no leading zero)", clipValue(v), api.MaxListLimit)
		}
		if n > api.MaxListLimit {
			return 0, "", api.Errorf(api.CodeInvalidArgument, "limit %d is out of bounds: it must be between 1 and %d", n, api.MaxListLimit)
		}
		limit = int(n)
	}
	after = c.QueryParam(api.QueryAfter)
	if err := checkCursor(after); err != nil {
		return 0, "", err
	}
	return limit, after, nil
}

// checkCursor checks the ?after= of a listing: a position in the sorted
// names, the "next" of the previous page. It takes what a name is made of
// (at most api.MaxLockNameLen bytes of name characters) without the
// segment rules of names: a page may end on a name that an older version
// accepted ("a//b"), and the listing must go on past it.
func checkCursor(after string) error {
	if len(after) > api.MaxLockNameLen {
		return api.Errorf(api.CodeInvalidArgument, "after is %d bytes long: give the next of the previous page (at most %d bytes)", len(after), api.MaxLockNameLen)
	}
	for i := 0; i < len(after); i++ {
		switch c := after[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-', c == ':', c == '/':
		default:
			return api.Errorf(api.CodeInvalidArgument, "after %q has the character %q at byte %d: give the next of the previous page (a lock name)", clipValue(after), c, i)
		}
	}
	return nil
}
