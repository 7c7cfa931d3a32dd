package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/lock"
)

// countingNode is a fakeNode that counts the subscriptions streams make
// and the backlog events the node copies for them.
type countingNode struct {
	*fakeNode
	watches, readWatches, subscribes atomic.Int64
	backlog                          atomic.Int64 // events copied into Watch channels
	reads                            atomic.Int64
	onRead                           func(n int64) // before the n-th Read, outside the node's lock

	mu      sync.Mutex
	cancels []func() // of the Watch subscriptions
}

func (n *countingNode) Watch(after uint64, buf int) (<-chan lock.Event, func(), error) {
	n.watches.Add(1)
	ch, cancel, err := n.fakeNode.Watch(after, buf)
	if err == nil {
		n.backlog.Add(int64(len(ch)))
		n.mu.Lock()
		n.cancels = append(n.cancels, cancel)
		n.mu.Unlock()
	}
	return ch, cancel, err
}

// dropWatches ends the Watch subscriptions as a node does with a
// subscriber that falls behind: their channels close.
func (n *countingNode) dropWatches() {
	n.mu.Lock()
	cs := n.cancels
	n.cancels = nil
	n.mu.Unlock()
	for _, c := range cs {
		c()
	}
}

func (n *countingNode) ReadWatch(ctx context.Context, stale bool, fn func(m *lock.Machine), buf int) (<-chan lock.Event, func(), error) {
	n.readWatches.Add(1)
	return n.fakeNode.ReadWatch(ctx, stale, fn, buf)
}

func (n *countingNode) Subscribe(buf int) (<-chan lock.Event, func()) {
	n.subscribes.Add(1)
	return n.fakeNode.Subscribe(buf)
}

func (n *countingNode) Read(ctx context.Context, stale bool, fn func(m *lock.Machine)) error {
	if k := n.reads.Add(1); n.onRead != nil {
		n.onRead(k)
	}
	return n.fakeNode.Read(ctx, stale, fn)
}

// edgeServer is a Server over a countingNode, served by an httptest
// server whose accepted connections have a small send buffer (so that a
// client that does not read blocks the server's writes soon).
type edgeServer struct {
	node *countingNode
	s    *Server
	ts   *httptest.Server
}

func newEdgeServer(t *testing.T, mod func(*Config)) *edgeServer {
	t.Helper()
	return newEdgeServerWith(t, mod, nil)
}

