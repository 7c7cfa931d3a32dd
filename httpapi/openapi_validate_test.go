package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/raftlock/raftlock/api"
)

// The OpenAPI document (api/openapi.json) cannot drift from the server:
// serveOver puts specCheck around every test server's handler, and it
// validates every request and answer that passes through against the
// document with kin-openapi (its router, openapi3filter.ValidateRequest
// and ValidateResponse), records what does not match, and fails the test
// when it ends.
//
// The rules:
//
//   - A request the document allows must get an answer the document
//     allows for that operation: a documented status, headers and a body
//     of the documented schema; an error answer's code must be one its
//     status lists (x-error-codes).
//   - A request the document does not allow (a malformed body, a bad
//     parameter, an undocumented path or method: what malformed_test.go,
//     strict_test.go and the bad-input tests send on purpose) must be
//     refused: a 4xx error answer whose code says the request was wrong
//     (badRequestCodes); only that answer is validated, as an error
//     object. Answering it with anything else (a 2xx, a 5xx) fails.
//   - Names with '/' in lock, semaphore and election paths are matched
//     in their %2F form (specPath), as the document describes them.
//   - The Server-Sent Events of the two streams are validated message by
//     message against the schemas the media type's x-sse-events names.
//   - A request body is validated as the server read it, and only when
//     the server read it to its end; a request without a Content-Type is
//     validated as application/json (the server reads every body as
//     JSON, whatever its Content-Type says).
//   - /ui and /ui/* are the web console's static files, not part of the
//     API: not described and not checked (see TestOpenAPIRoutes).

// badRequestCodes are the codes of a refused request the document does
// not allow: the request itself was wrong.
var badRequestCodes = map[string]bool{
	api.CodeInvalidArgument:  true,
	api.CodeNotFound:         true,
	api.CodeMethodNotAllowed: true,
	api.CodeTooLarge:         true,
}

// spec is the loaded document, its router and the validation options.
type spec struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	// errCodes maps an error status to the codes its response lists.
	errCodes map[int][]string
	// errSchema is the ErrorResponse schema.
	errSchema *openapi3.Schema
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load api/openapi.json: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("api/openapi.json is not a valid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route api/openapi.json: %w", err)
	}
	sp := &spec{doc: doc, router: router, errCodes: map[int][]string{},
		opts: &openapi3filter.Options{
			IncludeResponseStatus: true,
			// The document declares bearer auth; whether a request
			// needed a principal is the server's to say (401), not the
			// validator's.
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		}}
	for status, r := range allErrorResponses(doc) {
		codes, _ := r.Value.Extensions["x-error-codes"].([]any)
		for _, c := range codes {
			sp.errCodes[status] = append(sp.errCodes[status], c.(string))
		}
	}
	sp.errSchema = doc.Components.Schemas["ErrorResponse"].Value
	return sp, nil
})

// allErrorResponses maps each error status to the response component the
// operations refer to for it.
func allErrorResponses(doc *openapi3.T) map[int]*openapi3.ResponseRef {
	out := map[int]*openapi3.ResponseRef{}
	for _, pi := range doc.Paths.Map() {
		for _, op := range pi.Operations() {
			for code, r := range op.Responses.Map() {
				var status int
				if _, err := fmt.Sscan(code, &status); err != nil || status < 400 || r.Ref == "" {
					continue
				}
				out[status] = doc.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
			}
		}
	}
	// No operation answers 405: echo does, for a method the path lacks.
	out[http.StatusMethodNotAllowed] = doc.Components.Responses["MethodNotAllowed"]
	return out
}

// specCheck wraps h with the validation described above; failures fail t
// when it ends (after the server, closed by an earlier cleanup, has
// finished every request).
func specCheck(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	rec := &specFailures{}
	t.Cleanup(func() { rec.report(t) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUIPath(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		body := &teeBody{r: r.Body}
		if r.Body == nil || r.Body == http.NoBody {
			body.eof = true
		} else {
			r.Body = body
		}
		cw := &captureWriter{w: w}
		h.ServeHTTP(cw, r)
		defer func() {
			if p := recover(); p != nil {
				rec.add(fmt.Sprintf("%s %s: the check panicked: %v", r.Method, r.URL.RequestURI(), p))
			}
		}()
		if msg := sp.check(r, body, cw); msg != "" {
			rec.add(fmt.Sprintf("%s %s → %d: %s", r.Method, r.URL.RequestURI(), cw.statusCode(), msg))
		}
	})
}

// specFailures collects the failures of one test's servers.
type specFailures struct {
	mu   sync.Mutex
	msgs []string
}

func (f *specFailures) add(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, msg)
}

