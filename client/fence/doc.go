// Package fence is the resource's side of raftlock's fencing tokens: it
// lets a storage, a queue or any HTTP service refuse the writes of a lock
// holder that was paused (a GC pause, a stopped VM, a slow network) past
// the end of its hold, once the next holder has written. It imports only
// the standard library.
//
// # Fencing tokens
//
// Every grant of an exclusive lock carries a fencing token: the index of
// the Raft log entry that granted it. Per lock name, tokens strictly
// increase over the cluster's whole history, so the resource needs only
// remember, per name, the highest token it has accepted and refuse any
// lower one. An equal token is the same holder writing again and is
// accepted. Token 0 is never granted and is always refused. The SDK gives
// the token as client.Mutex.Token; `raftlock lock NAME -- CMD` gives it to
// CMD as RAFTLOCK_TOKEN. An election's term (client.Election, `raftlock
// elect`'s RAFTLOCK_TERM) is a fencing token of the election's name in the
// same way; lock and election names are separate namespaces, so give them
// separate Guards.
//
// # Guard
//
// A Guard keeps those highest tokens in memory, one entry per lock name:
//
//	var g fence.Guard // the zero value is ready; keep one per resource
//	if err := g.Check("docs", token); errors.Is(err, fence.ErrStale) {
//		// refuse the write: a later holder has written
//	}
//
// Check only records and compares: two writes that each passed Check may
// still reach the data in the other order. Call it inside the critical
// section that commits the write (under the lock that serialises writes to
// the data), or use Enter, which admits a token only once every request
// admitted with a lower token for that name has ended, and cancels those
// requests' contexts to hurry them.
//
// Middleware does the same for HTTP handlers:
//
//	mux.Handle("PUT /files/{name}", g.Middleware(putFile))
//
// It reads the lock's name and the token from the Raftlock-Lock and
// Raftlock-Fencing-Token headers (HeaderLock, HeaderToken; a client sets
// them with SetHeaders) of every request except GET, HEAD, OPTIONS and
// TRACE, which change nothing and pass unchecked. It answers a missing or
// malformed header with 400 {"error":{"code":"invalid_argument",...}} and
// a stale token with 409 {"error":{"code":"stale_token",...}}, the error
// body of raftlock's own API. The handler must check that the lock the
// header names is the lock that protects what the request changes:
// otherwise a client could name a lock nobody else uses and pass with any
// token.
//
// What a Guard does not do:
//
//   - It lives in memory. A resource that restarts forgets every token,
//     and a paused holder's first write after the restart is accepted if
//     no later holder wrote since. A durable resource stores the fence
//     with its data (below), or seeds a new Guard at start-up with Check
//     of the fences it stored.
//   - It trusts the tokens it is given: it protects against late holders,
//     not against forged tokens. A client that sends a token never granted
//     (say 1<<62) shuts every later holder out of that name until Forget
//     or a restart. Authenticate the resource's clients, or ask the server
//     (below).
//   - It forgets nothing by itself: its memory is one entry per name ever
//     accepted (a name is at most 256 bytes; an entry about 100 more).
//     Forget drops a name that will not be used again (a per-job lock
//     whose job is done); Len counts the entries.
//
// # Storing the fence with the data
//
// A resource that keeps its data in a database keeps the fence in the
// same row, and makes every write conditional on it, in one statement:
//
//	-- once: each row remembers the token of its last write
//	ALTER TABLE documents ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
//
//	-- each write, with $3 the holder's token
//	UPDATE documents SET body = $2, fence = $3
//	 WHERE id = $1 AND fence <= $3;
//
// One row affected: written. None: the id does not exist, or a later
// holder wrote the row (SELECT fence to tell which, and answer the stale
// holder as Middleware does). The database serialises the test and the
// write, so nothing else is needed: no Guard, and nothing lost at a
// restart. Insert-or-update in PostgreSQL:
//
//	INSERT INTO documents (id, body, fence) VALUES ($1, $2, $3)
//	ON CONFLICT (id) DO UPDATE SET body = excluded.body, fence = excluded.fence
//	 WHERE documents.fence <= excluded.fence;
//
// The fence guards the row; to guard several rows with one lock, keep the
// fence in one row per lock name and update it in the same transaction,
// first (UPDATE fences SET fence = $token WHERE name = $lock AND fence <=
// $token, with a row count of 1 or roll back). BIGINT is signed: tokens
// are Raft indexes and stay far below 1<<63.
//
// # Shared holds and semaphores
//
// Everything above is for exclusive locks, where one token supersedes all
// lower ones. Holders of a shared lock or of a semaphore's permits are
// concurrent by design and their tokens supersede nothing, so a Guard would
// refuse legitimate holders. For them the resource asks the server whether
// a token still holds: POST /v1/locks/{name}/check with {"token":N}
// answers {"current":true|false,...}. That costs a round trip per check,
// and the answer can be stale by the time the write lands; it narrows the
// window, it does not close it.
//
// Every type and function of the package is safe for concurrent use.
package fence
