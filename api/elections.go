package api

import (
	"net/url"
	"time"
)

// MaxValueSize is the longest candidate value, in bytes. An election name
// follows the rules of a lock name (ValidateLockName); elections and locks
// are separate namespaces.
const MaxValueSize = 4096

// ElectionPath returns the URL path of election name, '/' escaped.
func ElectionPath(name string) string { return "/v1/elections/" + url.PathEscape(name) }

// Leader is the session leading an election.
type Leader struct {
	Session SessionID `json:"session"`
	Owner   string    `json:"owner"`
	Value   string    `json:"value"`
	// Term is the leadership's fencing token: the index of the log entry
	// that made it leader. It strictly increases per election.
	Term uint64 `json:"term"`
	// Since is when it became leader, on the cluster's clock.
	Since time.Time `json:"since"`
}

// Candidate is a session queued behind the leader.
type Candidate struct {
	Session SessionID `json:"session"`
	Owner   string    `json:"owner"`
	Value   string    `json:"value"`
	Since   time.Time `json:"since"`
}

// Election answers GET /v1/elections/{name}. Nobody leading means a null
// Leader and no candidates.
type Election struct {
	Name   string  `json:"name"`
	Leader *Leader `json:"leader"`
	// Candidates are in queue order (the head leads next). Never null.
	Candidates []Candidate `json:"candidates"`
}

// ElectionList answers GET /v1/elections?prefix=p&limit=n&after=name: a page
// of the elections, sorted by name; Next as in LockList.
type ElectionList struct {
	Elections []Election `json:"elections"`
	Next      string     `json:"next,omitempty"`
}

// CampaignRequest is the body of POST /v1/elections/{name}/campaign.
type CampaignRequest struct {
	Session SessionID `json:"session"`
	Value   string    `json:"value"`
	// Wait is how long to wait in the queue for leadership; zero tries
	// once. At most the server's MaxWait.
	Wait Duration `json:"wait,omitempty"`
	// KeepQueued keeps the candidacy when the wait runs out or the client
	// goes away (409 not_leader with "queued": true), as for locks. Only
	// with a Wait.
	KeepQueued bool `json:"keep_queued,omitempty"`
}

// ElectionCancelResponse answers a cancel of a candidacy (200): Left as in
// CancelResponse; Grant is the session's leadership when it leads (it won
// the race): the caller resigns it.
type ElectionCancelResponse struct {
	Left  bool        `json:"left"`
	Grant *Leadership `json:"grant"`
}

// Leadership answers a campaign (and a proclaim): the session leads with
// Term and Value.
type Leadership struct {
	Name    string    `json:"name"`
	Session SessionID `json:"session"`
	Value   string    `json:"value"`
	Term    uint64    `json:"term"`
}

// ProclaimRequest is the body of POST /v1/elections/{name}/proclaim.
type ProclaimRequest struct {
	Session SessionID `json:"session"`
	Term    uint64    `json:"term"`
	Value   string    `json:"value"`
}

// ResignRequest is the body of POST /v1/elections/{name}/resign.
type ResignRequest struct {
	Session SessionID `json:"session"`
	Term    uint64    `json:"term"`
}

// LeaderEvent is the data of an observe stream message: the election's
// leader after Revision (null: nobody leads). Type says what happened:
// "state" for the first message, then elected, proclaimed, resigned,
// expired or no_leader.
type LeaderEvent struct {
	Revision uint64  `json:"revision"`
	Type     string  `json:"type"`
	Leader   *Leader `json:"leader"`
	// Changes lists, in order, every leader change of this revision when
	// there were several: a leader that expired and was succeeded in one
	// log entry gives ["expired","elected"] with Type "elected".
	Changes []string `json:"changes,omitempty"`
}