func (f *specFailures) report(t testing.TB) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.msgs {
		if i == 10 {
			t.Errorf("OpenAPI: and %d more", len(f.msgs)-i)
			break
		}
		t.Errorf("OpenAPI (api/openapi.json): %s", m)
	}
}

// teeBody keeps what the server read of a request body (at most
// maxKept bytes) and whether it read it to its end.
type teeBody struct {
	r    io.ReadCloser
	mu   sync.Mutex
	buf  bytes.Buffer
	eof  bool
	over bool
}

const maxKept = 2 * api.MaxBodyBytes

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.mu.Lock()
	if b.over = b.over || b.buf.Len()+n > maxKept; !b.over {
		b.buf.Write(p[:n])
	}
	if err == io.EOF {
		b.eof = true
	}
	b.mu.Unlock()
	return n, err
}

func (b *teeBody) Close() error { return b.r.Close() }

// complete returns the body when the server read all of it.
func (b *teeBody) complete() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes()), b.eof && !b.over
}

// captureWriter passes an answer through and keeps its status, its
// headers as sent and its body (at most maxKept bytes).
type captureWriter struct {
	w      http.ResponseWriter
	mu     sync.Mutex
	status int
	header http.Header
	buf    bytes.Buffer
	over   bool
}

func (c *captureWriter) Header() http.Header { return c.w.Header() }

func (c *captureWriter) WriteHeader(status int) {
	c.mu.Lock()
	if c.status == 0 {
		c.status = status
		c.header = c.w.Header().Clone()
	}
	c.mu.Unlock()
	c.w.WriteHeader(status)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.status == 0 {
		c.status = http.StatusOK
		c.header = c.w.Header().Clone()
	}
	if c.over = c.over || c.buf.Len()+len(p) > maxKept; !c.over {
		c.buf.Write(p)
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

// Flush and Unwrap let http.ResponseController (streams) reach the
// connection.
func (c *captureWriter) Flush() {
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.w }

func (c *captureWriter) statusCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// answer returns the status, headers and body sent (body truncated
// when over).
func (c *captureWriter) answer() (int, http.Header, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.header, bytes.Clone(c.buf.Bytes()), c.over
}

// specActions are the last path segments that the server takes as an
// action, not as part of the name, by collection and method.
var specActions = map[string]map[string][]string{
	"/v1/locks/":      {http.MethodPost: {"acquire", "release", "cancel", "check"}},
	"/v1/semaphores/": {http.MethodPost: {"acquire", "release", "cancel", "check"}},
	"/v1/elections/":  {http.MethodPost: {"campaign", "proclaim", "resign", "cancel"}, http.MethodGet: {"observe"}},
}

// specPath returns r's escaped path as the document writes it: the name
// of a lock, semaphore or election path in one segment, every '/' of it
// as %2F, split from its action as the server splits it (locks.go,
// semaphores.go, elections.go).
func specPath(r *http.Request) string {
	p := r.URL.EscapedPath()
	for prefix, byMethod := range specActions {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest == "" {
			continue
		}
		action := ""
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			for _, a := range byMethod[r.Method] {
				if rest[i+1:] == a {
					rest, action = rest[:i], "/"+a
					break
				}
			}
		}
		return prefix + strings.ReplaceAll(rest, "/", "%2F") + action
	}
	return p
}

// check validates one exchange and returns what is wrong ("" if nothing).
func (sp *spec) check(r *http.Request, body *teeBody, cw *captureWriter) string {
	status, header, respBody, truncated := cw.answer()
	if status == 0 {
		return "" // the handler wrote nothing: net/http answers 200 with no body; nothing to check
	}
	ctx := context.Background()
	req := r.Clone(ctx)
	req.URL.RawPath = specPath(r)
	if u, err := url.PathUnescape(req.URL.RawPath); err == nil {
		req.URL.Path = u
	}
	route, params, err := sp.router.FindRoute(req)
	if err != nil {
		// Not in the document: the server must refuse it.
		return sp.checkRefusal(status, respBody, fmt.Sprintf("no operation in the document (%v)", err))
	}
	for k, v := range params {
		if u, err := url.PathUnescape(v); err == nil {
			params[k] = u
		}
	}
	opts := *sp.opts
	b, whole := body.complete()
	if whole {
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
		if len(b) > 0 && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		opts.ExcludeRequestBody = true
		req.Body = http.NoBody
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: &opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return sp.checkRefusal(status, respBody, "the request does not match the document: "+oneLine(err))
	}
	sse := strings.HasPrefix(header.Get("Content-Type"), "text/event-stream")
	if truncated && !sse {
		return "" // over maxKept: no answer but a snapshot or a stream is (a stream's kept messages are checked)
	}
	ropts := opts
	ropts.ExcludeResponseBody = sse
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: &ropts}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return "the answer does not match the document: " + oneLine(err)
	}
	if status >= 400 {
		if msg := sp.checkErrorCode(route.Operation, status, respBody); msg != "" {
			return msg
		}
	}
	if sse {
		return sp.checkEvents(route.Operation, status, respBody)
	}
	return ""
}

