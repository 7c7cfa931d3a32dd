package raftnode

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A member that fell behind does not know the members added since: it
// would drop their messages ("not a member") and, when one of them leads,
// never catch up. Two things let it know them anyway:
//
//   - Its own log. The configuration changes it appended but has not
//     applied yet (trustLogged: the entries of each Ready, and at start
//     the log's tail past the snapshot) came from a leader it accepted:
//     a member they add (ConfChangeAddNode, ConfChangeAddLearnerNode) is
//     trusted as if vouched for. The node must not wait until it applies
//     them: it learns that they committed from the leader, which may be
//     one of the members they add.
//   - The members it knows. A message from an unknown sender whose ID is
//     above every ID this node knows (IDs only grow: a member it does not
//     know yet has such an ID) makes the node ask the members it knows
//     whether that ID is a member (ClusterAsker, over the peer port and
//     its TLS). A member that any of them lists is vouched for. A
//     stranger gets nothing: no member lists it.
//
// IsMember accepts a trusted or vouched ID until the node's own
// configuration lists it (or removes it): forgetVouched. The messages
// dropped meanwhile are sent again by raft.
//
// Asking needs a running member this node knows. The leader's
// member_behind check (handleConfChange) keeps one: it removes no member
// while another that remains matches its log only below the latest
// membership change it applied. So at every removal each remaining member
// that runs has in its log (or its snapshot) every addition so far, and
// with the first point knows every member of the configuration but the
// one removed.
// By induction over removals, the members a node knows are never all
// removed while it is behind: before the last of them goes, it must have
// caught up to the changes that added the others. The guarantee holds for
// a member that may still run (heard from within behindWindowElections
// election timeouts, or not yet heard by a young leader): a member down
// for longer must not block the removal of others (two dead disks would
// block each other's for good), so one that comes back after everyone it
// knew was replaced stays stuck (it drops the new members' messages, and
// has nobody to ask) until the operator removes it and adds it again.

// ClusterAsker is a Transport that can ask the members it knows for the
// cluster's membership (HTTPTransport does, through PeerClusterPath).
type ClusterAsker interface {
	// AskCluster returns the membership as every member that answered
	// sees it (one ClusterInfo per answer), as member self.
	AskCluster(ctx context.Context, self uint64) []ClusterInfo
}

// vouchInterval is how long a node waits before it asks about the same
// unknown sender again.
const vouchInterval = time.Second

// maxAsked bounds the lookups remembered (and so those a stranger naming
// ever new IDs can cause: one worker runs them, one at a time, and the
// queue drops what does not fit).
const maxAsked = 1024

// voucher is the node's state of vouching: vouched IDs and the lookups
// asked for.
type voucher struct {
	mu      sync.Mutex
	vouched map[uint64]bool
	asked   map[uint64]time.Time // last lookup of each ID
	reqC    chan uint64          // lookups to run (buffered; full: dropped)
}

func (v *voucher) init() {
	v.vouched = map[uint64]bool{}
	v.asked = map[uint64]time.Time{}
	v.reqC = make(chan uint64, 16)
}

// isVouched reports whether id was vouched for.
func (v *voucher) isVouched(id uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.vouched[id]
}

// vouch asks (without blocking) for a lookup of unknown sender id, when
// its ID is above every ID this node knows and it was not asked about in
// the last vouchInterval. Safe for concurrent use.
func (n *Node) vouch(id uint64) {
	s := n.memberSet.Load()
	if id <= s.maxID || n.IsIDRemoved(id) {
		return
	}
	v := &n.vouchers
	v.mu.Lock()
	if v.vouched[id] || time.Since(v.asked[id]) < vouchInterval {
		v.mu.Unlock()
		return
	}
	if len(v.asked) >= maxAsked {
		// Strangers may name any number of IDs: forget the lookups of
		// more than vouchInterval ago (each ID may be asked about again).
		maps.DeleteFunc(v.asked, func(_ uint64, at time.Time) bool { return time.Since(at) >= vouchInterval })
		if len(v.asked) >= maxAsked {
			v.mu.Unlock()
			return
		}
	}
	v.asked[id] = time.Now()
	v.mu.Unlock()
	select {
	case v.reqC <- id:
	default:
	}
}

