package fence

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// The request headers that carry a fence: the lock's name and the holder's
// fencing token, in decimal.
const (
	HeaderLock  = "Raftlock-Lock"
	HeaderToken = "Raftlock-Fencing-Token"
)

// The codes of the error answers of Middleware and WriteError, in
// {"error":{"code":...,"message":...}}, the error body of raftlock's API.
const (
	// CodeInvalidArgument: a header is missing, given twice or malformed,
	// or the token is 0 (HTTP 400).
	CodeInvalidArgument = "invalid_argument"
	// CodeStaleToken: a later holder of the lock has written; the error
	// object's "highest" is its token (HTTP 409).
	CodeStaleToken = "stale_token"
	// CodeUnavailable: the request's context ended while it waited for
	// the requests of a lower token to end (HTTP 503).
	CodeUnavailable = "unavailable"
)

// SetHeaders sets the headers of a request to a resource that Middleware
// guards: the lock's name and the holder's fencing token. It replaces any
// values they had.
func SetHeaders(h http.Header, name string, token uint64) {
	h.Set(HeaderLock, name)
	h.Set(HeaderToken, strconv.FormatUint(token, 10))
}

// ParseHeaders reads the lock's name and the fencing token that SetHeaders
// sets. It returns an error matching ErrInvalidArgument if a header is
// missing or given more than once, if the name is not a lock name, or if
// the token is not a decimal number from 1 to 2^64-1 without sign or
// leading zero.
func ParseHeaders(h http.Header) (name string, token uint64, err error) {
	name, err = single(h, HeaderLock)
	if err != nil {
		return "", 0, err
	}
	if err := validateName(name); err != nil {
		var invalid *invalidError
		errors.As(err, &invalid)
		return "", 0, invalidf("header %s: %s", HeaderLock, invalid.msg)
	}
	s, err := single(h, HeaderToken)
	if err != nil {
		return "", 0, err
	}
	token, err = parseToken(s)
	if err != nil {
		return "", 0, err
	}
	return name, token, nil
}

// single returns the one value of header key.
func single(h http.Header, key string) (string, error) {
	switch v := h.Values(key); len(v) {
	case 0:
		return "", invalidf("header %s is missing", key)
	case 1:
		return v[0], nil
	default:
		return "", invalidf("header %s is given %d times", key, len(v))
	}
}

// parseToken parses a token header: digits, no leading zero, not 0.
func parseToken(s string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, invalidf("header %s %q is not a decimal number", HeaderToken, clip(s))
		}
	}
	switch {
	case s == "":
		return 0, invalidf("header %s is empty", HeaderToken)
	case s == "0":
		return 0, invalidf("header %s is 0: fencing tokens start at 1", HeaderToken)
	case s[0] == '0':
		return 0, invalidf("header %s %q has a leading zero", HeaderToken, clip(s))
	}
	t, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, invalidf("header %s %q is above 2^64-1", HeaderToken, clip(s))
	}
	return t, nil
}

// safeMethod reports whether Middleware lets requests of method through
// without a fence: the methods that do not change state (RFC 9110 9.2.1).
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// Middleware returns a handler that fences every request except GET, HEAD,
// OPTIONS and TRACE, which it passes to next untouched (it ignores their
// headers and records nothing). A fenced request must carry the headers
// of SetHeaders; Middleware reads them with ParseHeaders and admits the
// request with Enter:
//
//   - a missing, repeated or malformed header, or token 0: 400
//     {"error":{"code":"invalid_argument","message":...}};
//   - a token lower than one already accepted for the name: 409
//     {"error":{"code":"stale_token","message":...,"highest":N}};
//   - the request's context ended while it waited for the requests of a
//     lower token to end: 503 {"error":{"code":"unavailable",...}};
//   - otherwise next serves the request, with Enter's context as the
//     request's context: it is cancelled, with a *StaleError as its cause,
//     if a higher token is accepted for the name meanwhile, and the higher
//     token's requests wait until next has returned.
//
// next must check that the name in HeaderLock is the lock that protects
// what the request changes. To fence reads too, or to let some writes
// through without a fence, route them to a handler of their own.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		name, token, err := ParseHeaders(r.Header)
		if err != nil {
			WriteError(w, err)
			return
		}
		ctx, release, err := g.Enter(r.Context(), name, token)
		if err != nil {
			WriteError(w, err)
			return
		}
		defer release()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Highest uint64 `json:"highest,omitempty"` // CodeStaleToken only
}

// WriteError answers err as Middleware does: 409 stale_token for an error
// matching ErrStale (with "highest" when it is a *StaleError), 400
// invalid_argument for one matching ErrInvalidArgument, and 503
// unavailable for any other. A handler behind Middleware can use it to
// give up once its context is cancelled by a later holder:
//
//	if err := context.Cause(r.Context()); errors.Is(err, fence.ErrStale) {
//		fence.WriteError(w, err)
//		return
//	}
func WriteError(w http.ResponseWriter, err error) {
	status, body := http.StatusServiceUnavailable, errorObject{Code: CodeUnavailable, Message: err.Error()}
	var stale *StaleError
	var invalid *invalidError
	switch {
	case errors.As(err, &stale):
		status, body = http.StatusConflict, errorObject{Code: CodeStaleToken, Message: stale.message(), Highest: stale.Highest}
	case errors.Is(err, ErrStale):
		status, body = http.StatusConflict, errorObject{Code: CodeStaleToken, Message: err.Error()}
	case errors.As(err, &invalid):
		status, body = http.StatusBadRequest, errorObject{Code: CodeInvalidArgument, Message: invalid.msg}
	case errors.Is(err, ErrInvalidArgument):
		status, body = http.StatusBadRequest, errorObject{Code: CodeInvalidArgument, Message: err.Error()}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)               // a JSON body with nosniff: nothing to escape for
	_ = enc.Encode(errorBody{Error: body}) // cannot fail: strings and a number
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
