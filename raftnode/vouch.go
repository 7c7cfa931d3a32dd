package raftnode

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// A member that fell behind does not know the members added since: it
// would drop their messages ("not a member") and, when one of them leads,
// never catch up. So a message from an unknown sender whose ID is above
// every ID this node knows (IDs only grow: a member it does not know yet
// has such an ID) makes the node ask the members it knows whether that ID
// is a member (ClusterAsker, over the peer port and its TLS). A member
// that any of them lists is vouched for: IsMember accepts it until the
// node's own configuration lists it (or removes it). A stranger gets
// nothing: no member lists it. The messages dropped meanwhile are sent
// again by raft.

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
