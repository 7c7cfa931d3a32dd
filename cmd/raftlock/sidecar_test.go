package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startSidecar runs a sidecar in process and returns it with its base URL,
// read from its first stderr line.
func startSidecar(t *testing.T, env map[string]string, args ...string) (*bg, string) {
	t.Helper()
	b := startCLI(t, env, append([]string{"sidecar", "--listen", "127.0.0.1:0"}, args...)...)
	m := listeningRE.FindStringSubmatch(b.errOut.find(t, "listening on", 10*time.Second))
	if m == nil {
		t.Fatalf("no address in stderr:\n%s", b.errOut)
	}
	return b, m[1]
}

var sidecarHC = &http.Client{Timeout: 5 * time.Second}

// get returns the status and the JSON body of GET url.
func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := sidecarHC.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %d %q is not JSON", url, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// sseReader reads Server-Sent Events messages.
type sseReader struct{ sc *bufio.Scanner }

func (s *sseReader) next() (event, data string, err error) {
	for s.sc.Scan() {
		l := s.sc.Text()
		switch {
		case l == "" && data != "":
			return event, data, nil
		case strings.HasPrefix(l, "event: "):
			event = strings.TrimPrefix(l, "event: ")
		case strings.HasPrefix(l, "data: "):
			data = strings.TrimPrefix(l, "data: ")
		}
	}
	if err := s.sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", fmt.Errorf("stream ended")
}

// Two sidecars on one election: the endpoints of the leader and of the
// follower, /events, the status file, and a hand-over by resign when the
// leader stops.
func TestSidecarEndpoints(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	status := filepath.Join(t.TempDir(), "leader.json")

	// A TTL of 30s: only a resign hands over within the test's bounds.
	a, aURL := startSidecar(t, env, "--election", "web", "--id", "pod-a", "--ttl", "30s", "--status-file", status)
	await.True(t, 10*time.Second, "pod-a ready", func() bool { code, _ := get(t, aURL+"/ready"); return code == 200 })
	el := r.election("web")
	if el.Leader == nil || el.Leader.Value != "pod-a" {
		t.Fatalf("election: %+v", el.Leader)
	}
	term := float64(el.Leader.Term)
	if code, body := get(t, aURL+"/"); code != 200 || body["name"] != "pod-a" || len(body) != 1 {
		t.Errorf("GET / of the leader: %d %v", code, body)
	}
	code, body := get(t, aURL+"/leader")
	if code != 200 || body["name"] != "pod-a" || body["term"] != term || body["is_leader"] != true {
		t.Errorf("GET /leader of the leader: %d %v (term %v)", code, body, term)
	}
	if since, err := time.Parse(time.RFC3339, fmt.Sprint(body["since"])); err != nil || time.Since(since) > time.Minute {
		t.Errorf("since %v: %v", body["since"], err)
	}
	if code, body := get(t, aURL+"/ready"); code != 200 || body["term"] != term || body["is_leader"] != true {
		t.Errorf("GET /ready of the leader: %d %v", code, body)
	}
	if code, _ := get(t, aURL+"/healthz"); code != 200 {
		t.Errorf("GET /healthz: %d", code)
	}
	var file map[string]any
	await.True(t, 10*time.Second, "status file names pod-a as leader", func() bool {
		b, err := os.ReadFile(status)
		file = nil
		return err == nil && json.Unmarshal(b, &file) == nil && file["is_leader"] == true && file["term"] == term && file["name"] == "pod-a"
	})
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(status), ".*tmp*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %q", leftovers)
	}

	b, bURL := startSidecar(t, env, "--election", "web", "--id", "pod-b", "--ttl", "30s")
	await.True(t, 10*time.Second, "pod-b queued", func() bool { return len(r.election("web").Candidates) == 1 })
	await.True(t, 10*time.Second, "pod-b sees pod-a", func() bool { _, body := get(t, bURL+"/"); return body["name"] == "pod-a" })
	if code, body := get(t, bURL+"/ready"); code != 503 || body["is_leader"] != false || body["name"] != "pod-a" || body["term"] != term {
		t.Errorf("GET /ready of the follower: %d %v", code, body)
	}
	if code, body := get(t, bURL+"/leader"); code != 200 || body["is_leader"] != false || body["name"] != "pod-a" {
		t.Errorf("GET /leader of the follower: %d %v", code, body)
	}
	if code, _ := get(t, bURL+"/healthz"); code != 200 {
		t.Errorf("GET /healthz of the follower: %d", code)
	}

	// /events on the follower: the state, then the hand-over.
	resp, err := http.Get(bURL + "/events") // no client timeout: a stream
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events: %d %v", resp.StatusCode, resp.Header)
	}
	evC := make(chan api.LeaderEvent, 10)
	go func() {
		defer close(evC)
		sr := &sseReader{sc: bufio.NewScanner(resp.Body)}
		for {
			ev, data, err := sr.next()
			if err != nil {
				return
			}
			var le api.LeaderEvent
			if json.Unmarshal([]byte(data), &le) != nil || (ev == "state") != (le.Type == "state") {
				t.Errorf("SSE message %s %q", ev, data)
				return
			}
			evC <- le
		}
	}()
	nextEv := func() api.LeaderEvent {
		t.Helper()
		select {
		case ev, ok := <-evC:
			if !ok {
				t.Fatal("/events ended")
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event on /events within 10s")
		}
		return api.LeaderEvent{}
	}
	if ev := nextEv(); ev.Type != "state" || ev.Leader == nil || ev.Leader.Value != "pod-a" {
		t.Fatalf("first event %+v", ev)
	}

	stopped := time.Now()
	a.cancel() // as SIGTERM: resigns
	if code := a.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("pod-a exit %d; stderr:\n%s", code, a.errOut)
	}
	await.True(t, 10*time.Second, "pod-b ready after pod-a stopped", func() bool { code, _ := get(t, bURL+"/ready"); return code == 200 })
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("hand-over took %v: no resign?", d)
	}
	ev := nextEv()
	if ev.Type == "resigned" {
		ev = nextEv()
	}
	if ev.Type != "elected" || ev.Leader == nil || ev.Leader.Value != "pod-b" || ev.Leader.Term <= uint64(term) {
		t.Errorf("event after pod-a stopped: %+v", ev)
	}
	if bf, err := os.ReadFile(status); err != nil || !strings.Contains(string(bf), `"is_leader":false`) {
		t.Errorf("pod-a's status file after it stopped: %s %v", bf, err)
	}
	b.cancel()
	if code := b.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("pod-b exit %d", code)
	}
	if el := r.election("web"); el.Leader != nil || len(el.Candidates) != 0 {
		t.Errorf("election after both stopped: %+v", el)
	}
}

