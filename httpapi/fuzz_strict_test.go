package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/raftlock/raftlock/api"
)

// strictTargets are the bodies the API decodes, one value of each.
var strictTargets = []func() any{
	func() any { return new(api.CreateSessionRequest) },
	func() any { return new(api.AcquireRequest) },
	func() any { return new(api.ReleaseRequest) },
	func() any { return new(api.CancelRequest) },
	func() any { return new(api.KeepAliveRequest) },
	func() any { return new(api.BatchRequest) },
	func() any { return new(api.CampaignRequest) },
	func() any { return new(api.ProclaimRequest) },
	func() any { return new(api.ResignRequest) },
	func() any { return new(struct{}) },
}

// FuzzStrictAgainstEncodingJSON holds the strict decoder (decodeStrict,
// with the batch's fast path) to encoding/json (with
// DisallowUnknownFields), the reference most clients encode with:
//
//   - what both accept, they decode to the same value;
//
//   - the strict decoder accepts nothing that encoding/json refuses;
//
//   - where the strict decoder refuses what encoding/json accepts, the body
//     has one of the differences the API documents (stricterThanEncodingJSON):
//     invalid UTF-8 or a lone surrogate escape (encoding/json replaces them
//     with U+FFFD), a repeated key (encoding/json keeps the last), a key that
//     matches a field only when case is ignored (encoding/json folds case), a
//     session ID with a leading zero, a duration whose numbers are not
//     spelled as JSON numbers ("010s", "+1s", ".5s").
//
//     go test ./httpapi -run '^$' -fuzz '^FuzzStrictAgainstEncodingJSON$' -fuzztime 5m
func FuzzStrictAgainstEncodingJSON(f *testing.F) {
	seeds := append(batchBodies(),
		`{"ttl":"10s","owner":"a"}`, `{"ttl":"10s","Owner":"a"}`, `{"TTL":"10s"}`, `{"ttl":"010s"}`, `{"ttl":"+1s"}`, `{"ttl":".5s"}`,
		"{\"ttl\":\"10s\",\"owner\":\"a\xffb\"}", `{"ttl":"10s","owner":"a\udc00b"}`, `{"ttl":"10s","ttl":"11s"}`,
		`{"session":"42","wait":"5s","keep_queued":true}`, `{"session":"046033"}`, `{"session":"42","session":"43"}`,
		`{"session":"42","token":17}`, `{"session":"42","token":017}`, `{"session":"42","token":1e2}`, `{"session":"42","token":-0}`,
		`{"ids":["12","14"]}`, `{"ids":["012"]}`, `{"ids":[null]}`, `{"ids":null}`, `null`, `{}`, ` `, `{"session":"4\u0032"}`,
		`{"session":"42","value":"v","wait":"30s"}`, `{"session":"42","term":17,"value":"v2"}`, `{"Session":"42","Term":17}`,
	)
	for _, s := range seeds {
		for i := range strictTargets {
			f.Add([]byte(s), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		newV := strictTargets[int(which)%len(strictTargets)]
		strict, ref := newV(), newV()
		serr := decodeStrict(b, strict, true, "example")
		rerr := decodeEncodingJSON(b, ref)
		switch {
		case serr == nil && rerr != nil:
			t.Fatalf("%T %q: the strict decoder accepted what encoding/json refuses (%v)", strict, b, rerr)
		case serr == nil:
			if !reflect.DeepEqual(strict, ref) {
				t.Fatalf("%T %q: strict %+v, encoding/json %+v", strict, b, strict, ref)
			}
		case rerr == nil:
			if why := stricterThanEncodingJSON(b, reflect.TypeOf(strict)); why == "" {
				t.Fatalf("%T %q: the strict decoder refused what encoding/json accepts, for no documented reason: %v", strict, b, serr)
			}
		}
		if serr != nil {
			var ae *api.Error
			if !errors.As(serr, &ae) || ae.Code != api.CodeInvalidArgument || ae.Message == "" {
				t.Fatalf("%T %q: refusal %v is not an invalid_argument with a message", strict, b, serr)
			}
		}
	})
}

// decodeEncodingJSON decodes b into v as a careful encoding/json user
// would: unknown fields and trailing data are errors, and so is an empty
// body (as for the API's required bodies).
func decodeEncodingJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil { // trailing data, syntax
		return err
	}
	reset := reflect.New(reflect.TypeOf(v).Elem())
	reflect.ValueOf(v).Elem().Set(reset.Elem())
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var leadingZeroID = regexp.MustCompile(`^0[0-9]+$`)

// stricterThanEncodingJSON names the documented difference that makes the
// strict decoder refuse b (decoded into a value of type t) while
// encoding/json accepts it, or returns "" when b has none. It is computed
// from b itself, not from the refusal's message.
func stricterThanEncodingJSON(b []byte, t reflect.Type) string {
	if !utf8.Valid(b) {
		return "invalid UTF-8"
	}
	// A reading that refuses what jsontext refuses by default: repeated
	// names, invalid UTF-8 (lone surrogate escapes included).
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.ReadToken()
		if err == nil {
			continue
		}
		var sy *jsontext.SyntacticError
		if errors.As(err, &sy) {
			switch {
			case errors.Is(sy.Err, jsontext.ErrDuplicateName):
				return "repeated key"
			case bytes.Contains([]byte(sy.Err.Error()), []byte("surrogate")), bytes.Contains([]byte(sy.Err.Error()), []byte("UTF-8")):
				return "invalid UTF-8"
			}
		}
		break
	}
	// Keys that match a field only when case is ignored; session IDs and
	// durations spelled otherwise than the server writes them.
	dec = jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return ""
		}
		if tok.Kind() != '"' {
			continue
		}
		s := tok.String()
		kind, n := dec.StackIndex(dec.StackDepth())
		if kind == '{' && n%2 == 1 { // an object's key
			parent := dec.StackPointer().Parent()
			if _, exact := fieldAt(t, parent, s); !exact && knownField(t, parent, s) != "" {
				return "key case"
			}
			continue
		}
		if leadingZeroID.MatchString(s) {
			return "session id with a leading zero"
		}
		if _, err := time.ParseDuration(s); err == nil && checkDurationNumbers(s) != nil {
			return "duration spelling"
		}
	}
}