// newEdgeServerWith is newEdgeServer with the http.Server set up by srv.
func newEdgeServerWith(t *testing.T, mod func(*Config), srv func(*http.Server)) *edgeServer {
	t.Helper()
	node := &countingNode{fakeNode: newFakeNode()}
	cfg := DefaultConfig()
	cfg.Node = node
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener = smallBufListener{ts.Listener}
	if srv != nil {
		srv(ts.Config)
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return &edgeServer{node: node, s: s, ts: ts}
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// rawStream is a stream opened over its own connection, whose events are
// read only if the test reads them.
type rawStream struct {
	conn   net.Conn
	resp   *http.Response
	status int
	body   []byte // of a refusal
}

// openRaw sends GET path on a new connection (its receive buffer small)
// and reads the answer's head, and the body of a refusal.
func openRaw(t *testing.T, addr, path string, hdr ...string) (*rawStream, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	r := &rawStream{conn: conn, resp: resp, status: resp.StatusCode}
	if resp.StatusCode != 200 {
		r.body, err = io.ReadAll(resp.Body)
		conn.Close()
	}
	return r, err
}

// rawReader reads the messages of a raw stream (lines of any length).
type rawReader struct {
	rd *bufio.Reader
}

// openReader opens a stream that the test reads.
func openReader(t *testing.T, ts *httptest.Server, path string, hdr ...string) *rawReader {
	t.Helper()
	r, err := openRaw(t, ts.Listener.Addr().String(), path, hdr...)
	if err != nil || r.status != 200 {
		t.Fatalf("GET %s: %v %+v", path, err, r)
	}
	t.Cleanup(func() { r.conn.Close() })
	_ = r.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return &rawReader{rd: bufio.NewReader(r.resp.Body)}
}

func (r *rawReader) next(t *testing.T) sseMsg {
	t.Helper()
	return readMessages(t, r.rd, func(sseMsg) bool { return true })[0]
}

// readMessages reads SSE messages from rd until one satisfies stop.
func readMessages(t *testing.T, rd *bufio.Reader, stop func(m sseMsg) bool) []sseMsg {
	t.Helper()
	var out []sseMsg
	var m sseMsg
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended after %d messages: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.event != "" {
				out = append(out, m)
				if stop(m) {
					return out
				}
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
}

// TestStreamCapRefusesBeyondMax: 2,000 watch streams that never read
// against a node capped at 500: 500 are served, 1,500 get 429
// quota_exceeded naming the cap, and the 500 share one subscription of
// the node. When they go, their slots and the subscription go too.
func TestStreamCapRefusesBeyondMax(t *testing.T) {
	es := newEdgeServer(t, func(c *Config) { c.MaxStreams = 500 })
	addr := es.ts.Listener.Addr().String()
	id := openSession(t, es.ts, "w")
	must(t, es.ts, "POST", "/v1/locks/jobs/a/acquire", `{"session":"`+id+`"}`, 200)

	const n = 2000
	streams := make([]*rawStream, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := openRaw(t, addr, "/v1/watch?prefix=jobs/")
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			streams[i] = r
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, r := range streams {
			if r != nil {
				r.conn.Close()
			}
		}
	})
	served, refused := 0, 0
	for _, r := range streams {
		switch {
		case r == nil:
		case r.status == 200:
			served++
		case r.status == 429:
			var e api.ErrorResponse
			if json.Unmarshal(r.body, &e) != nil || e.Error.Code != api.CodeQuotaExceeded || !strings.Contains(e.Error.Message, "500") || !strings.Contains(e.Error.Message, "MaxStreams") {
				t.Fatalf("refusal %s, want quota_exceeded naming MaxStreams and 500", r.body)
			}
			refused++
		default:
			t.Fatalf("stream answered %d %s", r.status, r.body)
		}
	}
	if served != 500 || refused != n-500 {
		t.Fatalf("%d streams served and %d refused, want 500 and %d", served, refused, n-500)
	}
	if open, _ := es.s.edge().streams.count(); open != 500 {
		t.Fatalf("%d stream slots taken, want 500", open)
	}
	// Changes go to every stream through one subscription of the node.
	for i := range 50 {
		must(t, es.ts, "POST", fmt.Sprintf("/v1/locks/jobs/x%d/acquire", i), `{"session":"`+id+`"}`, 200)
	}
	if w, rw, sub := es.node.watches.Load(), es.node.readWatches.Load(), es.node.subscribes.Load(); w != 1 || rw != 0 || sub != 0 {
		t.Fatalf("the node got %d Watch, %d ReadWatch and %d Subscribe calls, want one Watch for all streams", w, rw, sub)
	}
	if got := es.node.subscribers(); got != 1 {
		t.Fatalf("%d subscriptions of the node, want 1", got)
	}
	for _, r := range streams {
		if r != nil {
			r.conn.Close()
		}
	}
	await.True(t, 10*time.Second, "every stream slot given back", func() bool { open, _ := es.s.edge().streams.count(); return open == 0 })
	await.True(t, 10*time.Second, "the node subscription cancelled", func() bool { return es.node.subscribers() == 0 })
	// The cap counts open streams: a new one is served.
	r, err := openRaw(t, addr, "/v1/watch")
	if err != nil || r.status != 200 {
		t.Fatalf("a stream after the others closed: %v %+v", err, r)
	}
	r.conn.Close()
}

// TestStreamCapPerPrincipal: an authenticated principal gets at most
// MaxStreamsPerPrincipal streams; anonymous clients (auth off: all one
// principal "") only the node's cap.
func TestStreamCapPerPrincipal(t *testing.T) {
	es := newEdgeServer(t, func(c *Config) {
		c.MaxStreams = 10
		c.MaxStreamsPerPrincipal = 3
		enableAuth(t, c.Node.(*countingNode).fakeNode) // the per-principal cap holds once auth is on
	})
	open := func(p string) (*subscription, error) {
		c := es.s.e.NewContext(httptest.NewRequest("GET", "/v1/watch", nil), httptest.NewRecorder())
		if p != "" {
			c.Set(principalKey, p)
		}
		return es.s.openStream(c)
	}
	var subs []*subscription
	defer func() {
		for _, s := range subs {
			s.cancel()
		}
	}()
	for range 3 {
		sub, err := open("alice")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	_, err := open("alice")
	var ae *api.Error
	if !asAPIError(err, &ae) || ae.Code != api.CodeQuotaExceeded || !strings.Contains(ae.Message, `"alice"`) || !strings.Contains(ae.Message, "MaxStreamsPerPrincipal") {
		t.Fatalf("alice's 4th stream: %v, want quota_exceeded naming alice and MaxStreamsPerPrincipal", err)
	}
	for range 5 { // anonymous: beyond the per-principal cap
		sub, err := open("")
		if err != nil {
			t.Fatalf("anonymous stream: %v", err)
		}
		subs = append(subs, sub)
	}
	sub, err := open("bob")
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, sub)
	sub, err = open("carol") // the 10th
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, sub)
	if _, err := open(""); !asAPIError(err, &ae) || !strings.Contains(ae.Message, "MaxStreams") {
		t.Fatalf("the 11th stream: %v, want the node's cap", err)
	}
	subs[0].cancel()
	subs[0].cancel()         // idempotent
	sub, err = open("alice") // a slot of the node's and of alice's again
	if err != nil {
		t.Fatalf("alice after one of her streams closed: %v", err)
	}
	subs = append(subs, sub)
	if n, p := es.s.edge().streams.count(); n != 10 || p != 3 {
		t.Fatalf("%d streams of %d principals, want 10 of 3 (alice, bob, carol)", n, p)
	}
	for _, s := range subs {
		s.cancel()
	}
	if n, p := es.s.edge().streams.count(); n != 0 || p != 0 {
		t.Fatalf("%d streams of %d principals after all closed", n, p)
	}
}

func asAPIError(err error, ae **api.Error) bool {
	e, ok := err.(*api.Error)
	*ae = e
	return ok
}

// TestObserveCap: observe streams take slots too.
func TestObserveCap(t *testing.T) {
	es := newEdgeServer(t, func(c *Config) { c.MaxStreams = 1 })
	addr := es.ts.Listener.Addr().String()
	r, err := openRaw(t, addr, "/v1/elections/e/observe")
	if err != nil || r.status != 200 {
		t.Fatalf("first observe: %v %+v", err, r)
	}
	defer r.conn.Close()
	r2, err := openRaw(t, addr, "/v1/elections/e/observe")
	if err != nil || r2.status != 429 || !strings.Contains(string(r2.body), api.CodeQuotaExceeded) {
		t.Fatalf("second observe: %v %+v", err, r2)
	}
	if r3, err := openRaw(t, addr, "/v1/watch", api.HeaderLastEventID, "1"); err != nil || r3.status != 429 {
		t.Fatalf("a resumed watch beyond the cap: %v %+v", err, r3)
	}
}

// TestResumedStreamsShareTheLog: 300 watch streams resumed far back that
// never read (issue 11: they took 620 MB, each copying the node's whole
// backlog) cost one copy of the backlog in all; the log holds a bounded
// number of events; a resumed stream that reads gets every revision after
// its Last-Event-ID, once, in order.
func TestResumedStreamsShareTheLog(t *testing.T) {
	es := newEdgeServer(t, nil)
	addr := es.ts.Listener.Addr().String()
	id := openSession(t, es.ts, strings.Repeat("o", 200))
	sid, _ := parseSessionID(id)
	var lastRev uint64
	for i := range 2500 {
		_, rev, err := es.node.Propose(context.Background(), &lock.Command{Op: lock.OpAcquire, Session: uint64(sid), Name: fmt.Sprintf("jobs/%04d", i)})
		if err != nil {
			t.Fatal(err)
		}
		lastRev = rev
	}
	es.node.fakeNode.mu.Lock()
	history := len(es.node.history)
	es.node.fakeNode.mu.Unlock()

	streams := make([]*rawStream, 300)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			r, err := openRaw(t, addr, "/v1/watch", api.HeaderLastEventID, "1")
			if err != nil || r.status != 200 {
				t.Errorf("resumed stream %d: %v %+v", i, err, r)
				return
			}
			streams[i] = r
		})
	}
	wg.Wait()
	defer func() {
		for _, r := range streams {
			if r != nil {
				r.conn.Close()
			}
		}
	}()
	if t.Failed() {
		return
	}
	if w, copied := es.node.watches.Load(), es.node.backlog.Load(); w != 1 || copied > int64(history) {
		t.Fatalf("%d Watch calls copied %d backlog events, want 1 call copying at most the history's %d", w, copied, history)
	}
	if held, most := es.s.edge().log.held(); held > streamRing || most > streamRing {
		t.Fatalf("the log holds %d events (at most %d), over its bound %d", held, most, streamRing)
	}
	// A stream that reads: every entry after revision 1, in order.
	r, err := openRaw(t, addr, "/v1/watch", api.HeaderLastEventID, "1")
	if err != nil || r.status != 200 {
		t.Fatalf("reading stream: %v %+v", err, r)
	}
	defer r.conn.Close()
	rd := bufio.NewReader(r.resp.Body)
	prev := uint64(1)
	msgs := readMessages(t, rd, func(m sseMsg) bool { return m.id == strconv.FormatUint(lastRev, 10) })
	for _, m := range msgs {
		var b api.WatchBatch
		if m.event != api.SSEChange || json.Unmarshal([]byte(m.data), &b) != nil || m.id != strconv.FormatUint(b.Revision, 10) || b.Revision <= prev || len(b.Events) != 1 {
			t.Fatalf("message after revision %d: %+v", prev, m)
		}
		prev = b.Revision
	}
	if len(msgs) != 2500 {
		t.Fatalf("%d messages, want one per acquire (2500)", len(msgs))
	}
	if w := es.s.edge().streams.maxWrite.Load(); w > streamFlushBytes+4<<10 {
		t.Fatalf("a stream wrote %d bytes at once, over its bound of %d and an event", w, streamFlushBytes)
	}
}

