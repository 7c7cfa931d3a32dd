package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// cutProxy is a reverse proxy in front of a server whose streams the test
// can cut, and which it can refuse requests through meanwhile.
type cutProxy struct {
	rp *httputil.ReverseProxy

	mu      sync.Mutex
	down    bool
	streams map[int]context.CancelFunc
	next    int
	lastIDs []string // Last-Event-ID of every observe request let through
}

func newCutProxy(t *testing.T, target string) (*cutProxy, *httptest.Server) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{rp: httputil.NewSingleHostReverseProxy(u), streams: map[int]context.CancelFunc{}}
	p.rp.FlushInterval = -1
	p.rp.ErrorLog = nil
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	return p, ts
}

func (p *cutProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		http.Error(w, "proxy down", http.StatusServiceUnavailable)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/observe") {
		p.lastIDs = append(p.lastIDs, r.Header.Get(api.HeaderLastEventID))
	}
	id := p.next
	p.next++
	p.streams[id] = cancel
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.streams, id)
		p.mu.Unlock()
	}()
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// cut refuses new requests and breaks the ones under way.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, cancel := range p.streams {
		cancel()
	}
}

func (p *cutProxy) up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *cutProxy) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lastIDs...)
}

// nextEvent returns the next event of ch, failing the test after 10s.
func nextEvent(t *testing.T, ch <-chan LeaderEvent) LeaderEvent {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("observe channel closed")
		}
		return ev
	case <-timer.C:
		t.Fatal("no event within 10s")
	}
	return LeaderEvent{}
}

// describe is "type session value" of ev, "type -" with no leader.
func describe(ev LeaderEvent) string {
	if ev.Leader == nil {
		return ev.Type + " -"
	}
	return fmt.Sprintf("%s %s %s", ev.Type, ev.Leader.Session, ev.Leader.Value)
}

// drain cancels an Observe and waits for its channel to close.
func drain(cancel context.CancelFunc, ch <-chan LeaderEvent) {
	cancel()
	for range ch {
	}
}

func TestObserveInOrderAndResumesAfterCut(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c := newClient(t, srv.URL)
	ctx := testCtx(t)
	proxy, pts := newCutProxy(t, srv.URL)
	oc := newClient(t, pts.URL)
	s1 := newSession(t, c, time.Second)
	s2 := newSession(t, c, time.Second)
	e1, e2 := s1.NewElection("obs"), s2.NewElection("obs")

	octx, ocancel := context.WithCancel(ctx)
	ch := oc.Observe(octx, "obs")
	defer drain(ocancel, ch)
	var last uint64
	expect := func(want string) LeaderEvent {
		t.Helper()
		ev := nextEvent(t, ch)
		if ev.Type == "resigned" && ev.Leader == nil && !strings.HasPrefix(want, "resigned") {
			// The server split one entry's events (resigned, then the
			// outcome) into two messages with the same revision.
			next := nextEvent(t, ch)
			if next.Revision != ev.Revision {
				t.Fatalf("resigned at %d followed by %s at %d", ev.Revision, describe(next), next.Revision)
			}
			ev = next
		}
		if got := describe(ev); got != want {
			t.Fatalf("event %s (revision %d), want %s", got, ev.Revision, want)
		}
		if ev.Revision <= last {
			t.Fatalf("revision %d after %d", ev.Revision, last)
		}
		last = ev.Revision
		return ev
	}
	expect("state -")
	if err := e1.Campaign(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	if ev := expect(fmt.Sprintf("elected %s A", s1.ID())); ev.Leader.Term != e1.Term() || ev.Revision != e1.Term() {
		t.Fatalf("elected event %+v, term %d", ev.Leader, e1.Term())
	}
	if err := e1.Proclaim(ctx, "A2"); err != nil {
		t.Fatal(err)
	}
	expect(fmt.Sprintf("proclaimed %s A2", s1.ID()))
	beforeCut := last

	// Cut the stream and keep it down while the election changes.
	proxy.cut()
	done := make(chan error, 1)
	go func() { done <- e2.Campaign(ctx, "B") }()
	await.True(t, 5*time.Second, "queued", func() bool {
		el, err := c.ElectionInfo(ctx, "obs")
		return err == nil && len(el.Candidates) == 1
	})
	if err := e1.Resign(ctx); err != nil { // s2 leads
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := e2.Resign(ctx); err != nil { // nobody leads
		t.Fatal(err)
	}
	if err := e1.Campaign(ctx, "C"); err != nil {
		t.Fatal(err)
	}
	proxy.up()

	expect(fmt.Sprintf("elected %s B", s2.ID()))
	expect("no_leader -")
	expect(fmt.Sprintf("elected %s C", s1.ID()))
	// Nothing else came in between: the next event is the next change.
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	expect("no_leader -")

	ids := proxy.ids()
	if len(ids) < 2 || ids[0] != "" {
		t.Fatalf("observe requests' Last-Event-ID: %q", ids)
	}
	for _, id := range ids[1:] {
		if id != strconv.FormatUint(beforeCut, 10) {
			t.Fatalf("reconnected with Last-Event-ID %q, want %d (all: %q)", id, beforeCut, ids)
		}
	}
}

// fakeStream serves scripted observe streams: connection i gets script i
// (the last one repeats) and the Last-Event-ID it sent is recorded.
type fakeStream struct {
	mu      sync.Mutex
	scripts []string
	n       int
	lastIDs []string
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	script := f.scripts[min(f.n, len(f.scripts)-1)]
	last := f.n >= len(f.scripts)-1
	f.n++
	f.lastIDs = append(f.lastIDs, r.Header.Get(api.HeaderLastEventID))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(script))
	w.(http.Flusher).Flush()
	if last {
		<-r.Context().Done() // the last script stays open
	}
}

func (f *fakeStream) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastIDs...)
}