// A sidecar's CMD runs while it leads, with the election's variables; when
// CMD exits by itself the sidecar resigns and exits with CMD's code.
func TestSidecarCmdExitCode(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	b, _ := startSidecar(t, env, "--election", "job", "--id", "p1", "--ttl", "30s", "--", "sh", "-c", `echo "run $RAFTLOCK_NAME $RAFTLOCK_TERM $RAFTLOCK_VALUE"; exit 3`)
	l := b.out.next(t, 10*time.Second)
	f := strings.Fields(l)
	if len(f) != 4 || f[0] != "run" || f[1] != "job" || f[3] != "p1" {
		t.Fatalf("CMD said %q", l)
	}
	if _, err := strconv.ParseUint(f[2], 10, 64); err != nil || f[2] == "0" {
		t.Errorf("RAFTLOCK_TERM %q", f[2])
	}
	if code := b.wait(t, 10*time.Second); code != 3 {
		t.Errorf("exit %d, want CMD's 3; stderr:\n%s", code, b.errOut)
	}
	if el := r.election("job"); el.Leader != nil {
		t.Errorf("still led after the sidecar stopped: %+v", el.Leader)
	}
}

// A TTL the cluster refuses ends the sidecar with exit 1 and a message.
func TestSidecarRefusedTTL(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	b := startCLI(t, env, "sidecar", "--listen", "127.0.0.1:0", "--election", "web", "--id", "a", "--ttl", "10ms")
	if code := b.wait(t, 10*time.Second); code != exitError || !strings.Contains(b.errOut.String(), "raftlock: election web: ") {
		t.Errorf("exit %d, want 1; stderr:\n%s", code, b.errOut)
	}
}

// A sidecar's CMD runs only while it leads: when the leadership is lost
// CMD gets SIGTERM, and when the sidecar leads again CMD runs again with
// the new term.
func TestSidecarCmdOnlyWhileLeading(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	r := newREST(t, s.URL)
	env := map[string]string{"RAFTLOCK_ENDPOINTS": s.URL}
	b, _ := startSidecar(t, env, "--election", "job", "--id", "p1", "--ttl", "30s", "--",
		"sh", "-c", `trap 'echo "stop $RAFTLOCK_TERM"; exit 0' TERM; echo "start $RAFTLOCK_TERM"; while true; do sleep 0.1; done`)
	term1 := strings.TrimPrefix(b.out.next(t, 10*time.Second), "start ")
	el := r.election("job")
	if el.Leader == nil || strconv.FormatUint(el.Leader.Term, 10) != term1 {
		t.Fatalf("CMD started with term %s; election %+v", term1, el.Leader)
	}
	r.do("DELETE", api.SessionPath(el.Leader.Session), "", nil)
	if l := b.out.next(t, 10*time.Second); l != "stop "+term1 {
		t.Fatalf("after the session was closed CMD said %q, want stop %s", l, term1)
	}
	l := b.out.next(t, 10*time.Second)
	term2 := strings.TrimPrefix(l, "start ")
	if !strings.HasPrefix(l, "start ") || mustUint(t, term2) <= mustUint(t, term1) {
		t.Fatalf("CMD said %q, want start with a term above %s", l, term1)
	}
	b.cancel()
	if l := b.out.next(t, 10*time.Second); l != "stop "+term2 {
		t.Errorf("on stop CMD said %q", l)
	}
	if code := b.wait(t, 10*time.Second); code != exitOK {
		t.Errorf("exit %d; stderr:\n%s", code, b.errOut)
	}
	if el := r.election("job"); el.Leader != nil {
		t.Errorf("still led after the sidecar stopped: %+v", el.Leader)
	}
}
