package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Header names and query parameters of the API.
const (
	// HeaderLeader is set on every answer to the client URL of the leader,
	// when the answering node knows it. Clients send their next write there.
	HeaderLeader = "Raftlock-Leader"
	// HeaderForwarded marks a request that a follower forwarded to the
	// leader. A node that receives it and is not the leader answers 503
	// unavailable instead of forwarding again. Clients never set it.
	HeaderForwarded = "Raftlock-Forwarded"
	// QueryConsistency selects the consistency of a GET: absent means
	// linearizable, ConsistencyStale a possibly stale read of the answering
	// node's local state. Any other value is invalid.
	QueryConsistency = "consistency"
	// ConsistencyStale is the value of QueryConsistency for a stale read.
	ConsistencyStale = "stale"
	// QueryPrefix filters GET /v1/locks and GET /v1/elections by name
	// prefix.
	QueryPrefix = "prefix"
	// QueryLimit bounds the number of items of one page of a listing
	// (1 to MaxListLimit; DefaultListLimit when absent).
	QueryLimit = "limit"
	// QueryAfter resumes a listing after this name: the Next of the
	// previous page.
	QueryAfter = "after"
	// QueryParts and QueryPart split GET /v1/sessions/{id}/locks: with
	// parts=k (a power of two, 1 to MaxLockParts) and part=i (0 to k-1)
	// it answers only the locks whose LockPart(name, k) is i, so that a
	// session holding many locks can be checked a part at a time.
	QueryParts = "parts"
	QueryPart  = "part"
)

// MaxLockParts is the most parts GET /v1/sessions/{id}/locks splits into.
const MaxLockParts = 1024

// LockPart is the part (0 to parts-1) of lock name when a session's locks
// are split into parts (a power of two): the low bits of the 32-bit FNV-1a
// hash of the name's bytes.
func LockPart(name string, parts int) int {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return int(h & uint32(parts-1))
}

// Sizes of the pages of listings (GET /v1/locks, GET /v1/elections).
const (
	// DefaultListLimit is the page size of a listing without ?limit=.
	DefaultListLimit = 1000
	// MaxListLimit is the largest ?limit= of a listing.
	MaxListLimit = 10000
)

// Limits enforced by the server.
const (
	// MaxBodyBytes is the largest request body accepted (1 MiB).
	MaxBodyBytes = 1 << 20
	// MaxLockNameLen is the longest lock name, in bytes.
	MaxLockNameLen = 256
	// MaxOwnerLen is the longest owner label, in bytes.
	MaxOwnerLen = 256
)

// SessionID is a session's ID. On the wire it is a decimal string ("42");
// zero means "no session" and is omitted by omitempty. Decoding accepts only
// a JSON string holding a decimal integer > 0.
type SessionID uint64

// String returns the decimal form.
func (id SessionID) String() string { return strconv.FormatUint(uint64(id), 10) }

// MarshalJSON encodes the ID as a decimal string.
func (id SessionID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + id.String() + `"`), nil
}

// UnmarshalJSON decodes a decimal string > 0; null leaves id unchanged.
func (id *SessionID) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // encoding/json's convention: null leaves the value alone
	}
	var s string
	if len(b) == 0 || b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return fmt.Errorf("session id must be a JSON string holding a decimal integer, not %s", clip(b))
	}
	v, err := ParseSessionID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseSessionID parses a decimal session ID > 0 without leading zeros
// (the only form the server writes), as in a URL path.
func ParseSessionID(s string) (SessionID, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 || s[0] == '0' {
		return 0, fmt.Errorf("session id %q is not a decimal integer between 1 and 18446744073709551615 without leading zeros", clipString(s))
	}
	return SessionID(v), nil
}

// Duration is a time.Duration that is a Go duration string on the wire
// ("10s", "1m30s"). Zero is omitted by omitempty.
type Duration time.Duration

// String returns the Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.String() + `"`), nil
}