func sseMessage(event string, rev uint64, typ, leader string) string {
	l := "null"
	if leader != "" {
		l = fmt.Sprintf(`{"session":"7","owner":"","value":%q,"term":%d,"since":"2026-01-01T00:00:00Z"}`, leader, rev)
	}
	return fmt.Sprintf("id: %d\nevent: %s\ndata: {\"revision\":%d,\"type\":%q,\"leader\":%s}\n\n", rev, event, rev, typ, l)
}

func TestObserveReReadsStateWhenCompacted(t *testing.T) {
	f := &fakeStream{scripts: []string{
		// 1: state, a change split in two messages of one revision, then
		// the server drops the stream.
		": hello\n\n" + sseMessage("state", 10, "state", "x") + sseMessage("change", 12, "resigned", "") + sseMessage("change", 12, "elected", "y") + ": stream ended; reconnect with Last-Event-ID to resume\n\n",
		// 2: the resume after 12 is not possible.
		"event: error\ndata: {\"error\":{\"code\":\"compacted\",\"message\":\"gone\"}}\n\n",
		// 3: a fresh read from a node that lags (older than 12: not
		// delivered), repeating 12, then news; then it ends.
		sseMessage("state", 11, "state", "x") + sseMessage("change", 12, "elected", "y") + sseMessage("change", 15, "no_leader", ""),
		// 4: resume after 15: compacted again.
		"event: error\ndata: {\"error\":{\"code\":\"compacted\"}}\n\n",
		// 5: a fresh read at 20, kept open with a keep-alive.
		sseMessage("state", 20, "state", "z") + ": keep-alive\n\n",
	}}
	ts := httptest.NewServer(f)
	defer ts.Close()
	c := newClient(t, ts.URL)
	ctx, cancel := context.WithCancel(testCtx(t))
	ch := c.Observe(ctx, "fake")
	defer drain(cancel, ch)
	want := []string{"state 7 x", "resigned -", "elected 7 y", "no_leader -", "state 7 z"}
	wantRev := []uint64{10, 12, 12, 15, 20}
	for i, w := range want {
		ev := nextEvent(t, ch)
		if got := describe(ev); got != w || ev.Revision != wantRev[i] {
			t.Fatalf("event %d: %s at %d, want %s at %d", i, got, ev.Revision, w, wantRev[i])
		}
	}
	if got, want := strings.Join(f.ids(), ","), ",12,,15,"; got != want {
		t.Fatalf("Last-Event-ID of the connections %q, want %q", got, want)
	}
}

func TestObserveInvalidNameClosesAtOnce(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1")
	ch := c.Observe(context.Background(), "no spaces allowed")
	if _, ok := <-ch; ok {
		t.Fatal("event for an invalid name")
	}
}
