package fence_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlock/raftlock/client/fence"
)

// TestMiddleware sends one request after another through a Guard's
// middleware and checks each answer's status and body.
func TestMiddleware(t *testing.T) {
	var g fence.Guard
	var served []string
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = append(served, r.Method+" "+r.Header.Get(fence.HeaderToken))
		if r.Context().Err() != nil {
			t.Errorf("%s: the context is done: %v", r.Method, context.Cause(r.Context()))
		}
		io.WriteString(w, "ok\n")
	}))
	steps := []struct {
		method string
		header map[string][]string
		status int
		body   string
	}{
		// Reads pass without headers, and their headers record nothing.
		{method: "GET", status: 200, body: "ok\n"},
		{method: "HEAD", status: 200, body: "ok\n"},
		{method: "OPTIONS", status: 200, body: "ok\n"},
		{method: "GET", header: hdr("docs", "99"), status: 200, body: "ok\n"},

		// Every other method needs both headers, well formed.
		{method: "PUT", status: 400, body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Lock is missing"}}`},
		{method: "DELETE", header: map[string][]string{"Raftlock-Lock": {"docs"}}, status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token is missing"}}`},
		{method: "POST", header: map[string][]string{"Raftlock-Fencing-Token": {"10"}}, status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Lock is missing"}}`},
		{method: "PUT", header: hdr("docs", "0"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token is 0: fencing tokens start at 1"}}`},
		{method: "PUT", header: hdr("docs", ""), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token is empty"}}`},
		{method: "PUT", header: hdr("docs", "010"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token \"010\" has a leading zero"}}`},
		{method: "PUT", header: hdr("docs", "-1"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token \"-1\" is not a decimal number"}}`},
		{method: "PUT", header: hdr("docs", "+10"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token \"+10\" is not a decimal number"}}`},
		{method: "PUT", header: hdr("docs", "18446744073709551616"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token \"18446744073709551616\" is above 2^64-1"}}`},
		{method: "PUT", header: map[string][]string{"Raftlock-Lock": {"docs"}, "Raftlock-Fencing-Token": {"10", "12"}}, status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Fencing-Token is given 2 times"}}`},
		{method: "PUT", header: hdr("a b", "10"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Lock: lock name \"a b\" has the character ' ' at byte 1: only ASCII letters, digits and . _ - : / are allowed"}}`},
		{method: "PUT", header: hdr("docs/", "10"), status: 400,
			body: `{"error":{"code":"invalid_argument","message":"header Raftlock-Lock: lock name \"docs/\" has an empty segment at byte 5: no leading or trailing '/', no \"//\""}}`},

		// Holder A (10) writes twice; B (12) writes; A's late write is refused.
		{method: "PUT", header: hdr("docs", "10"), status: 200, body: "ok\n"},
		{method: "PUT", header: hdr("docs", "10"), status: 200, body: "ok\n"},
		{method: "PATCH", header: hdr("docs", "12"), status: 200, body: "ok\n"},
		{method: "PUT", header: hdr("docs", "10"), status: 409,
			body: `{"error":{"code":"stale_token","message":"stale token 10 for lock \"docs\": 12 was accepted","highest":12}}`},
		{method: "DELETE", header: hdr("docs", "11"), status: 409,
			body: `{"error":{"code":"stale_token","message":"stale token 11 for lock \"docs\": 12 was accepted","highest":12}}`},
		{method: "PUT", header: hdr("other", "11"), status: 200, body: "ok\n"}, // another name
		{method: "GET", header: hdr("docs", "10"), status: 200, body: "ok\n"},  // a stale reader still reads
		{method: "POST", header: hdr("docs", "18446744073709551615"), status: 200, body: "ok\n"},
	}
	for i, s := range steps {
		r := httptest.NewRequest(s.method, "/files/a", strings.NewReader("data"))
		for k, v := range s.header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := strings.TrimSuffix(w.Body.String(), "\n")
		if w.Code != s.status || body != strings.TrimSuffix(s.body, "\n") {
			t.Errorf("step %d: %s %v: %d %s\nwant %d %s", i, s.method, s.header, w.Code, body, s.status, s.body)
		}
		if s.status != 200 {
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("step %d: Content-Type %q", i, ct)
			}
		}
	}
	want := []string{"GET ", "HEAD ", "OPTIONS ", "GET 99", "PUT 10", "PUT 10", "PATCH 12", "PUT 11", "GET 10", "POST 18446744073709551615"}
	if strings.Join(served, ",") != strings.Join(want, ",") {
		t.Errorf("served %q\nwant   %q", served, want)
	}
	if h := g.Highest("docs"); h != 1<<64-1 {
		t.Errorf("Highest(docs) = %d", h)
	}
}

// TestMiddlewareInFlight: holder A's write is still in the handler when B's
// arrives. A's request context is cancelled with a stale cause, so A's
// handler answers 409 and returns; only then does B's handler run.
func TestMiddlewareInFlight(t *testing.T) {
	var g fence.Guard
	inA := make(chan struct{})
	var order []string // appended by handlers, which the Guard serialises here
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get(fence.HeaderToken)
		if token == "10" {
			close(inA)
			<-r.Context().Done() // a slow write, which gives up when told
			order = append(order, "A gave up")
			if err := context.Cause(r.Context()); errors.Is(err, fence.ErrStale) {
				fence.WriteError(w, err)
				return
			}
			t.Errorf("A's cause: %v", context.Cause(r.Context()))
			return
		}
		order = append(order, "B writes")
		io.WriteString(w, "ok\n")
	}))
	serve := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("PUT", "/files/a", nil)
		r.Header.Set(fence.HeaderLock, "docs")
		r.Header.Set(fence.HeaderToken, token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	aC := make(chan *httptest.ResponseRecorder, 1)
	go func() { aC <- serve("10") }()
	<-inA
	wB := serve("12")
	wA := <-aC
	if wA.Code != 409 || !strings.Contains(wA.Body.String(), `"code":"stale_token"`) || !strings.Contains(wA.Body.String(), `"highest":12`) {
		t.Errorf("A: %d %s", wA.Code, wA.Body)
	}
	if wB.Code != 200 {
		t.Errorf("B: %d %s", wB.Code, wB.Body)
	}
	if got := strings.Join(order, ", "); got != "A gave up, B writes" {
		t.Errorf("order: %s", got)
	}
}

// TestMiddlewareClientGone: B gives up while A's request runs: 503.
func TestMiddlewareClientGone(t *testing.T) {
	var g fence.Guard
	_, releaseA, err := g.Enter(context.Background(), "docs", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("B served while A runs")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "PUT", "/files/a", nil)
	fence.SetHeaders(r.Header, "docs", 12)
	w := httptest.NewRecorder()
	cancel()
	h.ServeHTTP(w, r)
	want := `{"error":{"code":"unavailable","message":"fence: wait for the requests of lower tokens of lock \"docs\": context canceled"}}` + "\n"
	if w.Code != 503 || w.Body.String() != want {
		t.Errorf("%d %s\nwant 503 %s", w.Code, w.Body, want)
	}
}

func TestHeaders(t *testing.T) {
	h := http.Header{}
	h.Add(fence.HeaderToken, "1") // replaced
	fence.SetHeaders(h, "jobs/nightly", 18446744073709551615)
	if got := h.Values("Raftlock-Fencing-Token"); len(got) != 1 || got[0] != "18446744073709551615" {
		t.Errorf("token header: %q", got)
	}
	name, token, err := fence.ParseHeaders(h)
	if err != nil || name != "jobs/nightly" || token != 18446744073709551615 {
		t.Errorf("ParseHeaders = %q, %d, %v", name, token, err)
	}
	fence.SetHeaders(h, "x", 0)
	if _, _, err := fence.ParseHeaders(h); !errors.Is(err, fence.ErrInvalidArgument) {
		t.Errorf("token 0: %v", err)
	}
}

func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		body   string
	}{
		{&fence.StaleError{Name: "a", Token: 1, Highest: 2}, 409,
			`{"error":{"code":"stale_token","message":"stale token 1 for lock \"a\": 2 was accepted","highest":2}}`},
		{fence.ErrStale, 409, `{"error":{"code":"stale_token","message":"fence: stale token"}}`},
		{fence.ErrInvalidArgument, 400, `{"error":{"code":"invalid_argument","message":"fence: invalid argument"}}`},
		{errors.New("disk <full>"), 503, `{"error":{"code":"unavailable","message":"disk <full>"}}`},
	} {
		w := httptest.NewRecorder()
		fence.WriteError(w, c.err)
		if w.Code != c.status || w.Body.String() != c.body+"\n" {
			t.Errorf("%v: %d %s\nwant %d %s", c.err, w.Code, w.Body, c.status, c.body)
		}
	}
}

func hdr(name, token string) map[string][]string {
	return map[string][]string{fence.HeaderLock: {name}, fence.HeaderToken: {token}}
}
