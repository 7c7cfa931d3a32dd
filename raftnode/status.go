package raftnode

import (
	"maps"
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
	set := n.memberSet.Load()
	ids := slices.Sorted(maps.Keys(set.ids))
	ms := make([]MemberStatus, 0, len(ids))
	for _, id := range ids {
		ms = append(ms, MemberStatus{ID: id, PeerURL: set.urls[id], ClientURL: urls[id].ClientURL, Learner: set.learners[id]})
	}
	n.members = ms
	n.membersDirty = false
	return ms
}

// publishStatus stores the node's status for Status, which any goroutine
// may call.
func (n *Node) publishStatus() {
	st := &Status{
		ID:             n.id,
		Leader:         n.lead,
		IsLeader:       n.state == raft.StateLeader,
		Term:           n.term,
		Commit:         n.commit,
		Applied:        n.applied,
		Members:        n.memberList(),
		SnapshotIndex:  n.snapIndex,
		Alarms:         n.machine.Alarms(),
		ClusterID:      n.clusterID,
		ClusterVersion: n.machine.ClusterVersion(),
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
		n.lastHeard = nil
		return
	}
	st := n.rn.Status()
	last, err := n.storage.LastIndex()
	if err != nil {
		last = n.applied
	}
	if n.lastHeard == nil {
		n.lastHeard = map[uint64]uint64{}
		n.leadTick = n.ticks
	}
	for id, pr := range st.Progress {
		if pr.RecentActive || id == n.id {
			n.lastHeard[id] = n.ticks
		}
	}
	members := slices.Clone(n.memberList())
	for i := range members {
		pr, ok := st.Progress[members[i].ID]
		if !ok {
			continue
		}
		p := &MemberProgress{Match: pr.Match, Reachable: n.recentlyHeard(members[i].ID), Learner: pr.IsLearner}
		if last > pr.Match {
			p.Behind = last - pr.Match
		}
		members[i].Progress = p
	}
	n.progressMembers = members
}

// recentlyHeard reports whether the leader heard from member id within the
// last election timeout (this node always has). raft's RecentActive alone
// flickers: a leader clears it every election timeout (CheckQuorum) and a
// member's next answer sets it again, so refreshProgress remembers the
// tick it was last seen set. Leader and loop only.
func (n *Node) recentlyHeard(id uint64) bool {
	return n.heardWithin(id, uint64(n.cfg.ElectionTicks))
}

// heardWithin reports whether the leader heard from member id within the
// last ticks ticks (see recentlyHeard). Leader and loop only.
func (n *Node) heardWithin(id, ticks uint64) bool {
	if id == n.id {
		return true
	}
	t, ok := n.lastHeard[id]
	return ok && n.ticks-t <= ticks
}

// mayRun reports whether member id may still be running as far as this
// leader can tell: it heard from it within the last ticks ticks, or it
// has led for less than that and has not heard from it yet (a member down
// for longer than ticks, or never heard since, is taken for gone).
// Leader and loop only.
func (n *Node) mayRun(id, ticks uint64) bool {
	if n.heardWithin(id, ticks) {
		return true
	}
	_, heard := n.lastHeard[id]
	return !heard && n.ticks-n.leadTick <= ticks
}