// UnmarshalJSON decodes a Go duration string (negative values decode; the
// server rejects them); null leaves d unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // encoding/json's convention: null leaves the value alone
	}
	var s string
	if len(b) == 0 || b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return fmt.Errorf("duration must be a JSON string such as \"10s\", not %s", clip(b))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as \"500ms\", \"10s\" or \"1m30s\"", clipString(s))
	}
	*d = Duration(v)
	return nil
}

func clip(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func clipString(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ValidateLockName reports whether name is a valid lock name: 1 to
// MaxLockNameLen bytes of ASCII letters, digits and '.', '_', '-', ':', '/',
// in '/'-separated segments none of which is empty, "." or ".." (so no
// leading or trailing '/' and no "//"). The error says which rule is broken.
func ValidateLockName(name string) error {
	if name == "" {
		return fmt.Errorf("lock name is empty: use 1 to %d bytes of ASCII letters, digits and . _ - : /", MaxLockNameLen)
	}
	if len(name) > MaxLockNameLen {
		return fmt.Errorf("lock name is %d bytes long: at most %d are allowed", len(name), MaxLockNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("lock name %q has the character %q at byte %d: only ASCII letters, digits and . _ - : / are allowed", clipString(name), name[i], i)
		}
	}
	return checkNameSegments(name)
}

// ValidateLockPrefix reports whether prefix may be a prefix of a lock name:
// empty, or up to MaxLockNameLen bytes of the lock name characters whose
// complete segments follow the name rules; it may end with '/' ("jobs/").
func ValidateLockPrefix(prefix string) error {
	return validateLockPrefix(prefix)
}

func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == '-', c == ':', c == '/':
		return true
	}
	return false
}

// LockPath returns the URL path of lock name, "/v1/locks/" followed by the
// name with every '/' percent-encoded, so that it is safe for any name
// whatever action follows (LockPath(n)+"/acquire").
func LockPath(name string) string { return "/v1/locks/" + url.PathEscape(name) }

// KeepAlivePath is the URL path of the batched keep-alive.
const KeepAlivePath = "/v1/sessions/keepalive"

// SessionPath returns the URL path of session id, "/v1/sessions/<id>".
func SessionPath(id SessionID) string { return "/v1/sessions/" + id.String() }

// MaxRequestIDLen is the longest client request ID, in bytes.
const MaxRequestIDLen = 64

// CreateSessionRequest is the body of POST /v1/sessions.
type CreateSessionRequest struct {
	// TTL is the session's time to live, renewed by each keep-alive.
	// Required, within the server's bounds (by default 2s to 1h).
	TTL Duration `json:"ttl"`
	// Owner is a free-form label (at most MaxOwnerLen bytes) shown to
	// others, e.g. "host-a/pid-42".
	Owner string `json:"owner,omitempty"`
	// RequestID makes opening a session safe to retry: a request with the
	// RequestID of one that opened a session that still exists answers
	// that session (201, same ID) instead of opening another. Choose a new
	// random one per session (the Go SDK sends 32 hex digits); at most
	// MaxRequestIDLen bytes of printable ASCII. Optional.
	RequestID string `json:"request_id,omitempty"`
	// LockDelay (0 to MaxLockDelay, off by default): when the session
	// expires holding a lock, nobody is granted that lock until the delay
	// has passed, for resources that cannot check fencing tokens (a clean
	// release or close grants at once). Needs cluster version 5.
	LockDelay Duration `json:"lock_delay,omitempty"`
}

// MaxLockDelay bounds a session's lock_delay.
const MaxLockDelay = 60 * time.Second

// SessionResponse answers POST /v1/sessions (201) and
// POST /v1/sessions/{id}/keepalive (200; Owner is empty there), and is one
// renewed session of a KeepAliveResponse.
type SessionResponse struct {
	ID    SessionID `json:"id"`
	TTL   Duration  `json:"ttl"`
	Owner string    `json:"owner,omitempty"`
}

// MaxKeepAliveIDs is the most session IDs one batched keep-alive
// (POST /v1/sessions/keepalive) may renew.
const MaxKeepAliveIDs = 10000

// KeepAliveRequest is the body of POST /v1/sessions/keepalive: the sessions
// to renew, 1 to MaxKeepAliveIDs distinct IDs. All of them are renewed by
// one log entry.
type KeepAliveRequest struct {
	IDs []SessionID `json:"ids"`
}

