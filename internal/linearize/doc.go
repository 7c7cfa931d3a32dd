// Package linearize checks that a recorded history of raftlock client
// operations is linearizable, with porcupine
// (github.com/anishathalye/porcupine) and sequential models of one lock with
// sessions and fencing tokens, and of one election. Test harnesses (the
// deterministic cluster simulation, the real-process chaos test) record
// every call and answer in a History and call Check at the end.
//
// # Recording
//
// Call records the start of an operation and Return its answer; an
// operation that never returns counts as Unknown. Times are any int64 that
// orders events (nanoseconds, simulated ticks); an answer must be recorded
// at or after its call. A client is any int that names a sequential caller;
// it only lays out the visualization.
//
// # What the models check
//
// Every lock name and every election name (separate namespaces) is checked
// on its own, with the session operations (KeepAlive, CloseSession, Name "")
// of every session that appears in it copied in. Per name:
//
//   - A lock has at most one holder, a session. A grant's token is strictly
//     greater than every token granted before in that lock (it is the index
//     of the granting log entry). Acquire or TryAcquire by the holder answers
//     its token again. Release with the holder's session and token frees the
//     lock; any other Release answers NotHolder and changes nothing.
//     TryAcquire of a lock held by another answers Locked.
//   - An election has at most one leader, with a value and a term (its
//     fencing token, strictly increasing like lock tokens). Campaign makes a
//     session the leader when nobody leads (a Campaign by the leader answers
//     its term and proclaims its value, as etcd's Campaign does); Proclaim with the leader's term changes
//     the value; Resign with it ends the leadership.
//   - GetLock and GetLeader are linearizable reads of that state.
//   - An answer that names the holder (Locked, or NotLeader of a Campaign,
//     Proclaim or Resign, with Output.Session != 0) names the holder at that
//     point: its session, its token unless Output.Token is 0 (not known),
//     and for an election its value. Output.Session 0 names nobody. The
//     Output.Value of a Campaign answered OK is not checked.
//   - Sessions end at times the history does not show (the server's clock
//     decides expiry), so the model may deem any session dead at any point.
//     A dead session holds nothing and leads nothing, and no later operation
//     of it may succeed: a successful KeepAlive, Release, grant, Campaign,
//     Proclaim or Resign of a session proves it was alive at that point, and
//     SessionExpired proves it was dead. A second holder (or leader) is
//     therefore accepted only if the first one's session is dead and never
//     succeeds at anything again.
//
// Waiters are not modelled: a waiting Acquire or Campaign takes effect at
// the instant it is granted, so FIFO fairness is not checked; an Acquire
// whose wait ran out answers Locked (a Campaign NotLeader) like a try.
// Ephemeral sessions (an Acquire without a session) are not modelled.
//
// # Uncertain answers
//
// Unknown (and an operation never returned) means the operation may or may
// not have taken effect, once, at any instant after its call, however late
// (a lost Acquire may sit in the queue and be granted much later). A grant
// or leadership that took effect unseen has an unknown token until an
// answer shows it (a GetLock, a retried Acquire, a Release that succeeds
// with it). An Unknown Campaign of a session that already leads may still
// take effect later and proclaim its value.
//
// Cancelled (Acquire, TryAcquire, Campaign only) means the caller gave up
// waiting and holds nothing from its answer on: either the operation never
// took effect, or it was granted (with an unknown token, observable by
// others) and released again, both within the operation's interval. A
// harness must answer Cancelled only when it knows that: a wait abandoned
// without a confirmed release (the server never releases the grant of a
// client that went away) is Unknown.
//
// Reads (GetLock, GetLeader), KeepAlive and CloseSession answered Unknown
// carry no information and are left out.
//
// # How it is checked
//
// The models are nondeterministic: unseen events (a session dies; an
// Unknown write takes effect; a Cancelled wait is granted, or releases its
// grant) happen lazily, only when an answer cannot be explained otherwise,
// and the checker follows the set of states the model may be in (a
// power-set construction that also drops states another one covers). An
// Unknown or Cancelled operation is checked as zero-width steps at its call
// (and, for Cancelled, at its answer) rather than as an operation that never
// ends, which keeps the search small.
//
// Check runs the search porcupine runs (depth-first over linearization
// orders, with a cache of visited states) on porcupine models, plus one
// reduction porcupine cannot make: an observation (a read, a refused or
// failed operation, a KeepAlive) that is possible and changes nothing is
// linearized at once, without trying other operations in its place (see
// search). A test checks that it agrees with porcupine's checker on
// thousands of random histories. Visualize uses porcupine itself.
//
// Valid histories of a few thousand operations check in milliseconds; a
// violation takes longer to prove (every order must fail), typically tens
// of milliseconds, rarely a second. Locked answers that name the holder
// (Output.Session) keep the search small: an anonymous Locked may be
// explained by any pending grant. Treat a TimedOut result as a failure to
// look at, not as a pass.
package linearize
