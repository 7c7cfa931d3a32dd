// Package client is the Go SDK of raftlock, a distributed lock service. It
// imports only package api (the wire types) and the standard library.
//
// A Client sends REST requests to a cluster; a Session is a lease that the
// SDK keeps alive in the background; a Mutex is a lock held on behalf of a
// session, with a fencing token and a channel that closes if the hold is
// lost:
//
//	c, err := client.New(client.FromEnv()) // RAFTLOCK_ENDPOINTS, or http://127.0.0.1:7070
//	if err != nil { ... }
//	defer c.Close()
//	s, err := c.NewSession(ctx, client.WithTTL(10*time.Second), client.WithOwner("backup-host-1"))
//	if err != nil { ... }
//	defer s.Close(context.Background()) // releases the session's locks
//
//	m := s.NewMutex("nightly-backup")
//	if err := m.Lock(ctx); err != nil { ... } // waits in the FIFO queue
//	work, stop := context.WithCancel(s.Ctx())
//	defer stop()
//	go func() { <-m.Lost(); stop() }()   // the hold ended other than by Unlock
//	err = runBackup(work, m.Token())     // give the fencing token to the storage
//	if err := m.Unlock(ctx); err != nil { ... }
//
// # Elections
//
// An Election (Session.NewElection) is a FIFO queue of candidates whose head
// leads, with a value and a term (the leadership's fencing token); Campaign
// waits to lead, Proclaim changes the value, Resign steps down, and Lost
// closes if the leadership ends otherwise. Client.Observe streams an
// election's leader changes, resuming across reconnections without gaps.
// Elector wraps it all for an application that just wants to run while it
// leads:
//
//	e := &client.Elector{Client: c, Name: "scheduler", Identity: "10.0.0.7:8080",
//		Callbacks: client.Callbacks{OnStartedLeading: runScheduler}, ReleaseOnCancel: true}
//	err := e.Run(ctx) // until ctx ends; e.IsLeader() and e.Term() meanwhile
//
// # Transport and retries
//
// Requests go to the leader once an answer has named it (header
// Raftlock-Leader), otherwise to the current endpoint. A connection error
// or a 503 moves to the next endpoint after a short jittered backoff, at
// most two passes over the endpoints and never past the caller's context.
// Writes are also retried after a 503 timeout (outcome unknown): acquire,
// release, cancel, keep-alive and close are idempotent for a session, and
// opening a session carries a random client request ID, so that a retry
// answers the session the first attempt may have opened. A call whose
// retries run out after an unknown outcome returns an error matching
// api.ErrOutcomeUnknown, never success.
//
// # Errors
//
// Errors answered by the server are *api.Error values that match the
// sentinels of package api, one per wire code (api.ErrLockHeld,
// api.ErrNotHolder, api.ErrSessionNotFound, api.ErrUnavailable,
// api.ErrOutcomeUnknown, api.ErrInvalidArgument, api.ErrElectionNotLeader);
// test them with errors.Is. The SDK adds ErrSessionLost, ErrSessionClosed and ErrNotLocked.
//
// # Safety
//
// A lock is safe to act on until Session.SafeUntil (the last acknowledged
// renewal's send time + TTL − a margin), when Session.Ctx is cancelled if no
// renewal came. Always pass Mutex.Token to the protected resource so it can
// refuse writes of an older holder.
//
// Every type is safe for concurrent use.
package client
