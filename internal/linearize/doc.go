// Package linearize checks that a recorded history of raftlock client
// operations is linearizable, with porcupine
// (github.com/anishathalye/porcupine) and sequential models of a lock
// (exclusive or shared holds) with sessions and fencing tokens, of an
// election, and of a counting semaphore. Test harnesses (the deterministic
// cluster simulation, the real-process chaos test) record every call and
// answer in a History and call Check at the end.
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
// Every lock name, election name and semaphore name (three separate
// namespaces) is checked on its own, with the session operations
// (KeepAlive, CloseSession, Name "") of every session that appears in it
// copied in. Tokens are the indexes of the log entries that granted them:
// in each name, an exclusive lock hold's token and a leadership's term are
// greater than every token granted before; a shared hold's and a permit's
// are at least as great (one entry may grant several shared holds or
// permits), and greater than every token granted before a release that
// was answered OK (a release is an entry of its own). Per name:
//
//   - A lock has either one exclusive holder or any number of shared
//     holders (Input.Shared), each a session with its own token. Acquire
//     or TryAcquire by a session that holds in the same mode answers its
//     token again. The server refuses (mode_mismatch) a session that holds
//     in one mode and asks for the other; harnesses do not record that, and
//     the model finds every answer to such a request impossible while the
//     session holds in the other mode. Release with the session and token
//     of a holder ends that hold (the others keep theirs); any other
//     Release answers NotHolder and changes nothing. An exclusive
//     TryAcquire answers Locked when anyone holds; a shared one when an
//     exclusive holder holds, or, since waiters are not modelled, when
//     shared holders hold (an exclusive waiter may be queued, and shared
//     requests wait behind it). A Locked answer to a free lock, or to a
//     holder of the lock, is wrong.
//   - A semaphore (SemAcquire, SemTryAcquire, SemRelease, GetSemaphore)
//     has at most Input.Limit permit holders, one permit per session, each
//     with its token. An acquire by a holder answers its token again.
//     SemRelease with a holder's session and token gives its permit back;
//     any other answers NotHolder. Locked (SemTryAcquire, or a SemAcquire
//     whose wait ran out) is right only when every permit is held by other
//     sessions at that point. GetSemaphore reads every holder and token
//     (and the limit, when the answer has it).
//   - An election has at most one leader, with a value and a term.
//     Campaign makes a session the leader when nobody leads (a Campaign by
//     the leader answers its term and proclaims its value, as etcd's
//     Campaign does); Proclaim with the leader's term changes the value;
//     Resign with it ends the leadership.
//   - GetLock, GetLeader and GetSemaphore are linearizable reads of that
//     state. GetLock shows the exclusive holder (Output.Session/Token, 0
//     for none), and, when Output.Holders is not nil, every holder: see
//     Output.
//   - An answer that names a holder (Locked, or NotLeader of a Campaign,
//     Proclaim or Resign, with Output.Session != 0) names one of the
//     holders at that point: its session, its token unless Output.Token is
//     0 (not known), and for an election its value. Output.Session 0 names
//     nobody. A Locked answer may also show every holder
//     (Output.Holders), which both checks more and keeps the search small.
//     The Output.Value of a Campaign answered OK is not checked.
//   - Sessions end at times the history does not show (the server's clock
//     decides expiry), so the model may deem any session dead at any
//     point. A dead session holds nothing (no lock, no permit) and leads
//     nothing, and no later operation of it may succeed: a successful
//     KeepAlive, release, grant, Campaign, Proclaim or Resign of a session
//     proves it was alive at that point, and SessionExpired proves it was
//     dead. A holder in the way (a second exclusive holder, a full
//     semaphore) is therefore accepted only if an earlier holder's session
//     is dead and never succeeds at anything again.
//
// Waiters are not modelled: a waiting Acquire, SemAcquire or Campaign
// takes effect at the instant it is granted, so FIFO fairness is not
// checked; an Acquire or SemAcquire whose wait ran out answers Locked (a
// Campaign NotLeader) like a try. Ephemeral sessions (an Acquire without a
// session) and lock-delay are not modelled.
//
// # Uncertain answers
//
// Unknown (and an operation never returned) means the operation may or may
// not have taken effect, once, at any instant after its call, however late
// (a lost Acquire may sit in the queue and be granted much later). A grant
// or leadership that took effect unseen has an unknown token until an
// answer shows it (a read, a retried acquire, a release that succeeds with
// it). An exclusive hold or a leadership granted unseen came after every
// grant before it, so its token is greater than theirs; a shared hold or
// permit granted unseen may have come before other shared grants, so the
// model bounds its token only below, by the tokens shown by the answers
// returned before the call of the session's first lost or cancelled
// acquire (of a shared hold or a permit) of that name, and above by the
// grants the model made after it. An
// Unknown Campaign of a session that already leads may still take effect
// later and proclaim its value.
//
// Cancelled (Acquire, TryAcquire, SemAcquire, Campaign only) means the
// caller gave up waiting and holds nothing from its answer on: either the
// operation never took effect, or it was granted (with an unknown token,
// observable by others) and released again, both within the operation's
// interval. A harness must answer Cancelled only when it knows that: a wait
// abandoned without a confirmed release (the server never releases the
// grant of a client that went away) is Unknown.
//
// A semaphore that a Locked answer needs full may be filled by grants made
// unseen (lost or cancelled acquires of other sessions, one per session).
// The model does not pick which: it counts "phantom" holders, which may go
// at any time, while the grants they stand for stay pending. That is
// coarser than the rest of the model (a lost acquire may both fill the
// semaphore and be granted later), and never rejects a correct history.
//
// Reads (GetLock, GetLeader, GetSemaphore), KeepAlive and CloseSession
// answered Unknown carry no information and are left out.
//
// # How it is checked
//
// The models are nondeterministic: unseen events (a session dies; an
// Unknown write takes effect; a Cancelled wait is granted, or releases its
// grant) happen lazily, only when an answer cannot be explained otherwise,
// and the checker follows the set of states the model may be in (a
// power-set construction that also drops states another one covers, and
// forgets who holds once no operation will show it). An Unknown or
// Cancelled operation is checked as zero-width steps at its call (and, for
// Cancelled, at its answer) rather than as an operation that never ends,
// which keeps the search small.
//
// Check runs the search porcupine runs (depth-first over linearization
// orders, with a cache of visited states) on porcupine models, plus one
// reduction porcupine cannot make: an observation (a read, a refused or
// failed operation, a KeepAlive, an acquire that can only be a retry) that
// is possible and changes nothing is linearized at once, without trying
// other operations in its place (see search). A test checks that it agrees
// with porcupine's checker on thousands of random histories. Visualize
// uses porcupine itself.
//
// Valid histories of a few thousand operations check in milliseconds; a
// single lock or semaphore that a dozen sessions fight over takes tenths
// of a second, and up to seconds with many lost answers (every unseen
// death or grant that may explain an answer is a branch). A violation
// takes longer to prove (every order must fail), typically tens of
// milliseconds, rarely a second. Locked answers that name the holder (Output.Session), or better
// all of them (Output.Holders), keep the search small: an anonymous Locked
// may be explained by any pending grant. Treat a TimedOut result as a
// failure to look at, not as a pass.
package linearize
