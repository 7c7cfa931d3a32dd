package client

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/raftlock/raftlock/api"
)

// memberRefreshInterval is the shortest time between two reads of the
// member list (GET /v1/status) prompted by a Raftlock-Leader header that
// names an unknown URL: a node that keeps naming a stranger costs one
// extra request per interval, not one per request.
const memberRefreshInterval = time.Second

// memberSet is where a Raftlock-Leader header may send a Client: its
// configured endpoints and the advertised client URLs of the members, all
// normalised and of the endpoints' scheme. It is immutable once built.
type memberSet struct {
	scheme string
	urls   map[string]struct{}
}

// newMemberSet returns the set of eps and the client URLs of members whose
// scheme is scheme (the others are left out: an https Client never
// follows a header to http, nor the reverse).
func newMemberSet(scheme string, eps []string, members []api.Member) *memberSet {
	m := &memberSet{scheme: scheme, urls: make(map[string]struct{}, len(eps)+len(members))}
	for _, e := range eps {
		m.urls[e] = struct{}{}
	}
	for _, mb := range members {
		n, err := normalizeURL(mb.ClientURL)
		if err != nil || schemeOf(n) != scheme {
			continue
		}
		m.urls[n] = struct{}{}
	}
	return m
}

// has reports whether u (normalised) is in the set.
func (m *memberSet) has(u string) bool {
	_, ok := m.urls[u]
	return ok
}

// schemeOf returns the scheme of a normalised URL ("http" or "https").
func schemeOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Scheme
	}
	return ""
}

// refresher serialises and paces the reads of the member list.
type refresher struct {
	mu   sync.Mutex
	last time.Time // start of the last read
}

// acceptLeader reports whether the Client may send its next requests to
// leader, the normalised URL that base's answer named in its
// Raftlock-Leader header ("" for none): yes when it is a configured
// endpoint or a member's advertised client URL with the endpoints' scheme.
// A URL not known yet makes it read the member list from base (GET
// /v1/status, at most once per memberRefreshInterval, and not while
// another goroutine reads it) and look again. base is an endpoint or a
// member already: the list is trusted as far as base is.
func (c *Client) acceptLeader(ctx context.Context, base, leader string) bool {
	if leader == "" {
		return false
	}
	if c.members.Load().has(leader) {
		return true
	}
	if c.refreshMembers(ctx, base) && c.members.Load().has(leader) {
		return true
	}
	c.log.Debug("ignoring a Raftlock-Leader header that names no member with the endpoints' scheme", "endpoint", base, "leader", leader, "scheme", c.members.Load().scheme)
	return false
}

// refreshMembers reads the member list from base and replaces the set with
// the endpoints and those members' client URLs. It reports whether it read
// the list; false when it was read less than memberRefreshInterval ago,
// another goroutine is reading it, or base did not answer.
func (c *Client) refreshMembers(ctx context.Context, base string) bool {
	r := &c.refresh
	if !r.mu.TryLock() {
		return false
	}
	defer r.mu.Unlock()
	if !r.last.IsZero() && time.Since(r.last) < memberRefreshInterval {
		return false
	}
	r.last = time.Now()
	var st api.Status
	// One attempt, to base only: its own Raftlock-Leader header is not
	// looked at (that is what is being checked).
	if _, err := c.attempt(ctx, base, call{method: http.MethodGet, path: "/v1/status"}, nil, &st); err != nil {
		c.log.Debug("reading the member list failed", "endpoint", base, "error", err)
		return false
	}
	cur := c.members.Load()
	c.members.Store(newMemberSet(cur.scheme, c.eps, st.Members))
	return true
}
