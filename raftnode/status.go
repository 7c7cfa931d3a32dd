package raftnode

import (
	"slices"

	"go.etcd.io/raft/v3"

	"github.com/raftlock/raftlock/lock"
)

// memberList returns the members as this node knows them: the voters and
// learners of its configuration with the URLs they published (the peer
// URLs of the initial cluster until then), sorted by ID. It is cached until
// the configuration or the published URLs change.
func (n *Node) memberList() []MemberStatus {
	if !n.membersDirty {
		return n.members
	}
	urls := map[uint64]lock.Member{}
	for _, m := range n.machine.Members() {
		urls[m.ID] = m
	}
	ids := append(append([]uint64{}, n.confState.GetVoters()...), n.confState.GetLearners()...)
	if len(ids) == 0 {
		for id := range n.peers {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ms := make([]MemberStatus, 0, len(ids))
	for _, id := range slices.Compact(ids) {
		m := MemberStatus{ID: id, PeerURL: n.peers[id], ClientURL: urls[id].ClientURL}
		if m.PeerURL == "" {
			m.PeerURL = urls[id].PeerURL
		}
		ms = append(ms, m)
	}
	n.members = ms
	n.membersDirty = false
	return ms
}

// publishStatus stores the node's status for Status, which any goroutine
// may call.
func (n *Node) publishStatus() {
	st := &Status{
		ID:            n.id,
		Leader:        n.lead,
		IsLeader:      n.state == raft.StateLeader,
		Term:          n.term,
		Commit:        n.commit,
		Applied:       n.applied,
		Members:       n.memberList(),
		SnapshotIndex: n.snapIndex,
		Alarms:        n.machine.Alarms(),
	}
	if n.rn != nil {
		hs := n.rn.BasicStatus().HardState
		st.Term, st.Commit = hs.GetTerm(), hs.GetCommit()
	}
	for _, m := range st.Members {
		if m.ID == n.lead {
			st.LeaderClientURL = m.ClientURL
		}
	}
	if st.IsLeader && n.progressMembers != nil {
		st.Members = n.progressMembers
	}
	// Ready also wants the leader's client URL: without it a follower can
	// not forward writes.
	st.Ready = n.lead != 0 && n.applied >= st.Commit && st.LeaderClientURL != ""
	n.status.Store(st)
	n.observeState()
}

// refreshProgress takes the leader's view of every member's log from raft,
// once a tick (raft's Status copies its progress map: not on every Ready),
// and keeps the member list with it for Status (a new slice each tick: a
// published Status is never changed). A follower keeps none.
func (n *Node) refreshProgress() {
	if n.state != raft.StateLeader {
		n.progressMembers = nil
		return
	}
	st := n.rn.Status()
	last, err := n.storage.LastIndex()
	if err != nil {
		last = n.applied
	}
	members := slices.Clone(n.memberList())
	for i := range members {
		pr, ok := st.Progress[members[i].ID]
		if !ok {
			continue
		}
		p := &MemberProgress{Match: pr.Match, Reachable: pr.RecentActive || members[i].ID == n.id, Learner: pr.IsLearner}
		if last > pr.Match {
			p.Behind = last - pr.Match
		}
		members[i].Progress = p
	}
	n.progressMembers = members
}
