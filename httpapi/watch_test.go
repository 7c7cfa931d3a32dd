package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
)

// sseMsg is one Server-Sent Events message.
type sseMsg struct {
	id    string
	event string
	data  string
}

// sseStream reads messages from a GET stream in a goroutine.
type sseStream struct {
	msgs   chan sseMsg
	status int
	header http.Header
	cancel context.CancelFunc
	done   chan struct{}
}

func openStream(t *testing.T, ts *httptest.Server, path string, hdr ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseStream{msgs: make(chan sseMsg, 64), status: resp.StatusCode, header: resp.Header, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.msgs)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					s.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	t.Cleanup(func() { s.cancel(); <-s.done })
	return s
}

func (s *sseStream) next(t *testing.T) sseMsg {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			t.Fatal("stream ended")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no stream message within 10s")
	}
	return sseMsg{}
}

func TestWatchStateThenChangesAndResume(t *testing.T) {
	_, ts := newTestServer(t, nil)
	id := openSession(t, ts, "w")
	must(t, ts, "POST", "/v1/locks/jobs/a/acquire", `{"session":"`+id+`"}`, 200)

	s := openStream(t, ts, "/v1/watch?prefix=jobs/")
	if s.status != 200 || !strings.HasPrefix(s.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("watch: %d %v", s.status, s.header)
	}
	st := s.next(t)
	var state api.WatchState
	if st.event != api.SSEState || json.Unmarshal([]byte(st.data), &state) != nil || len(state.Locks) != 1 || state.Locks[0].Name != "jobs/a" {
		t.Fatalf("first message %+v, want the state with jobs/a", st)
	}
	if st.id != strconv.FormatUint(state.Revision, 10) {
		t.Fatalf("state id %q, revision %d", st.id, state.Revision)
	}
	// A lock outside the prefix does not show; one inside does.
	must(t, ts, "POST", "/v1/locks/other/acquire", `{"session":"`+id+`"}`, 200)
	g := must(t, ts, "POST", "/v1/locks/jobs/b/acquire", `{"session":"`+id+`"}`, 200)
	ch := s.next(t)
	var b api.WatchBatch
	if ch.event != api.SSEChange || json.Unmarshal([]byte(ch.data), &b) != nil {
		t.Fatalf("change: %+v", ch)
	}
	if len(b.Events) != 1 || b.Events[0].Type != "lock_granted" || b.Events[0].Name != "jobs/b" || b.Events[0].Token != g.num("token") || ch.id != strconv.FormatUint(b.Revision, 10) {
		t.Fatalf("change: %+v", b)
	}
	// Closing the session frees both jobs/ locks in one entry: one message
	// with both events.
	must(t, ts, "DELETE", "/v1/sessions/"+id, "", 200)
	ch2 := s.next(t)
	var b2 api.WatchBatch
	_ = json.Unmarshal([]byte(ch2.data), &b2)
	if len(b2.Events) != 2 || b2.Events[0].Name != "jobs/a" || b2.Events[1].Name != "jobs/b" || b2.Events[1].Seq <= b2.Events[0].Seq {
		t.Fatalf("close: %s, want two lock_released events of one revision", ch2.data)
	}

	// Resume after the first change: exactly the second comes again.
	r := openStream(t, ts, "/v1/watch?prefix=jobs/", api.HeaderLastEventID, ch.id)
	again := r.next(t)
	if again.id != ch2.id || again.data != ch2.data {
		t.Fatalf("resume: %+v, want %+v", again, ch2)
	}
}

func TestWatchResumeCompactedAndBadInput(t *testing.T) {
	f, ts := newTestServer(t, nil)
	f.set(func(f *fakeNode) { f.oldest = 100 })
	s := openStream(t, ts, "/v1/watch", api.HeaderLastEventID, "3")
	m := s.next(t)
	var e api.ErrorResponse
	if m.event != api.SSEError || json.Unmarshal([]byte(m.data), &e) != nil || e.Error.Code != api.CodeCompacted {
		t.Fatalf("resume from a compacted revision: %+v", m)
	}
	for _, bad := range []string{"/v1/watch?prefix=bad%20name", "/v1/watch?after=x", "/v1/watch?consistency=eventual"} {
		if r := do(t, ts, "GET", bad, ""); r.status != 400 || r.errCode() != api.CodeInvalidArgument {
			t.Errorf("GET %s: %d %s, want 400 invalid_argument", bad, r.status, r.raw)
		}
	}
}