// runVouchers runs the lookups until the node stops. Run starts it when
// the transport is a ClusterAsker.
func (n *Node) runVouchers(asker ClusterAsker) {
	for {
		select {
		case id := <-n.vouchers.reqC:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			infos := asker.AskCluster(ctx, n.id)
			cancel()
			n.vouchedBy(id, infos)
		case <-n.doneC:
			return
		}
	}
}

// vouchedBy marks id vouched for if one of infos (the members' answers to
// a lookup) lists it, and reports whether one did.
func (n *Node) vouchedBy(id uint64, infos []ClusterInfo) bool {
	for _, ci := range infos {
		if slices.ContainsFunc(ci.Members, func(m MemberInfo) bool { return m.ID == id }) {
			n.vouchers.mu.Lock()
			n.vouchers.vouched[id] = true
			n.vouchers.mu.Unlock()
			n.log.Info("a member this node has not applied yet was vouched for by the others", "member", id)
			return true
		}
	}
	return false
}

// forgetVouched drops the vouched IDs that the configuration now lists or
// that were removed: the configuration decides from now on. Loop only.
func (n *Node) forgetVouched(s *memberSet) {
	v := &n.vouchers
	v.mu.Lock()
	defer v.mu.Unlock()
	maps.DeleteFunc(v.vouched, func(id uint64, _ bool) bool {
		_, removed := slices.BinarySearch(s.removed, id)
		return s.ids[id] || removed
	})
}

// trustLogged trusts (as vouched for) the members that the configuration
// changes among ents add, entries this node appended to its log and has
// not applied yet (see the top of this file), unless the configuration
// lists them or removed them, or a later change among ents removes them
// (a restart replays the whole log past the snapshot: the members added
// and removed since are not trusted for the moment it takes). Loop only
// (and newNode, once memberSet is published).
func (n *Node) trustLogged(ents []*raftpb.Entry) {
	type add struct{ id, index uint64 }
	var adds []add
	var removed map[uint64]bool
	note := func(t raftpb.ConfChangeType, id, index uint64) {
		switch t {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			adds = append(adds, add{id, index})
		case raftpb.ConfChangeRemoveNode:
			if removed == nil {
				removed = map[uint64]bool{}
			}
			removed[id] = true // IDs are never reused: after its addition
		}
	}
	for _, e := range ents {
		if e.GetIndex() <= n.applied {
			continue
		}
		switch e.GetType() {
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if proto.Unmarshal(e.GetData(), &cc) == nil { // else apply fails on it, loudly
				note(cc.GetType(), cc.GetNodeId(), e.GetIndex())
			}
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if proto.Unmarshal(e.GetData(), &cc) == nil {
				for _, c := range cc.GetChanges() {
					note(c.GetType(), c.GetNodeId(), e.GetIndex())
				}
			}
		}
	}
	if len(adds) == 0 {
		return
	}
	s := n.memberSet.Load()
	v := &n.vouchers
	for _, a := range adds {
		if a.id == 0 || a.id == n.id || s.ids[a.id] || removed[a.id] || n.IsIDRemoved(a.id) {
			continue
		}
		v.mu.Lock()
		fresh := !v.vouched[a.id]
		v.vouched[a.id] = true
		v.mu.Unlock()
		if fresh {
			n.log.Info("trusting a member added by a configuration change in this node's log, not applied yet", "member", a.id, "index", a.index)
		}
	}
}

// AskCluster implements ClusterAsker: it asks every peer it knows for
// PeerClusterPath, and returns the answers.
func (ht *HTTPTransport) AskCluster(ctx context.Context, self uint64) []ClusterInfo {
	ht.mu.Lock()
	peers := maps.Clone(ht.peers)
	ht.mu.Unlock()
	if ht.probeRT == nil {
		return nil
	}
	var out []ClusterInfo
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		var ci ClusterInfo
		if err := getPeerJSON(ctx, ht.probeClient(), self, peers[id]+PeerClusterPath, &ci); err == nil {
			out = append(out, ci)
		}
	}
	return out
}
