package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/client"
)

// The examples need a running cluster, so they are compiled but not run.

func ExampleClient_NewSession() {
	ctx := context.Background()
	c, err := client.New(client.FromEnv()) // RAFTLOCK_ENDPOINTS, or http://127.0.0.1:7070
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	s, err := c.NewSession(ctx, client.WithTTL(10*time.Second), client.WithOwner("backup-host-1"))
	if errors.Is(err, api.ErrOutcomeUnknown) {
		// A session may have been opened; it expires after its TTL.
		log.Fatal("the cluster did not confirm the session; try again")
	}
	if err != nil {
		log.Fatal(err)
	}
	// Close deletes the session and releases its locks.
	defer s.Close(context.Background())

	fmt.Println("session", s.ID(), "safe until", s.SafeUntil())
	select {
	case <-s.Done():
		fmt.Println("session ended:", s.Err())
	case <-time.After(time.Minute):
	}
}

func ExampleMutex_Lock() {
	ctx := context.Background()
	c, err := client.New(client.Config{Endpoints: []string{"http://10.0.0.1:7070", "http://10.0.0.2:7070", "http://10.0.0.3:7070"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())

	m := s.NewMutex("nightly-backup")
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.Lock(wait); err != nil { // waits in the FIFO queue
		log.Fatal(err)
	}

	// Work under the lock stops when the session ends (or SafeUntil passes)
	// and when the hold is lost.
	work, stop := context.WithCancel(s.Ctx())
	defer stop()
	go func() {
		select {
		case <-m.Lost():
			stop()
		case <-work.Done():
		}
	}()

	// Give the fencing token to the storage: it refuses writes that carry a
	// token lower than one it has seen, so a paused old holder cannot
	// overwrite the work of a newer one.
	token := m.Token()
	if err := writeBackup(work, token); err != nil {
		log.Print(err)
	}
	if err := m.Unlock(ctx); err != nil {
		log.Print(err) // errors.Is(err, api.ErrNotHolder): the lock was lost before
	}
}

func ExampleMutex_TryLock() {
	ctx := context.Background()
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())

	m := s.NewMutex("reports/daily")
	var locked *client.LockedError
	switch err := m.TryLock(ctx); {
	case errors.As(err, &locked):
		fmt.Printf("held by %s (owner %q) since %v\n", locked.Holder.Session, locked.Holder.Owner, locked.Holder.Since)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("got it, token", m.Token())
		m.Unlock(ctx)
	}
}

func writeBackup(ctx context.Context, token uint64) error { return ctx.Err() }

func ExampleElector_Run() {
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	e := &client.Elector{
		Client:   c,
		Name:     "scheduler",
		Identity: "10.0.0.7:8080",
		Callbacks: client.Callbacks{
			// ctx ends when the leadership does: stop at once.
			OnStartedLeading: func(ctx context.Context) { <-ctx.Done() },
			OnNewLeader:      func(id string) { fmt.Println("leader:", id) },
		},
		ReleaseOnCancel: true,
	}
	if err := e.Run(context.Background()); err != nil {
		log.Fatal(err) // a configuration error
	}
}