// KeepAliveResponse answers POST /v1/sessions/keepalive (200). Every
// requested ID is in exactly one of the two lists, each in request order.
type KeepAliveResponse struct {
	// Sessions are the renewed sessions with their TTL (Owner is empty).
	// Never null.
	Sessions []SessionResponse `json:"sessions"`
	// Expired are the sessions that do not exist (expired, closed or never
	// opened): they were not renewed and never will be. Never null.
	Expired []SessionID `json:"expired"`
}

// CloseSessionResponse answers DELETE /v1/sessions/{id}.
type CloseSessionResponse struct {
	ID SessionID `json:"id"`
}

// Session answers GET /v1/sessions/{id}.
type Session struct {
	ID    SessionID `json:"id"`
	Owner string    `json:"owner"`
	TTL   Duration  `json:"ttl"`
	// Deadline is when the session expires unless renewed, on the cluster's
	// clock (the leaders' wall clocks, never running backwards).
	Deadline time.Time `json:"deadline"`
	// Locks are the locks the session holds, sorted. Never null.
	Locks []string `json:"locks"`
	// Waiting are the locks the session is queued for, sorted. Never null.
	Waiting []string `json:"waiting"`
	// Bound is, for an ephemeral session, the lock it was opened for.
	Bound string `json:"bound,omitempty"`
	// Permits are the semaphores it holds a permit of, SemWaiting those it
	// is queued for, Campaigns the elections it leads or is a candidate
	// in; sorted, absent when empty.
	Permits    []string `json:"permits,omitempty"`
	SemWaiting []string `json:"sem_waiting,omitempty"`
	Campaigns  []string `json:"campaigns,omitempty"`
}

// SessionLocks answers GET /v1/sessions/{id}/locks: the locks the session
// holds and the index of the log entry at which that list last changed (or
// an index at which it was already this list), also sent as the ETag
// "<changed_at>". A request with If-None-Match: "<changed_at>" is answered
// 304 Not Modified, without a body, while the list is still the same: a
// client that watches its holds pays for the list only when it changes.
// Any member's answer is a valid validator for any other's (the same index
// always stands for the same list).
type SessionLocks struct {
	Session   SessionID `json:"session"`
	ChangedAt uint64    `json:"changed_at"`
	// Locks are the locks the session holds (exclusive or shared),
	// sorted. Never null.
	Locks []string `json:"locks"`
}

// SessionLocksPath is the URL path of session id's locks.
func SessionLocksPath(id SessionID) string { return SessionPath(id) + "/locks" }

// SessionList answers GET /v1/sessions?owner=o&limit=n&after=id: a page
// of the sessions sorted by ID (those of the caller's principal only, when
// auth is on and it may not read every name), and the cursor of the next
// page (absent on the last). A filter that matches rarely may answer a
// page shorter than the limit, even an empty one, with a cursor: the
// server bounds how many sessions one page scans. Sessions is never null.
type SessionList struct {
	Sessions []Session `json:"sessions"`
	Next     string    `json:"next,omitempty"`
}

// QueryOwner filters GET /v1/sessions by owner label.
const QueryOwner = "owner"

// AcquireRequest is the body of POST /v1/locks/{name}/acquire. Exactly one
// of Session and TTL is set: Session acquires for an existing session; TTL
// opens an ephemeral session bound to this lock, which is closed when the
// lock is released (or the session expires).
type AcquireRequest struct {
	// Session acquires for this session.
	Session SessionID `json:"session,omitempty"`
	// Wait is how long to wait in the lock's FIFO queue when it is held.
	// Zero tries once. At most the server's MaxWait (default 5m).
	Wait Duration `json:"wait,omitempty"`
	// TTL opens an ephemeral session with this TTL (no Session).
	TTL Duration `json:"ttl,omitempty"`
	// Owner labels the ephemeral session (only with TTL).
	Owner string `json:"owner,omitempty"`
	// KeepQueued keeps the session's place in the queue when the wait
	// runs out or the client goes away: the answer is then 409 lock_held
	// with "queued": true, and a later acquire by the session (which keeps
	// its place) or a cancel settles it. Only with Session. With no Wait
	// it joins the queue and answers at once: a try that, when the lock is
	// held, leaves the session waiting in line (the SDK's Lock starts so,
	// in a batch, and then waits without another write).
	KeepQueued bool `json:"keep_queued,omitempty"`
	// Mode is ModeExclusive (the default, also "") or ModeShared: shared
	// holders hold the lock together, an exclusive holder alone. A session
	// that holds or waits in one mode and asks for the other gets 409
	// mode_mismatch (no upgrades or downgrades).
	Mode string `json:"mode,omitempty"`
}

