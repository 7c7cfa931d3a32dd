package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftlock/raftlock/client"
	"github.com/raftlock/raftlock/client/fence"
	"github.com/raftlock/raftlock/internal/testserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestPausedHolder: holder A (token 10) writes, then pauses; holder B (12)
// takes over and writes; A's late write with 10 is refused with 409 and the
// file keeps B's content, also after the store restarts.
func TestPausedHolder(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir, "fenced-store")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.handler())
	defer srv.Close()

	expect(t, put(t, srv.URL, "fenced-store", 10, "from A"), 204, "")
	expect(t, put(t, srv.URL, "fenced-store", 12, "from B"), 204, "")
	expect(t, put(t, srv.URL, "fenced-store", 10, "late A"), 409,
		`{"error":{"code":"stale_token","message":"stale token 10 for lock \"fenced-store\": 12 was accepted","highest":12}}`+"\n")
	expect(t, get(t, srv.URL), 200, "from B")

	expect(t, put(t, srv.URL, "fenced-store", 12, "B again"), 204, "") // the same holder: accepted
	expect(t, put(t, srv.URL, "other-lock", 99, "sneaky"), 403,
		`lock "other-lock" does not protect this store: take the lock "fenced-store"`+"\n")
	expect(t, put(t, srv.URL, "", 0, "no token"), 400,
		`{"error":{"code":"invalid_argument","message":"header Raftlock-Lock is missing"}}`+"\n")
	expect(t, get(t, srv.URL), 200, "B again")

	// A restarted store remembers the fence.
	srv.Close()
	s2, err := openStore(dir, "fenced-store")
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(s2.handler())
	defer srv2.Close()
	expect(t, get(t, srv2.URL), 200, "B again")
	expect(t, put(t, srv2.URL, "fenced-store", 10, "late A"), 409,
		`{"error":{"code":"stale_token","message":"stale token 10 for lock \"fenced-store\": 12 was accepted","highest":12}}`+"\n")
	expect(t, del(t, srv2.URL, 13), 204, "")
	expect(t, get(t, srv2.URL), 404, "no such file\n")
}

// TestWithRaftlockd takes the tokens from a real (in-process) raftlockd:
// A's hold is taken from it (here by an admin's close of its session, as
// an expiry would) while A still has its token; B locks and writes; A's
// late write is refused.
func TestWithRaftlockd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rl := testserver.Start(t, testserver.Options{})
	c, err := client.New(client.Config{Endpoints: []string{rl.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	s, err := openStore(t.TempDir(), "fenced-store")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.handler())
	defer srv.Close()

	sessA, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sessA.Close(context.Background())
	a := sessA.NewMutex("fenced-store")
	if err := a.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	tokenA := a.Token()
	expect(t, put(t, srv.URL, "fenced-store", tokenA, "from A"), 204, "")

	// A pauses; meanwhile its session ends and B takes the lock.
	if err := c.CloseSession(ctx, sessA.ID()); err != nil {
		t.Fatal(err)
	}
	sessB, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sessB.Close(context.Background())
	b := sessB.NewMutex("fenced-store")
	if err := b.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	tokenB := b.Token()
	if tokenB <= tokenA {
		t.Fatalf("B's token %d is not above A's %d", tokenB, tokenA)
	}
	expect(t, put(t, srv.URL, "fenced-store", tokenB, "from B"), 204, "")

	// A wakes up and writes with the token it had.
	resp := put(t, srv.URL, "fenced-store", tokenA, "late A")
	if resp.status != 409 || !strings.Contains(resp.body, `"code":"stale_token"`) {
		t.Errorf("A's late write: %d %s", resp.status, resp.body)
	}
	expect(t, get(t, srv.URL), 200, "from B")
	if err := b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

type response struct {
	status int
	body   string
}

func put(t *testing.T, base, lock string, token uint64, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/files/report.txt", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if lock != "" {
		fence.SetHeaders(req.Header, lock, token)
	}
	return send(t, req)
}

func del(t *testing.T, base string, token uint64) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+"/files/report.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	fence.SetHeaders(req.Header, "fenced-store", token)
	return send(t, req)
}

func get(t *testing.T, base string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/files/report.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, string(b)}
}

func expect(t *testing.T, got response, status int, body string) {
	t.Helper()
	if got.status != status || got.body != body {
		t.Errorf("got %d %q\nwant %d %q", got.status, got.body, status, body)
	}
}
