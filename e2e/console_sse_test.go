package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// scriptedWatch stands in for GET /v1/watch: each connection reports its
// Last-Event-ID on conns and then writes what the test sends on writes,
// flushing after each piece, until the test sends "" (end the stream).
type scriptedWatch struct {
	conns  chan string
	writes chan string
	done   chan struct{}
}

func (sw *scriptedWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case sw.conns <- r.Header.Get("Last-Event-ID"):
	case <-sw.done:
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	for {
		select {
		case s := <-sw.writes:
			if s == "" {
				return
			}
			if _, err := io.WriteString(w, s); err != nil {
				return
			}
			f.Flush()
		case <-r.Context().Done():
			return
		case <-sw.done:
			return
		}
	}
}

// next waits for the console's next watch connection and returns its
// Last-Event-ID.
func (sw *scriptedWatch) next(t *testing.T, what string) string {
	t.Helper()
	select {
	case id := <-sw.conns:
		return id
	case <-time.After(10 * time.Second):
		t.Fatalf("the console did not connect to the watch (%s) within 10s", what)
		return ""
	}
}

// TestConsoleParsesServerSentEvents checks the console's own SSE reader in
// the browser, against a watch the test scripts (the rest of the API is a
// real node behind a proxy, so the page reads real locks): the watch opens
// with Last-Event-ID at the node's applied index; a change message cut at
// awkward places (a CR LF split between two writes, a field name split, its
// data on two data lines, comments around it) is read as one message and
// makes the page read its list again; a stream that ends is resumed with
// the id of the last message; and a "compacted" error makes the console
// start again from the node's applied index, reading the page afresh.
func TestConsoleParsesServerSentEvents(t *testing.T) {
	raftlockd(t)
	began := time.Now()
	c := startCluster(t, 1)
	m := c.leader(c.members...)
	target, err := url.Parse(m.clientURL)
	if err != nil {
		t.Fatal(err)
	}
	sw := &scriptedWatch{conns: make(chan string), writes: make(chan string), done: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.Handle("/v1/watch", sw)
	mux.Handle("/", proxy)
	ts := httptest.NewServer(mux) // before the browser: closed after it
	t.Cleanup(func() {
		close(sw.done)
		ts.Close()
	})
	b := newBrowser(t)
	defer b.logConsole()
	loads := func() int {
		n, _ := strconv.Atoi(mustEval[string](b, `document.querySelector('#main .content')?.dataset.loaded || '0'`))
		return n
	}

	b.open(ts.URL + "/ui/#/locks")
	first := sw.next(t, "first connection")
	applied, err := strconv.ParseUint(first, 10, 64)
	if err != nil || applied == 0 {
		t.Fatalf("the watch opened with Last-Event-ID %q, want the node's applied index", first)
	}
	// The page's first read, and the one after the watch started.
	b.waitFor(5*time.Second, "the page read its list twice", `Number(document.querySelector('#main .content')?.dataset.loaded) >= 2`)

	s := c.must("POST", m.clientURL+"/v1/sessions", map[string]any{"ttl": "30s", "owner": "sse"}, 201).body["id"].(string)
	tok := num(c.must("POST", m.clientURL+"/v1/locks/jobs/sse/acquire", map[string]any{"session": s}, 200).body["token"])
	before := loads()
	if r := mustEval[lockRow](b, lockRowJS("jobs/sse")); r.Found {
		t.Fatalf("the lock shows before any change message: %+v", r)
	}
	// One message in pieces: LF, CR LF and CR line ends, a comment, the
	// field name "event" cut in two, the JSON on two data lines.
	rev := applied + 1000
	for _, piece := range []string{
		": keep-alive\n\n",
		fmt.Sprintf("id: %d\r\nev", rev),
		"ent: change\r\ndata: {\"revision\":" + fmt.Sprint(rev) + ",\r",
		"\ndata: \"events\":[{\"revision\":" + fmt.Sprint(rev) + ",\"seq\":0,\"type\":\"lock_granted\",\"name\":\"jobs/sse\",\"session\":\"" + s + "\",\"token\":" + fmt.Sprint(tok) + "}]}\r",
		"\r: a comment between messages\n",
	} {
		sw.writes <- piece
	}
	row, d := b.waitLock(live, "a change message cut in pieces makes the page read the lock", "jobs/sse", holding(s, tok))
	if n := loads(); n != before+1 {
		t.Fatalf("the page read its list %d times for one change message, want once", n-before)
	}
	t.Logf("lock shown %v after the last piece: %+v", d.Round(time.Millisecond), row)

	// The stream ends: the console resumes after the last id.
	sw.writes <- ""
	if id := sw.next(t, "resume"); id != fmt.Sprint(rev) {
		t.Fatalf("resumed with Last-Event-ID %q, want %d (the last message's)", id, rev)
	}
	b.waitFor(5*time.Second, "the banner goes once the stream is back", `document.querySelector('#banner').hidden`)

	// "compacted": start again from the node's applied index, and read.
	before = loads()
	c.must("POST", m.clientURL+"/v1/locks/jobs/sse/release", map[string]any{"session": s, "token": tok}, 200)
	sw.writes <- "event: error\ndata: {\"error\":{\"code\":\"compacted\",\"message\":\"cannot resume\"}}\n\n"
	again := sw.next(t, "after compacted")
	if n, err := strconv.ParseUint(again, 10, 64); err != nil || n <= applied || n == rev {
		t.Fatalf("after a compacted error the watch opened with Last-Event-ID %q, want the node's applied index (above %d)", again, applied)
	}
	b.waitLock(live, "the page read again after compacted shows the release", "jobs/sse", func(r lockRow) bool { return !r.Found })
	if loads() <= before {
		t.Fatalf("the page did not read its list again after a compacted error")
	}
	b.checkConsole()
	t.Logf("TestConsoleParsesServerSentEvents took %v", time.Since(began).Round(time.Millisecond))
}