// The modes of a lock hold.
const (
	ModeExclusive = "exclusive"
	ModeShared    = "shared"
)

// CancelRequest is the body of POST /v1/locks/{name}/cancel and
// POST /v1/elections/{name}/cancel: take Session out of the queue.
type CancelRequest struct {
	Session SessionID `json:"session"`
}

// CancelResponse answers a cancel of a lock (200). Left is true when the
// session was taken out of the queue by this request. Grant is the lock's
// grant when the session holds it (the grant won the race with the
// cancel, or an earlier attempt): it is the caller's to release. A session
// that was neither queued nor holding gets {"left":false,"grant":null}: a
// retried cancel is safe.
type CancelResponse struct {
	Left  bool       `json:"left"`
	Grant *LockGrant `json:"grant"`
}

// LockGrant answers a successful acquire and release: the lock, the session
// and the fencing token of the grant (for a release: the released token).
type LockGrant struct {
	Name    string    `json:"name"`
	Session SessionID `json:"session"`
	Token   uint64    `json:"token"`
	// Mode is "shared" for a shared hold; absent for an exclusive one.
	Mode string `json:"mode,omitempty"`
}

// ReleaseRequest is the body of POST /v1/locks/{name}/release.
type ReleaseRequest struct {
	Session SessionID `json:"session,omitempty"`
	// Token is the fencing token of the grant being released (> 0).
	Token uint64 `json:"token,omitempty"`
	// Force releases the lock whoever holds it (admin only; session and
	// token are then optional and ignored). The lock_released event names
	// the admin in "by".
	Force bool `json:"force,omitempty"`
}

// Holder is a session holding a lock, or a permit of a semaphore.
type Holder struct {
	Session SessionID `json:"session"`
	Owner   string    `json:"owner"`
	Token   uint64    `json:"token"`
	// Since is when the lock was granted, on the cluster's clock.
	Since time.Time `json:"since"`
	// Mode is the hold's mode in a lock's Holders ("exclusive" or
	// "shared"); absent elsewhere.
	Mode string `json:"mode,omitempty"`
}

// Waiter is a session queued for a lock or a semaphore.
type Waiter struct {
	Session SessionID `json:"session"`
	Owner   string    `json:"owner"`
	// Since is when it joined the queue, on the cluster's clock.
	Since time.Time `json:"since"`
	// Mode is "shared" for a shared waiter of a lock; absent otherwise.
	Mode string `json:"mode,omitempty"`
}

// Lock answers GET /v1/locks/{name}. A free lock has a null Holder and no
// holders or waiters.
type Lock struct {
	Name string `json:"name"`
	// Holder is the exclusive holder: null when the lock is free or held
	// shared.
	Holder *Holder `json:"holder"`
	// Holders are every holder with its mode and token: the exclusive
	// one, or the shared ones in grant order. Never null.
	Holders []Holder `json:"holders"`
	// Waiters are in queue order (the head is granted next). Never null.
	Waiters []Waiter `json:"waiters"`
	// DelayedUntil is set while the lock is in its lock-delay (its holder
	// expired with a lock_delay): nobody holds it until then, on the
	// cluster's clock.
	DelayedUntil *time.Time `json:"delayed_until,omitempty"`
}

// LockList answers GET /v1/locks?prefix=p&limit=n&after=name: a page of the
// locks that are held or have waiters, sorted by name. Locks is never null.
// Next is set when more locks follow: pass it as ?after= for the next page.
type LockList struct {
	Locks []Lock `json:"locks"`
	Next  string `json:"next,omitempty"`
}

