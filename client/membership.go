package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/raftlock/raftlock/api"
)

// Members lists the cluster's members (GET /v1/members; admin once auth is
// on).
func (c *Client) Members(ctx context.Context) ([]api.Member, error) {
	var out api.MemberList
	if _, err := c.do(ctx, call{method: http.MethodGet, path: api.MembersPath}, &out); err != nil {
		return nil, fmt.Errorf("client: list members: %w", err)
	}
	return out.Members, nil
}

// AddMember adds a member with peer URL peerURL, as a learner when learner
// is true, and returns it with the ID the cluster chose. An add whose
// answer is lost is not retried (a retry would add a second member): the
// error then matches api.ErrOutcomeUnknown; list the members to learn
// whether it happened.
func (c *Client) AddMember(ctx context.Context, peerURL string, learner bool) (*api.MemberAdded, error) {
	var out api.MemberAdded
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.MembersPath, body: api.MemberAddRequest{PeerURL: peerURL, Learner: learner}, write: true}, &out); err != nil {
		return nil, fmt.Errorf("client: add member %s: %w", peerURL, err)
	}
	return &out, nil
}

// RemoveMember removes member id for good (a leader hands leadership over
// first) and returns the members after the change. A retry of a removal
// that happened answers api.ErrNotFound.
func (c *Client) RemoveMember(ctx context.Context, id uint64) ([]api.Member, error) {
	var out api.MemberList
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: api.MemberPath(id), write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: remove member %d: %w", id, err)
	}
	return out.Members, nil
}

// PromoteMember makes learner id a voter and returns the members after the
// change. It is refused (api.ErrFailedPrecondition) until the learner has
// caught up with the leader's log.
func (c *Client) PromoteMember(ctx context.Context, id uint64) ([]api.Member, error) {
	var out api.MemberList
	if _, err := c.do(ctx, call{method: http.MethodPost, path: api.MemberPath(id) + "/promote", write: true, retryUnknown: true}, &out); err != nil {
		return nil, fmt.Errorf("client: promote member %d: %w", id, err)
	}
	return out.Members, nil
}