// TestSlowReaderIsCut: a stream whose client stops reading is ended once
// a write has blocked for streamWriteTimeout, having handed the connection
// at most streamFlushBytes and one event at a time; its slot is given
// back.
func TestSlowReaderIsCut(t *testing.T) {
	defer func(d time.Duration) { streamWriteTimeout = d }(streamWriteTimeout)
	streamWriteTimeout = 200 * time.Millisecond
	es := newEdgeServer(t, nil)
	id := openSession(t, es.ts, "w")
	sid, _ := parseSessionID(id)
	term := must(t, es.ts, "POST", "/v1/elections/e/campaign", `{"session":"`+id+`","value":"v"}`, 200).num("term")

	r, err := openRaw(t, es.ts.Listener.Addr().String(), "/v1/watch")
	if err != nil || r.status != 200 {
		t.Fatalf("watch: %v %+v", err, r)
	}
	defer r.conn.Close()
	slots := &es.s.edge().streams
	// 200 values of 4 KiB: far more than the connection's buffers hold.
	value := strings.Repeat("v", api.MaxValueSize-8)
	for i := range 200 {
		if _, _, err := es.node.Propose(context.Background(), &lock.Command{Op: lock.OpProclaim, Session: uint64(sid), Name: "e", Token: term, Value: value + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	await.True(t, 10*time.Second, "the stream cut for not reading", func() bool { return slots.cutSlow.Load() == 1 })
	await.True(t, 10*time.Second, "the cut stream's slot given back", func() bool { open, _ := slots.count(); return open == 0 })
	if w := slots.maxWrite.Load(); w > streamFlushBytes+8<<10 {
		t.Fatalf("the stream handed %d bytes to one write, over its bound", w)
	}
}

// TestWatchBigEntryInPieces: one entry with 3,000 events (a session close
// that releases 3,000 locks) is one message, written in pieces of at most
// streamFlushBytes.
func TestWatchBigEntryInPieces(t *testing.T) {
	es := newEdgeServer(t, nil)
	id := openSession(t, es.ts, strings.Repeat("o", 200))
	sid, _ := parseSessionID(id)
	for i := range 3000 {
		if _, _, err := es.node.Propose(context.Background(), &lock.Command{Op: lock.OpAcquire, Session: uint64(sid), Name: fmt.Sprintf("jobs/%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	s := openReader(t, es.ts, "/v1/watch?prefix=jobs/&limit=10000")
	st := s.next(t)
	var state api.WatchState
	if json.Unmarshal([]byte(st.data), &state) != nil || len(state.Locks) != 3000 || state.Next != "" || st.id == "" {
		t.Fatalf("state: %d locks, next %q, id %q", len(state.Locks), state.Next, st.id)
	}
	must(t, es.ts, "DELETE", "/v1/sessions/"+id, "", 200)
	m := s.next(t)
	var b api.WatchBatch
	if err := json.Unmarshal([]byte(m.data), &b); err != nil || len(b.Events) != 3000 || m.id != strconv.FormatUint(b.Revision, 10) {
		t.Fatalf("close: %d events (%v), id %q; want the 3000 releases in one message", len(b.Events), err, m.id)
	}
	if len(m.data) < 4*streamFlushBytes {
		t.Fatalf("the message is only %d bytes: the test needs one larger than the pieces", len(m.data))
	}
	if w := es.s.edge().streams.maxWrite.Load(); w > streamFlushBytes+4<<10 {
		t.Fatalf("a write of %d bytes, over the bound of %d and an event", w, streamFlushBytes)
	}
}

// TestWatchStatePaged: the first state of a watch comes in pages of at
// most limit locks (default 1,000); between pages, change messages without
// ids bring the earlier pages to the next page's revision; only the last
// page has an id. The client's picture at the last page is the node's
// state at that revision.
func TestWatchStatePaged(t *testing.T) {
	es := newEdgeServer(t, nil)
	f := es.node
	id := openSession(t, es.ts, "a")
	sid, _ := parseSessionID(id)
	acquire := func(name string) {
		if res, _, err := f.fakeNode.Propose(context.Background(), &lock.Command{Op: lock.OpAcquire, Session: uint64(sid), Name: name}); err != nil || res.Code != lock.CodeOK {
			t.Errorf("acquire %s: %v %v", name, res.Code, err)
		}
	}
	release := func(name string) {
		f.fakeNode.mu.Lock()
		li, _ := f.fakeNode.m.Lock(name)
		f.fakeNode.mu.Unlock()
		if res, _, err := f.fakeNode.Propose(context.Background(), &lock.Command{Op: lock.OpRelease, Session: uint64(sid), Name: name, Token: li.Holder.Token}); err != nil || res.Code != lock.CodeOK {
			t.Errorf("release %s: %v %v", name, res.Code, err)
		}
	}
	for i := range 2500 {
		acquire(fmt.Sprintf("p/%04d", i))
	}
	acquire("q/outside")
	// Changes while the pages are read: before the second page's read, in
	// the first page's names and in the later pages'; before the third's,
	// in the first two pages'.
	f.onRead = func(n int64) {
		switch n {
		case 2:
			release("p/0005")
			acquire("p/0005a")
			release("p/2400")
			acquire("p/9999")
			acquire("q/outside2")
		case 3:
			release("p/0007")
			release("p/1500")
			acquire("p/1500a")
		}
	}
	s := openReader(t, es.ts, "/v1/watch?prefix=p/")
	have := map[string]bool{} // names with a holder, as the client sees them
	var pages []api.WatchState
	var lastID string
	for {
		m := s.next(t)
		switch m.event {
		case api.SSEState:
			var st api.WatchState
			if err := json.Unmarshal([]byte(m.data), &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Locks) > api.DefaultListLimit {
				t.Fatalf("a page of %d locks", len(st.Locks))
			}
			if (st.Next == "") != (m.id != "") {
				t.Fatalf("page %d: next %q, id %q: only the last page has an id", len(pages), st.Next, m.id)
			}
			for _, l := range st.Locks {
				have[l.Name] = l.Holder != nil
			}
			pages = append(pages, st)
			lastID = m.id
		case api.SSEChange:
			if lastID == "" && m.id != "" {
				t.Fatalf("a change between pages has the id %q", m.id)
			}
			var b api.WatchBatch
			if err := json.Unmarshal([]byte(m.data), &b); err != nil {
				t.Fatal(err)
			}
			for _, ev := range b.Events {
				if !strings.HasPrefix(ev.Name, "p/") {
					t.Fatalf("event outside the prefix: %+v", ev)
				}
				switch ev.Type {
				case "lock_granted":
					have[ev.Name] = true
				case "lock_released":
					delete(have, ev.Name)
				}
			}
		}
		if lastID != "" {
			break
		}
	}
	for name, held := range have {
		if !held {
			delete(have, name)
		}
	}
	if len(pages) != 3 || pages[0].Next != "p/0999" || pages[1].Next != "p/1999" || len(pages[0].Locks) != 1000 {
		t.Fatalf("%d pages, next %q %q", len(pages), pages[0].Next, pages[1].Next)
	}
	if pages[2].Revision <= pages[0].Revision || lastID != strconv.FormatUint(pages[2].Revision, 10) {
		t.Fatalf("page revisions %d, %d, %d; last id %s", pages[0].Revision, pages[1].Revision, pages[2].Revision, lastID)
	}
	f.fakeNode.mu.Lock()
	want, _ := f.fakeNode.m.ListLocks("p/", "", 0)
	f.fakeNode.mu.Unlock()
	if len(want) != len(have) {
		t.Errorf("the client sees %d held locks, the node has %d", len(have), len(want))
	}
	for _, li := range want {
		if !have[li.Name] {
			t.Errorf("the client misses %s", li.Name)
		}
	}
	// Then every change, with its id.
	acquire("p/zzz")
	if m := s.next(t); m.event != api.SSEChange || m.id == "" || !strings.Contains(m.data, "p/zzz") {
		t.Fatalf("after the state: %+v", m)
	}
}

// TestWatchLimit: ?limit= sets the pages' size: 1 to 10,000.
func TestWatchLimit(t *testing.T) {
	es := newEdgeServer(t, nil)
	id := openSession(t, es.ts, "a")
	for _, n := range []string{"a", "b", "c"} {
		must(t, es.ts, "POST", "/v1/locks/"+n+"/acquire", `{"session":"`+id+`"}`, 200)
	}
	s := openReader(t, es.ts, "/v1/watch?limit=2")
	var st, st2 api.WatchState
	if m := s.next(t); json.Unmarshal([]byte(m.data), &st) != nil || len(st.Locks) != 2 || st.Next != "b" || m.id != "" {
		t.Fatalf("first page: %+v", m)
	}
	if m := s.next(t); json.Unmarshal([]byte(m.data), &st2) != nil || len(st2.Locks) != 1 || st2.Next != "" || m.id == "" {
		t.Fatalf("second page: %+v", m)
	}
	for _, bad := range []string{"0", "10001", "x", "-1", "01"} {
		if r := do(t, es.ts, "GET", "/v1/watch?limit="+bad, ""); r.status != 400 || !strings.Contains(r.errMessage(), "limit") {
			t.Errorf("limit=%s: %d %s", bad, r.status, r.raw)
		}
	}
}

// TestEventLog: the log's bounds and fence, without HTTP.
func TestEventLog(t *testing.T) {
	defer func(n int) { streamRing = n }(streamRing)
	streamRing = 8
	f := newFakeNode()
	apply := func(k int) (rev uint64) {
		for range k {
			_, rev, _ = f.Propose(context.Background(), &lock.Command{Op: lock.OpOpenSession, TTL: int64(10 * time.Second)})
		}
		return rev
	}
	apply(2)
	l := &eventLog{node: f}
	release, err := l.acquire()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := l.cursorAfter(0)
	if err != nil {
		t.Fatal(err)
	}
	rev := apply(1)
	if err := l.sync(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	piece := make([]lock.Event, 2)
	n, _, _, err := l.read(cur, piece)
	if err != nil || n != 2 || piece[0].Revision != 1 {
		t.Fatalf("read: %d %v %+v", n, err, piece)
	}
	if now, _ := l.held(); now != 6 { // three entries, each an event and a marker
		t.Fatalf("held %d events, want 6", now)
	}
	// Past its bound the log drops the oldest events: a cursor left
	// behind cannot go on, nor can a resume from before them.
	apply(4)
	if err := l.sync(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := l.read(cur, piece); err != errFellBehind {
		t.Fatalf("a cursor behind the log: %v, want errFellBehind", err)
	}
	if _, err := l.cursorAfter(1); !isCompacted(err) {
		t.Fatalf("a resume from before the log: %v, want compacted", err)
	}
	if c, err := l.cursorAfter(rev); err != nil || c.pos != l.start {
		t.Fatalf("cursor after %d: %+v %v", rev, c, err)
	}
	if now, most := l.held(); now != 8 || most != 8 {
		t.Fatalf("held %d (most %d), want the bound 8", now, most)
	}
	release()
	release() // idempotent
	if f.subscribers() != 0 {
		t.Fatal("the log's subscription outlived its last user")
	}
	if _, _, _, err := l.read(cur, piece); err != errLogEnded {
		t.Fatalf("read after the log stopped: %v", err)
	}
}

// TestStreamsResumeAfterTheLogIsDropped: when the node drops the event
// log's subscription (it fell behind, or the node is stopping), every
// stream ends with a comment that says to resume; a client that resumes
// with Last-Event-ID gets what followed, from the node's history, with no
// gap and no duplicate.
func TestStreamsResumeAfterTheLogIsDropped(t *testing.T) {
	es := newEdgeServer(t, nil)
	id := openSession(t, es.ts, "w")
	s := openReader(t, es.ts, "/v1/watch?prefix=jobs/")
	st := s.next(t)
	if st.event != api.SSEState || st.id == "" {
		t.Fatalf("first message: %+v", st)
	}
	g := must(t, es.ts, "POST", "/v1/locks/jobs/a/acquire", `{"session":"`+id+`"}`, 200)
	first := s.next(t)
	es.node.dropWatches()
	// Changes while no stream reads the node.
	must(t, es.ts, "POST", "/v1/locks/jobs/a/release", `{"session":"`+id+`","token":`+strconv.FormatUint(g.num("token"), 10)+`}`, 200)
	must(t, es.ts, "POST", "/v1/locks/jobs/b/acquire", `{"session":"`+id+`"}`, 200)
	var comments []string
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			break // the server ended the stream
		}
		if strings.HasPrefix(line, ": ") {
			comments = append(comments, line)
		}
	}
	if len(comments) == 0 || !strings.Contains(comments[len(comments)-1], "reconnect with Last-Event-ID") {
		t.Fatalf("the stream ended with the comments %q, want one saying to resume", comments)
	}
	r := openReader(t, es.ts, "/v1/watch?prefix=jobs/", api.HeaderLastEventID, first.id)
	for _, want := range []string{`"jobs/a"`, `"jobs/b"`} {
		m := r.next(t)
		if m.event != api.SSEChange || !strings.Contains(m.data, want) {
			t.Fatalf("resumed: %+v, want the change of %s", m, want)
		}
	}
	if w := es.node.watches.Load(); w != 2 {
		t.Fatalf("%d Watch calls, want 2 (the log, then the log again)", w)
	}
}

// TestStreamOutlivesServerReadTimeout: raftlockd's client server has a
// ReadTimeout (slow bodies); a stream lifts it, so it lives as long as its
// client reads, not ReadTimeout.
func TestStreamOutlivesServerReadTimeout(t *testing.T) {
	es := newEdgeServerWith(t, func(c *Config) { c.StreamKeepAlive = 50 * time.Millisecond },
		func(srv *http.Server) { srv.ReadTimeout = 200 * time.Millisecond })
	id := openSession(t, es.ts, "w")
	s := openReader(t, es.ts, "/v1/watch")
	if m := s.next(t); m.event != api.SSEState {
		t.Fatalf("first message: %+v", m)
	}
	start := time.Now()
	for time.Since(start) < 3*es.ts.Config.ReadTimeout { // keep-alive comments, over 3 ReadTimeouts
		line, err := s.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended after %v: %v", time.Since(start), err)
		}
		_ = line
	}
	must(t, es.ts, "POST", "/v1/locks/late/acquire", `{"session":"`+id+`"}`, 200)
	if m := s.next(t); m.event != api.SSEChange || !strings.Contains(m.data, `"late"`) {
		t.Fatalf("after the server's ReadTimeout: %+v", m)
	}
}
