package api

import "time"

// Event is one change of state, as streams carry it. Revision is the index
// of the log entry that made the change and Seq its position among that
// entry's events.
type Event struct {
	Revision uint64 `json:"revision"`
	Seq      uint32 `json:"seq"`
	// Type is the change: session_opened, session_closed, session_expired,
	// lock_granted, lock_released, lock_queued, lock_cancelled, and for
	// elections elected, proclaimed, resigned, leader_expired, no_leader,
	// candidate_joined, candidate_left, and for semaphores permit_granted,
	// permit_released, permit_queued, permit_cancelled. New types may be
	// added.
	Type    string    `json:"type"`
	Session SessionID `json:"session,omitempty"`
	// Owner is the session's owner label, when known.
	Owner string `json:"owner,omitempty"`
	// Name is the lock or election name; empty for session events.
	Name string `json:"name,omitempty"`
	// Token is the fencing token (lock events) or leadership term
	// (election events) concerned.
	Token uint64 `json:"token,omitempty"`
	// Value is an election candidate's value.
	Value string `json:"value,omitempty"`
	// Time is the cluster's clock when it happened.
	Time time.Time `json:"time"`
	// By names the admin who forced the change (a force-release, a
	// session closed by an admin); absent otherwise.
	By string `json:"by,omitempty"`
	// Mode is "shared" for a lock event of a shared hold or wait; absent
	// otherwise.
	Mode string `json:"mode,omitempty"`
}

// WatchBatch is the data of one "change" message of GET /v1/watch: every
// event of one revision that matches the watch, in order. The message's SSE
// id is the revision; send it back as Last-Event-ID to resume after it.
type WatchBatch struct {
	Revision uint64  `json:"revision"`
	Events   []Event `json:"events"`
}

// WatchState is the data of a "state" message of a GET /v1/watch that
// does not resume: a page of the locks under the prefix, sorted by name, as
// they are at Revision. A page holds at most ?limit= locks (DefaultListLimit,
// at most MaxListLimit). Next is set when more pages follow: it is the last
// name of this page, and the next page starts after it. Between two pages
// come the "change" messages that bring the earlier pages (names up to
// Next) to the next page's Revision; changes to names of later pages are
// in those pages already. Only the last page (without Next) carries the
// stream's first id, its Revision: from there on, every change follows.
type WatchState struct {
	Revision uint64 `json:"revision"`
	Locks    []Lock `json:"locks"`
	Next     string `json:"next,omitempty"`
}

// CodeCompacted is the code of a stream's "error" message when it cannot
// resume after the asked revision because the node no longer holds the
// events in between: re-read the state and watch again without
// Last-Event-ID.
const CodeCompacted = "compacted"

// Server-Sent Events message names of the watch and observe streams.
const (
	SSEState  = "state"
	SSEChange = "change"
	SSEError  = "error"
	// HeaderLastEventID is the standard SSE resume header.
	HeaderLastEventID = "Last-Event-ID"
)
