package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
)

// FuzzHTTPRequest sends arbitrary requests (method, path with query, body,
// and a Last-Event-ID value) to the real handler over the fake node: the
// answer is never 5xx and never a panic (the recover middleware would turn
// one into a 500), and every answer that is not a stream is one JSON object,
// with a non-empty error code and message for a 4xx. Requests run under a
// 100 ms context, which ends streams and waits; an answer that comes only
// because that context ended is not judged.
//
//	go test -run='^$' -fuzz=FuzzHTTPRequest -fuzztime=45s ./httpapi
func FuzzHTTPRequest(f *testing.F) {
	node := newFakeNode()
	cfg := DefaultConfig()
	cfg.Node = node
	cfg.AllowedHosts = []string{"raftlock.test"} // the Host the fuzzed requests name
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	serve := func(ctx context.Context, method, path, body, lastID string) (*httptest.ResponseRecorder, bool) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://raftlock.test"+path, strings.NewReader(body))
		if err != nil {
			return nil, false // not a request a client could send
		}
		if lastID != "" {
			req.Header.Set(api.HeaderLastEventID, lastID)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec, true
	}
	// Some state to act on: session 1 holds lock "held" and leads "el".
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/sessions", `{"ttl":"10s","owner":"a"}`},
		{"POST", "/v1/sessions", `{"ttl":"10s","owner":"b"}`},
		{"POST", "/v1/locks/held/acquire", `{"session":"1"}`},
		{"POST", "/v1/elections/el/campaign", `{"session":"1","value":"v"}`},
	} {
		if rec, _ := serve(context.Background(), r.method, r.path, r.body, ""); rec.Code >= 300 {
			f.Fatalf("%s %s: %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}

	seeds := []struct{ method, path, body, hdr string }{
		{"GET", "/v1/status", "", ""},
		{"GET", "/v1/locks?prefix=h", "", ""},
		{"GET", "/v1/locks/held?consistency=stale", "", ""},
		{"GET", "/v1/sessions/1", "", ""},
		{"POST", "/v1/sessions", `{"ttl":"10s"}`, ""},
		{"POST", "/v1/sessions", `{"ttl":"1e30s"}`, ""},
		{"POST", "/v1/sessions/1/keepalive", "", ""},
		{"DELETE", "/v1/sessions/999", "", ""},
		{"POST", "/v1/locks/free/acquire", `{"session":"2"}`, ""},
		{"POST", "/v1/locks/held/acquire", `{"session":"2","wait":"1s"}`, ""},
		{"POST", "/v1/locks/held/release", `{"session":"2","token":3}`, ""},
		{"POST", "/v1/locks/held/release", `{"session":"1","token":1e30}`, ""},
		{"POST", "/v1/locks/held/release", `{"session":"1","token":18446744073709551616}`, ""},
		{"POST", "/v1/locks/x%2Facquire/acquire", `{"ttl":"5s"}`, ""},
		{"POST", "/v1/locks//acquire", `{"session":"1"}`, ""},
		{"GET", "/v1/locks/%C3%A9", "", ""},
		{"POST", "/v1/elections/el/campaign", `{"session":"2","value":"w","wait":"1s"}`, ""},
		{"POST", "/v1/elections/el/proclaim", `{"session":"2","term":4,"value":"x"}`, ""},
		{"POST", "/v1/elections/el/resign", `{"session":"1","term":-1}`, ""},
		{"POST", "/v1/elections/el/resign", `{"session":"2","term":4}`, ""},
		{"GET", "/v1/elections/el", "", ""},
		{"GET", "/v1/elections?prefix=e", "", ""},
		{"GET", "/v1/elections/el/observe", "", ""},
		{"GET", "/v1/elections/el/observe", "", "abc"},
		{"GET", "/v1/elections/el/observe", "", "2"},
		{"GET", "/v1/watch?prefix=", "", ""},
		{"GET", "/v1/watch", "", "18446744073709551616"},
		{"GET", "/v1/watch?after=1", "", ""},
		{"PUT", "/v1/sessions", `{"ttl":"10s"}`, ""},
		{"PATCH", "/v1/elections", "", ""},
		{"GET", "/v1/nope", "", ""},
		{"POST", "/v1/sessions", `{"ttl":"10s","owner":"x"}x`, ""},
		{"POST", "/v1/sessions", `{"ttl":"10s","foo":1}`, ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
	}
	for _, sd := range seeds {
		f.Add(sd.method, sd.path, sd.body, sd.hdr)
	}

	f.Fuzz(func(t *testing.T, method, path, body, lastID string) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		rec, ok := serve(ctx, method, path, body, lastID)
		if !ok || ctx.Err() != nil {
			return
		}
		if rec.Code >= 500 {
			t.Fatalf("%q %q %q (Last-Event-ID %q): %d %s", method, path, body, lastID, rec.Code, rec.Body)
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream") {
			return
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q %q %q: %d with a body that is not a JSON object: %q", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e api.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" || len(out) != 1 {
				t.Fatalf("%q %q %q: %d without an error code and message: %s", method, path, body, rec.Code, rec.Body)
			}
		}
	})
}
