package api

import (
	"fmt"
	"net/url"
	"strings"
)

// MembersPath lists and changes the cluster's members (admin once auth is
// on, for changes and for the list alike: peer URLs are the cluster's
// topology):
//
//   - GET: 200 MemberList, as this node knows them (a follower may lag the
//     leader by the entries it has not applied).
//   - POST MemberAddRequest: adds a member; 201 MemberAdded with the ID the
//     cluster chose (the highest ever used plus one: small, never reused).
//     Start the new member with that ID, --initial-cluster-state existing
//     and --initial-cluster naming every member.
//   - DELETE /{id}: removes member id for good; 200 MemberList. Removing
//     the leader first hands leadership to another voter.
//   - POST /{id}/promote: makes learner id a voter once it has caught up;
//     200 MemberList.
//
// A follower forwards changes to the leader. A change is refused with 409
// failed_precondition (the message starts with the reason:
// conf_change_in_progress, unsafe_reconfiguration, learner_not_ready,
// not_learner, peer_url_in_use, cluster_version, member_behind: a removal
// while another member that runs lacks the latest membership change) or
// 404 not_found for an
// unknown member; nothing changed then. A change whose answer was lost
// (503 timeout) may have been applied: list the members before retrying
// an add, or the retry adds a second member.
const MembersPath = "/v1/members"

// MemberAddRequest is the body of POST /v1/members.
type MemberAddRequest struct {
	// PeerURL is the new member's peer URL (http(s)://host:port), as it
	// will pass --advertise-peer.
	PeerURL string `json:"peer_url"`
	// Learner adds it as a learner: it receives the log but does not vote
	// until promoted, so adding it never weakens the quorum.
	Learner bool `json:"learner,omitempty"`
}

// Validate checks the peer URL's form.
func (r *MemberAddRequest) Validate() error {
	return ValidatePeerURL("peer_url", r.PeerURL)
}

// ValidatePeerURL checks that u is http://host:port or https://host:port
// with nothing else (no path, not even a trailing slash, no query, no
// user): the form raftlockd and the Raft transport accept.
func ValidatePeerURL(field, u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Port() == "" ||
		p.Path != "" || p.RawQuery != "" || p.Fragment != "" || p.User != nil || p.Opaque != "" || strings.TrimSpace(u) != u {
		return Errorf(CodeInvalidArgument, "%s: %q must be http://host:port or https://host:port with nothing after the port", field, u)
	}
	return nil
}

// MemberList answers GET /v1/members, DELETE /v1/members/{id} and POST
// /v1/members/{id}/promote: the members sorted by ID.
type MemberList struct {
	Members []Member `json:"members"`
}

// MemberAdded answers POST /v1/members: the new member and the members
// after the change.
type MemberAdded struct {
	Member  Member   `json:"member"`
	Members []Member `json:"members"`
}

// MemberPath returns the path of member id under MembersPath.
func MemberPath(id uint64) string { return fmt.Sprintf("%s/%d", MembersPath, id) }
