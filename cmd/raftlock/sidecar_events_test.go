package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// sseMsg is one Server-Sent Events message.
type sseMsg struct {
	id, event string
	data      map[string]any
}

// sseStream reads the messages of GET url in the background.
func sseStream(t *testing.T, url string) <-chan sseMsg {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req) // no timeout: a stream
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	c := make(chan sseMsg, 16)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(resp.Body)
		var m sseMsg
		for sc.Scan() {
			field, value, _ := strings.Cut(sc.Text(), ": ")
			switch field {
			case "id":
				m.id = value
			case "event":
				m.event = value
			case "data":
				if err := json.Unmarshal([]byte(value), &m.data); err != nil {
					t.Errorf("GET %s: data %q: %v", url, value, err)
					return
				}
			case "":
				if m.data != nil {
					c <- m
				}
				m = sseMsg{}
			}
		}
	}()
	return c
}

func nextMsg(t *testing.T, what string, c <-chan sseMsg) sseMsg {
	t.Helper()
	select {
	case m, ok := <-c:
		if !ok {
			t.Fatalf("%s ended", what)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no message on %s within 10s", what)
	}
	return sseMsg{}
}

// The sidecar's /events forwards the server's observe stream message for
// message, with every field: a leader that resigns and is succeeded in the
// same log entry comes with "changes":["resigned","elected"] on both.
func TestSidecarEventsForwardEveryField(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	a := r.session("30s", "host-a")
	term := r.campaign("web", a, "pod-a").Term
	b := r.session("30s", "host-b")
	queued := r.queue(t, "web", b, "pod-b")
	sc, url := startSidecar(t, env, "--election", "web", "--id", "pod-c", "--ttl", "30s")
	await.True(t, 10*time.Second, "the sidecar queued", func() bool { return len(r.election("web").Candidates) == 2 })

	server := sseStream(t, s.URL+"/v1/elections/web/observe")
	side := sseStream(t, url+"/events")
	// The state: the same but for the revision it was read at.
	st, sst := nextMsg(t, "observe", server), nextMsg(t, "/events", side)
	delete(st.data, "revision")
	delete(sst.data, "revision")
	if st.event != api.SSEState || sst.event != api.SSEState || !reflect.DeepEqual(st.data, sst.data) {
		t.Errorf("state:\n  server  %s %v\n  sidecar %s %v", st.event, st.data, sst.event, sst.data)
	}

	// pod-a resigns: pod-b leads, in one entry. Then pod-b's session is
	// closed: the sidecar leads, in one entry.
	r.do("POST", "/v1/elections/web/resign", `{"session":"`+a.String()+`","term":`+jsonNumber(term)+`}`, nil)
	<-queued
	r.do("DELETE", api.SessionPath(b), "", nil)
	for i, want := range [][]any{{"resigned", "elected"}, {"resigned", "elected"}} {
		m, sm := nextMsg(t, "observe", server), nextMsg(t, "/events", side)
		if !reflect.DeepEqual(m, sm) {
			t.Errorf("change %d:\n  server  %+v\n  sidecar %+v", i, m, sm)
		}
		if got, _ := sm.data["changes"].([]any); !reflect.DeepEqual(got, want) || sm.event != api.SSEChange || sm.id == "" {
			t.Errorf("change %d on /events: %+v, want changes %v", i, sm, want)
		}
	}
	sc.cancel()
	if code := sc.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("sidecar exit %d", code)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