// Member is one member of the cluster.
type Member struct {
	ID        uint64 `json:"id"`
	PeerURL   string `json:"peer_url"`
	ClientURL string `json:"client_url"`
	// Learner: the member receives the log but does not vote.
	Learner bool `json:"learner,omitempty"`
	// Progress is the leader's view of the member's log: only in the
	// leader's answer.
	Progress *MemberProgress `json:"progress,omitempty"`
}

// MemberProgress is how far a member's log matches the leader's (GET
// /v1/status on the leader, refreshed every Raft tick).
type MemberProgress struct {
	// Match is the highest log index known to match the leader's.
	Match uint64 `json:"match"`
	// Behind is how many entries the member lacks: the leader's last
	// index minus Match.
	Behind uint64 `json:"behind"`
	// Reachable: the leader heard from the member within the last
	// election timeout.
	Reachable bool `json:"reachable"`
	Learner   bool `json:"learner,omitempty"`
}

// Status answers GET /v1/status: the answering node's view.
type Status struct {
	// ID is the answering node's member ID.
	ID uint64 `json:"id"`
	// Leader is the leader's member ID, 0 when unknown.
	Leader uint64 `json:"leader"`
	// LeaderURL is the leader's client URL, "" when unknown.
	LeaderURL string `json:"leader_url,omitempty"`
	Term      uint64 `json:"term"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	// Ready is true while the node knows a leader and has applied all it
	// knows to be committed (as /readyz).
	Ready   bool     `json:"ready"`
	Members []Member `json:"members"`
	// ReadIndexRequests counts the ReadIndex requests this node sent since
	// it started: one serves every linearizable read queued when it was
	// sent, so under load it grows slower than the reads.
	// ReadIndexRetries counts those sent again after going unanswered.
	ReadIndexRequests uint64 `json:"read_index_requests"`
	ReadIndexRetries  uint64 `json:"read_index_retries"`
	// DroppedPeerMessages counts the inbound raft messages this node
	// dropped since it started because they did not come from another
	// member or were not addressed to this node.
	DroppedPeerMessages uint64 `json:"dropped_peer_messages"`
	// Alarms are the alarms raised in the cluster, the same on every node:
	// {"member":2,"alarm":"nospace"} while member 2's disk is nearly full
	// (then what would grow the state answers 507 no_space). Empty when
	// none.
	Alarms []Alarm `json:"alarms"`
	// ClusterID is the cluster's ID in hexadecimal, fixed when the cluster
	// was created (a restored cluster gets a new one).
	ClusterID string `json:"cluster_id"`
	// ClusterVersion is the newest log command format that every member
	// reads: commands that need a newer one are refused (409
	// failed_precondition) until every member runs a build that reads it.
	ClusterVersion int `json:"cluster_version"`
}

// Health answers GET /healthz and GET /readyz: {"status":"ok"}.
type Health struct {
	Status string `json:"status"`
}

// Alarm is an alarm raised by a member (GET /v1/status).
type Alarm struct {
	Member uint64 `json:"member"`
	// Alarm is "nospace": the member's data dir is nearly full.
	Alarm string `json:"alarm"`
}

// LeaderTransferPath hands the Raft leadership to another voter (admin once
// auth is on): POST {"to":ID}, or {} (or no body) for the voter whose log is
// furthest along. It answers 200 LeaderTransfer once another member leads,
// or 503 unavailable when leadership did not move within the election
// timeout (nothing else changed). A follower forwards it to the leader.
const LeaderTransferPath = "/v1/leader/transfer"

// LeaderTransferRequest is the body of POST /v1/leader/transfer.
type LeaderTransferRequest struct {
	// To is the member to hand leadership to; 0 (or absent): the most
	// caught-up voter.
	To uint64 `json:"to,omitempty"`
}

// LeaderTransfer answers a leader transfer: the member that leads now and
// its Raft term.
type LeaderTransfer struct {
	Leader uint64 `json:"leader"`
	Term   uint64 `json:"term"`
}
