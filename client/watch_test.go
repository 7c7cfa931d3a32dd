package client

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

// watchProxy is a proxy in front of a test server that counts the watch's
// reads (by path and status) and, with old set, answers the locks endpoint
// 404 as a server from before it would.
type watchProxy struct {
	*httptest.Server
	old bool

	mu      sync.Mutex
	answers map[string]int // "locks 200", "locks 304", "session 200", ...
}

func newWatchProxy(t *testing.T, target string, old bool) *watchProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &watchProxy{old: old, answers: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		r.Header.Del(api.HeaderLeader) // keep the client on the proxy
		if r.Request.Method == http.MethodGet && strings.HasPrefix(r.Request.URL.Path, "/v1/sessions/") {
			kind := "session"
			if strings.HasSuffix(r.Request.URL.Path, "/locks") {
				kind = "locks"
			}
			p.mu.Lock()
			p.answers[kind+" "+http.StatusText(r.StatusCode)]++
			p.mu.Unlock()
		}
		return nil
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.old && strings.HasSuffix(r.URL.Path, "/locks") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.ErrorResponse{Error: api.Error{Code: api.CodeNotFound, Message: "Not Found"}})
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *watchProxy) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answers[key]
}

// After each renewal the session checks its holds; while they have not
// changed, the server answers 304 and sends no list. A hold lost behind
// the mutex's back changes the list, which the next check reads and acts
// on.
func TestWatchReadsUnchangedLocksAs304(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	p := newWatchProxy(t, srv.URL, false)
	c := newClient(t, p.URL)
	ctx := testCtx(t)
	s := newSession(t, c, 600*time.Millisecond) // renewed every 200 ms
	var ms []*Mutex
	for _, name := range []string{"w/a", "w/b", "w/c"} {
		m := s.NewMutex(name)
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	await.True(t, 10*time.Second, "four unchanged lists answered 304", func() bool { return p.count("locks Not Modified") >= 4 })
	if n := p.count("locks OK"); n < 1 || n > 2 {
		// Once, or twice if a check ran between two of the Locks.
		t.Errorf("the whole list was sent %d times while it did not change, want 1 or 2", n)
	}
	if n := p.count("session OK"); n != 0 {
		t.Errorf("%d reads of the whole session, want none", n)
	}
	releaseBehind(t, newClient(t, srv.URL), ms[1], s)
	if !closedWithin(ms[1].Lost(), 3*time.Second) {
		t.Fatal("Lost not closed after the lock was released behind the mutex's back")
	}
	if isClosed(ms[0].Lost()) || isClosed(ms[2].Lost()) {
		t.Fatal("a hold that was not touched was declared lost")
	}
}

// Against a server without GET /v1/sessions/{id}/locks the watch reads the
// whole session, as before, and still notices a lost hold.
func TestWatchFallsBackWithoutTheLocksEndpoint(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	p := newWatchProxy(t, srv.URL, true)
	c := newClient(t, p.URL)
	ctx := testCtx(t)
	s := newSession(t, c, 600*time.Millisecond)
	m := s.NewMutex("old/a")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	releaseBehind(t, newClient(t, srv.URL), m, s)
	if !closedWithin(m.Lost(), 3*time.Second) {
		t.Fatal("Lost not closed after the lock was released behind the mutex's back")
	}
	if p.count("session OK") == 0 || !c.noSessionLocks.Load() {
		t.Errorf("the watch did not fall back to GET /v1/sessions/{id} (answers %v)", p.answers)
	}
}

// A session holding more than locksPerCheck locks is checked a part at a
// time, one part per keep-alive: a lock lost in any part is noticed.
func TestWatchChecksABigSessionInParts(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	p := newWatchProxy(t, srv.URL, false)
	c := newClient(t, p.URL)
	ctx := testCtx(t)
	s := newSession(t, c, 600*time.Millisecond)
	n := locksPerCheck + 100
	if lockParts(n) != 2 {
		t.Fatalf("lockParts(%d) = %d, want 2", n, lockParts(n))
	}
	ms := make([]*Mutex, n)
	for i := range ms {
		ms[i] = s.NewMutex("big/" + strconv.Itoa(i))
		if err := ms[i].TryLock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// One lock of each part is released behind the session's back.
	other := newClient(t, srv.URL)
	var stolen []*Mutex
	for part := range 2 {
		for _, m := range ms {
			if api.LockPart(m.Name(), 2) == part {
				releaseBehind(t, other, m, s)
				stolen = append(stolen, m)
				break
			}
		}
	}
	for _, m := range stolen {
		if !closedWithin(m.Lost(), 5*time.Second) {
			t.Fatalf("Lost of %s not closed", m.Name())
		}
	}
	for _, m := range ms {
		if !slices.Contains(stolen, m) && isClosed(m.Lost()) {
			t.Fatalf("%s declared lost", m.Name())
		}
	}
}

func TestLockParts(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 1}, {512, 1}, {513, 2}, {1024, 2}, {1025, 4}, {5000, 16}, {1 << 30, api.MaxLockParts}} {
		if got := lockParts(c.n); got != c.want {
			t.Errorf("lockParts(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// releaseBehind releases m's hold in session s through other, as anybody
// who knows the session and the token can: behind m's back.
func releaseBehind(t *testing.T, other *Client, m *Mutex, s *Session) {
	t.Helper()
	if _, err := other.do(testCtx(t), call{method: http.MethodPost, path: api.LockPath(m.Name()) + "/release", write: true,
		body: api.ReleaseRequest{Session: s.ID(), Token: m.Token()}}, nil); err != nil {
		t.Fatal(err)
	}
}
