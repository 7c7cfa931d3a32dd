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

// The examples run against the single-node server that TestMain starts
// (main_test.go), whose URL it puts in RAFTLOCK_ENDPOINTS.

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
	fmt.Println("TTL:", s.TTL())
	// The session is renewed in the background. Work that needs it must
	// end by SafeUntil, or when Done is closed.
	fmt.Println("safe for at most the TTL:", time.Until(s.SafeUntil()) <= s.TTL())

	// Close deletes the session and releases its locks.
	if err := s.Close(ctx); err != nil {
		log.Fatal(err)
	}
	<-s.Done()
	fmt.Println("session ended:", s.Err())
	// Output:
	// TTL: 10s
	// safe for at most the TTL: true
	// session ended: client: session closed
}

func ExampleMutex_Lock() {
	ctx := context.Background()
	// The endpoints of some or all members, here from RAFTLOCK_ENDPOINTS;
	// or client.Config{Endpoints: []string{"http://10.0.0.1:7070",
	// "http://10.0.0.2:7070", "http://10.0.0.3:7070"}}.
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

	m := s.NewMutex("nightly-backup")
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := m.Lock(wait); err != nil { // waits in the FIFO queue
		log.Fatal(err)
	}
	fmt.Println("holding", m.Name())

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
	if err := writeBackup(work, m.Token()); err != nil {
		log.Print(err)
	}
	if err := m.Unlock(ctx); err != nil {
		log.Print(err) // errors.Is(err, api.ErrNotHolder): the lock was lost before
	}
	fmt.Println("released", m.Name())
	// Output:
	// holding nightly-backup
	// released nightly-backup
}

func writeBackup(ctx context.Context, token uint64) error { return ctx.Err() }

func ExampleMutex_TryLock() {
	ctx := context.Background()
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Another host holds the lock.
	other, err := c.NewSession(ctx, client.WithOwner("report-host-2"))
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close(context.Background())
	if err := other.NewMutex("reports/daily").Lock(ctx); err != nil {
		log.Fatal(err)
	}

	s, err := c.NewSession(ctx, client.WithOwner("report-host-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(context.Background())
	m := s.NewMutex("reports/daily")
	try := func() {
		var locked *client.LockedError
		switch err := m.TryLock(ctx); {
		case errors.As(err, &locked):
			fmt.Printf("%s is held by %q\n", locked.Name, locked.Holder.Owner)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Println("got", m.Name())
			m.Unlock(ctx)
		}
	}
	try()
	other.Close(ctx) // releases what it holds
	try()
	// Output:
	// reports/daily is held by "report-host-2"
	// got reports/daily
}

func ExampleElector_Run() {
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	leading := make(chan struct{})
	e := &client.Elector{
		Client:   c,
		Name:     "scheduler",
		Identity: "10.0.0.7:8080",
		Callbacks: client.Callbacks{
			// ctx ends when the leadership does: stop at once.
			OnStartedLeading: func(ctx context.Context) {
				close(leading)
				<-ctx.Done()
			},
			OnStoppedLeading: func() { fmt.Println("stopped leading") },
		},
		ReleaseOnCancel: true, // resign when Run's ctx ends
	}
	go func() {
		select {
		case <-leading:
			fmt.Println("leading:", e.IsLeader())
			stop() // this example stops as soon as it leads
		case <-ctx.Done():
		}
	}()
	if err := e.Run(ctx); err != nil {
		log.Fatal(err) // a configuration error
	}
	// Output:
	// leading: true
	// stopped leading
}

// TryLockAll takes several locks in one log entry, or none: two jobs that
// need the same pair of resources never hold one each and wait for the
// other.
func ExampleSession_TryLockAll() {
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

	ms, err := s.TryLockAll(ctx, "db/orders", "db/invoices")
	if errors.Is(err, api.ErrLockHeld) {
		fmt.Println("one of them is held; none was taken")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("holding", ms[0].Name(), "and", ms[1].Name(), "with one token:", ms[0].Token() == ms[1].Token())
	for _, m := range ms {
		if err := m.Unlock(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// holding db/orders and db/invoices with one token: true
}

// Client.CheckToken is the question a resource that cannot remember
// fencing tokens asks before it accepts a write: is this token the
// holder's now?
func ExampleClient_CheckToken() {
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
	m := s.NewMutex("reports")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	token := m.Token()

	now, err := c.CheckToken(ctx, "reports", token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("current while held:", now.Current)
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	later, err := c.CheckToken(ctx, "reports", token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("current after the release:", later.Current)
	// Output:
	// current while held: true
	// current after the release: false
}

// A Semaphore lets at most Limit sessions in at once: here two backup
// jobs may run together, and a third waits (or, with TryAcquire, gives
// up).
func ExampleSession_NewSemaphore() {
	ctx := context.Background()
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// One session per job: a permit belongs to a session.
	var sems []*client.Semaphore
	for _, owner := range []string{"job-1", "job-2", "job-3"} {
		s, err := c.NewSession(ctx, client.WithOwner(owner))
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close(context.Background())
		sems = append(sems, s.NewSemaphore("backups", 2)) // every job agrees on the limit
	}
	for _, sm := range sems[:2] {
		if err := sm.Acquire(ctx); err != nil { // waits in the FIFO queue when full
			log.Fatal(err)
		}
	}
	var full *client.FullError
	if err := sems[2].TryAcquire(ctx); errors.As(err, &full) {
		fmt.Printf("%s is full: %d of %d permits held\n", full.Name, len(full.Holders), full.Limit)
	}

	// Work under a permit watches its Lost channel and passes its Token
	// on, as under a Mutex (see ExampleMutex_Lock). Releasing a permit
	// grants the next waiter, or lets the next TryAcquire in.
	if err := sems[0].Release(ctx); err != nil {
		log.Fatal(err)
	}
	if err := sems[2].TryAcquire(ctx); err != nil {
		log.Fatal(err)
	}
	info, err := c.SemaphoreInfo(ctx, "backups")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d of %d permits held\n", len(info.Holders), info.Limit)
	// Output:
	// backups is full: 2 of 2 permits held
	// 2 of 2 permits held
}

// An RWMutex is held by many readers together or by one writer alone; a
// reader that comes after a waiting writer waits for it.
func ExampleSession_NewRWMutex() {
	ctx := context.Background()
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	reader, err := c.NewSession(ctx, client.WithOwner("reader"))
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close(context.Background())
	writer, err := c.NewSession(ctx, client.WithOwner("writer"))
	if err != nil {
		log.Fatal(err)
	}
	defer writer.Close(context.Background())

	r := reader.NewRWMutex("config")
	if err := r.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reader holds", r.Name(), r.Mode())

	w := writer.NewRWMutex("config")
	if err := w.TryLock(ctx); errors.Is(err, api.ErrLockHeld) {
		fmt.Println("the writer must wait for the reader")
	}
	if err := r.RUnlock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := w.Lock(ctx); err != nil { // waits in the FIFO queue
		log.Fatal(err)
	}
	fmt.Println("writer holds", w.Name(), w.Mode())
	if err := w.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// reader holds config shared
	// the writer must wait for the reader
	// writer holds config exclusive
}
