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
// # Read-write locks and semaphores
//
// An RWMutex (Session.NewRWMutex) is the same lock as a Mutex of that name,
// with a shared mode: RLock holds it together with other readers, Lock
// alone; the queue is FIFO and fair both ways (a reader behind a waiting
// writer waits), and one RWMutex holds in one mode at a time (asking for
// the other is an error matching api.ErrModeMismatch). A Semaphore
// (Session.NewSemaphore) lets at most its limit of sessions hold a permit
// at once; the others wait FIFO, and another limit while it has holders is
// an error matching api.ErrLimitMismatch. Both wait, retry, give up and
// lose their holds exactly as a Mutex does, with a Token and a Lost
// channel per hold:
//
//	rw := s.NewRWMutex("config")
//	if err := rw.RLock(ctx); err != nil { ... } // many readers, or one writer with Lock
//	defer rw.RUnlock(ctx)
//
//	sem := s.NewSemaphore("backups", 3) // at most 3 sessions at once
//	if err := sem.Acquire(ctx); err != nil { ... }
//	defer sem.Release(ctx)
//
// Session.TryLockAllModes takes several locks, each shared or exclusive,
// in one log entry. Client.SemaphoreInfo, Semaphores and CheckPermit read
// semaphores as LockInfo, Locks and CheckToken read locks.
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
// Raftlock-Leader), otherwise to the current endpoint. The header is
// followed only to a configured endpoint or to a member's advertised
// client URL (GET /v1/status, read from the node that named the leader,
// again at most once a second when a header names a URL not known yet),
// with the endpoints' scheme; anything else is ignored, and requests stay
// on the node that answered, which forwards them.
//
// Every call of the SDK retries, except where said below. A connection
// error or a 503 moves to the next endpoint after a short jittered
// backoff, at most two passes over the endpoints and never past the
// caller's context. A 429 rate_limited is retried on the same node after
// its Retry-After (at most a minute; a longer one, or one past the
// context's deadline, ends the call with that error at once). Writes are
// also retried after a 503 timeout (outcome unknown): acquire, release,
// cancel, keep-alive and close are idempotent for a session, and opening a
// session carries a random client request ID, so that a retry answers the
// session the first attempt may have opened. A call whose retries run out
// after an unknown outcome returns an error matching api.ErrOutcomeUnknown,
// never success. CreateToken and ForceRelease are not retried after an
// unknown outcome (see their documentation); Observe reconnects for as
// long as its context lasts, after a failure's backoff or a Retry-After.
// 401, 403, 429 quota_exceeded and 507 are definite answers: never retried.
//
// # TLS and access control
//
// With https:// endpoints, Config.TLS gives the CA to trust (RootCAs) and,
// if the cluster checks client certificates, the Client's certificate,
// whose common name is its principal. Config.AuthToken is a bearer token
// (Client.CreateToken makes one), sent on every request; it goes only where
// requests go, never into a log or an error. With auth on, a session
// belongs to the principal that opened it: another principal's keep-alive,
// release or close of it is refused with 403. The administration of users,
// roles and tokens, Client.ForceRelease and closing another principal's
// session (Client.CloseSession) need an admin principal; see auth.go's
// calls (Client.PutUser, PutRole, CreateToken, RevokeToken, EnableAuth,
// WhoAmI, ...). Grant read together with lock or elect: a Session notices
// that a hold was taken from it (an expiry, an admin's ForceRelease) by
// reading the lock, semaphore or election.
//
// # Errors
//
// Errors answered by the server are *api.Error values that match the
// sentinels of package api, one per wire code (api.ErrLockHeld,
// api.ErrNotHolder, api.ErrSessionNotFound, api.ErrUnavailable,
// api.ErrOutcomeUnknown, api.ErrInvalidArgument, api.ErrElectionNotLeader,
// api.ErrUnauthenticated, api.ErrPermissionDenied, api.ErrQuotaExceeded,
// api.ErrRateLimited, api.ErrNoSpace, api.ErrDeadlock,
// api.ErrModeMismatch, api.ErrLimitMismatch); test them with errors.Is. An answer
// without the API's error body (a proxy's page) gets the code of its HTTP
// status (401 unauthenticated, 403 permission_denied, 429 rate_limited,
// 507 no_space, 502/503 unavailable, ...). The SDK adds ErrSessionLost,
// ErrSessionClosed and ErrNotLocked, *LockedError and *FullError (the
// refusals of a try, matching api.ErrLockHeld), and *UnreachableError when no endpoint
// answered at all ("cannot reach raftlockd at http://127.0.0.1:7070
// (connection refused)"; it matches api.ErrUnavailable).
//
// # Safety
//
// A lock is safe to act on until Session.SafeUntil (the last acknowledged
// renewal's send time + TTL − a margin), when Session.Ctx is cancelled if no
// renewal came. Always pass Mutex.Token to the protected resource so it can
// refuse writes of an older holder: package client/fence is the resource's
// side (a guard and an HTTP middleware), and Client.CheckToken asks the
// cluster whether a token is the holder's now. Session.TryLockAll takes
// several locks in one log entry, or none; a Lock that would close a cycle
// of waits fails at once with an error matching api.ErrDeadlock.
//
// Every type is safe for concurrent use.
package client
