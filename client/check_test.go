package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/internal/await"
	"github.com/raftlock/raftlock/internal/testserver"
)

func TestCheckToken(t *testing.T) {
	c, ctx := newTestClient(t, 10*time.Second)
	s := newTestSession(t, ctx, c)
	m := s.NewMutex("fenced")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.CheckToken(ctx, "fenced", m.Token())
	if err != nil || !got.Current || got.Holder == nil || got.Holder.Session != s.ID() {
		t.Fatalf("check of the held token: %+v, %v", got, err)
	}
	token := m.Token()
	if got, err := c.CheckToken(ctx, "fenced", token, HeldBy(s.ID())); err != nil || !got.Current {
		t.Fatalf("check of the held token naming its session: %+v, %v", got, err)
	}
	if got, err := c.CheckToken(ctx, "fenced", token, HeldBy(s.ID()+1)); err != nil || got.Current {
		t.Fatalf("check of the held token naming another session: %+v, %v", got, err)
	}
	if got, err := c.CheckToken(ctx, "fenced", token-1); err != nil || got.Current {
		t.Fatalf("check of an older token: %+v, %v", got, err)
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := c.CheckToken(ctx, "fenced", token); err != nil || got.Current || got.Holder != nil {
		t.Fatalf("check after the release: %+v, %v", got, err)
	}
}

// A Lock that would close a cycle of waits fails at once with an error
// matching api.ErrDeadlock, naming the cycle; the other wait goes on.
func TestLockDeadlockRefused(t *testing.T) {
	c, ctx := newTestClient(t, 20*time.Second)
	a := newTestSession(t, ctx, c)
	b := newTestSession(t, ctx, c)
	ax, by := a.NewMutex("x"), b.NewMutex("y")
	if err := ax.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := by.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	// (The test server is ready at this build's cluster version, which
	// the deadlock rule needs.)
	ay := a.NewMutex("y")
	waited := make(chan error, 1)
	go func() { waited <- ay.Lock(ctx) }()
	await.True(t, 10*time.Second, "a waits for y", func() bool {
		li, err := c.LockInfo(ctx, "y")
		return err == nil && len(li.Waiters) == 1
	})
	err := b.NewMutex("x").Lock(ctx)
	if !errors.Is(err, api.ErrDeadlock) || !strings.Contains(err.Error(), "deadlock") {
		t.Fatalf("the wait that closes the cycle: %v, want api.ErrDeadlock", err)
	}
	if err := by.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("the other wait, once y is released: %v", err)
	}
}

// TryLockAll takes every lock or none.
func TestTryLockAll(t *testing.T) {
	c, ctx := newTestClient(t, 20*time.Second)
	a := newTestSession(t, ctx, c)
	b := newTestSession(t, ctx, c)
	if err := b.NewMutex("all/c").Lock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TryLockAll(ctx, "all/a", "all/b", "all/c"); !errors.Is(err, api.ErrLockHeld) || !strings.Contains(err.Error(), `"all/c"`) {
		t.Fatalf("with all/c held: %v, want api.ErrLockHeld naming it", err)
	}
	if li, err := c.LockInfo(ctx, "all/a"); err != nil || li.Holder != nil {
		t.Fatalf("all/a after a refused TryLockAll: %+v %v", li, err)
	}
	ms, err := a.TryLockAll(ctx, "all/b", "all/a")
	if err != nil || len(ms) != 2 || ms[0].Name() != "all/b" || ms[0].Token() != ms[1].Token() || ms[0].Token() == 0 {
		t.Fatalf("TryLockAll: %v %v", ms, err)
	}
	for _, m := range ms {
		if err := m.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A session with a lock-delay opens on a real node (format 5 once the
// cluster version is 5); an out-of-bounds delay is refused.
func TestWithLockDelay(t *testing.T) {
	c, ctx := newTestClient(t, 20*time.Second)
	s, err := c.NewSession(ctx, WithLockDelay(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if _, err := c.NewSession(ctx, WithLockDelay(61*time.Second)); !errors.Is(err, api.ErrInvalidArgument) {
		t.Fatalf("a lock-delay of 61s: %v", err)
	}
}

// newTestClient starts an in-process server (ready at this build's cluster
// version) and returns a client of it, closed with the test, and a
// context bounded by d.
func newTestClient(t *testing.T, d time.Duration) (*Client, context.Context) {
	t.Helper()
	srv := testserver.Start(t, testserver.Options{})
	c, err := New(Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c, ctx
}

// newTestSession opens a session of c, closed with the test.
func newTestSession(t *testing.T, ctx context.Context, c *Client) *Session {
	t.Helper()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}