// checkRefusal checks the answer to a request the document does not
// allow: a 4xx error object with a code that blames the request.
func (sp *spec) checkRefusal(status int, body []byte, why string) string {
	code, err := sp.errorBody(body)
	switch {
	case status < 400 || status >= 500:
		return fmt.Sprintf("%s, but the server answered %d %.200s", why, status, body)
	case err != nil:
		return fmt.Sprintf("%s; the server refused it, but its answer is not an error object: %v", why, err)
	case !badRequestCodes[code]:
		return fmt.Sprintf("%s, but the server answered %s, not a code that blames the request", why, code)
	}
	return sp.codeOfStatus(status, code)
}

// errorBody validates body as an ErrorResponse and returns its code.
func (sp *spec) errorBody(body []byte) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", err
	}
	if err := sp.errSchema.VisitJSON(v, sp.schemaOpts()...); err != nil {
		return "", errors.New(oneLine(err))
	}
	var e api.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil {
		return "", err
	}
	return e.Error.Code, nil
}

// codeOfStatus reports an error code that the document does not list for
// status.
func (sp *spec) codeOfStatus(status int, code string) string {
	for _, c := range sp.errCodes[status] {
		if c == code {
			return ""
		}
	}
	return fmt.Sprintf("error code %q with status %d: the document lists %q for %d", code, status, sp.errCodes[status], status)
}

// checkErrorCode checks that an error answer's code is one its
// response lists.
func (sp *spec) checkErrorCode(op *openapi3.Operation, status int, body []byte) string {
	var e api.ErrorResponse // its schema was checked by ValidateResponse
	if err := json.Unmarshal(body, &e); err != nil {
		return "an error answer that is not an error object: " + err.Error()
	}
	code := e.Error.Code
	r := op.Responses.Status(status)
	codes, _ := r.Value.Extensions["x-error-codes"].([]any)
	for _, c := range codes {
		if c == code {
			return ""
		}
	}
	return fmt.Sprintf("error code %q: the operation's %d answer lists %v", code, status, codes)
}

func (sp *spec) schemaOpts() []openapi3.SchemaValidationOption {
	opts := []openapi3.SchemaValidationOption{openapi3.VisitAsResponse()}
	if sp.doc.IsOpenAPI31OrLater() {
		opts = append(opts, openapi3.EnableJSONSchema2020())
	}
	return opts
}

// checkEvents validates the complete messages of a Server-Sent Events
// answer: each event name must be one the media type's x-sse-events
// names, its data valid JSON of that schema.
func (sp *spec) checkEvents(op *openapi3.Operation, status int, body []byte) string {
	mt := op.Responses.Status(status).Value.Content.Get("text/event-stream")
	if mt == nil {
		return "a text/event-stream answer that the operation does not document"
	}
	events, _ := mt.Extensions["x-sse-events"].(map[string]any)
	if events == nil {
		return "a text/event-stream answer without x-sse-events in the document"
	}
	msgs := strings.Split(string(body), "\n\n")
	msgs = msgs[:len(msgs)-1] // the last is incomplete (or empty)
	for _, m := range msgs {
		var event, data string
		for _, line := range strings.Split(m, "\n") {
			switch {
			case strings.HasPrefix(line, ":"): // a comment
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, "id: "):
				if _, ok := parseDecimal(strings.TrimPrefix(line, "id: ")); !ok {
					return fmt.Sprintf("SSE message %.200q: its id is not a revision", m)
				}
			default:
				return fmt.Sprintf("SSE message %.200q: unexpected line %q", m, line)
			}
		}
		if event == "" && data == "" {
			continue // comments only
		}
		ref, _ := events[event].(string)
		schema := sp.doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		if schema == nil {
			return fmt.Sprintf("SSE event %q is not in the document's x-sse-events %v", event, events)
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return fmt.Sprintf("SSE event %q: data is not JSON: %v", event, err)
		}
		if err := schema.Value.VisitJSON(v, sp.schemaOpts()...); err != nil {
			return fmt.Sprintf("SSE event %q: data does not match %s: %s", event, ref, oneLine(err))
		}
	}
	return ""
}

// oneLine shortens a validation error to its first lines.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\nSchema:"); i >= 0 {
		s = s[:i]
	}
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