// fieldAt reports whether the object at ptr in a value of type t has a
// field whose JSON name is exactly name.
func fieldAt(t reflect.Type, ptr jsontext.Pointer, name string) (reflect.Type, bool) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for tok := range ptr.Tokens() {
		switch {
		case t == nil:
			return nil, false
		case t.Kind() == reflect.Slice:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := structField(t, tok)
			if !ok {
				return nil, false
			}
			t = f.Type
		default:
			return nil, false
		}
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, false
	}
	f, ok := structField(t, name)
	return f.Type, ok
}

// TestStricterThanEncodingJSON pins the documented differences, each with
// a body encoding/json accepts and the strict decoder refuses.
func TestStricterThanEncodingJSON(t *testing.T) {
	for _, c := range []struct {
		body string
		v    any
		why  string
	}{
		{"{\"ttl\":\"10s\",\"owner\":\"a\xffb\"}", new(api.CreateSessionRequest), "invalid UTF-8"},
		{`{"ttl":"10s","owner":"a\udc00b"}`, new(api.CreateSessionRequest), "invalid UTF-8"},
		{`{"ttl":"10s","ttl":"11s"}`, new(api.CreateSessionRequest), "repeated key"},
		{`{"Session":"42"}`, new(api.AcquireRequest), "key case"},
		{`{"ops":[{"OP":"acquire","name":"a","session":"1"}]}`, new(api.BatchRequest), "key case"},
		{`{"session":"046033"}`, new(api.CancelRequest), "session id with a leading zero"},
		{`{"ttl":"010s"}`, new(api.CreateSessionRequest), "duration spelling"},
	} {
		if err := decodeEncodingJSON([]byte(c.body), reflect.New(reflect.TypeOf(c.v).Elem()).Interface()); err != nil {
			// After api.ParseSessionID refuses leading zeros itself,
			// encoding/json refuses "046033" as well: no difference left.
			if c.why == "session id with a leading zero" {
				continue
			}
			t.Errorf("%s: encoding/json refuses it: %v", c.body, err)
		}
		if err := decodeStrict([]byte(c.body), c.v, true, "example"); err == nil {
			t.Errorf("%s: the strict decoder accepts it", c.body)
		}
		if got := stricterThanEncodingJSON([]byte(c.body), reflect.TypeOf(c.v)); got != c.why {
			t.Errorf("%s: difference %q, want %q", c.body, got, c.why)
		}
	}
}
