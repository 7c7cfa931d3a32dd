package client

import (
	"context"
	"testing"
	"time"

	"github.com/raftlock/raftlock/internal/testserver"
)

func TestCheckToken(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	c, err := New(Config{Endpoints: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	m := s.NewMutex("fenced")
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.CheckToken(ctx, "fenced", m.Token())
	if err != nil || !got.Current || got.Holder == nil || got.Holder.Session != s.ID() {
		t.Fatalf("check of the held token: %+v, %v", got, err)
	}
	token := m.Token()
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
