package raftnode

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/api"
	"github.com/raftlock/raftlock/lock"
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
// Accepting their messages is not enough: the node must answer them.
// Each trusted or vouched ID is recorded with a peer URL (trusted from
// the log: the URL of the member add that its change carries in its
// Context; vouched for: the URL the answers list, which replaces one from
// the log, as an added entry may have been overwritten by a new leader
// that gave the ID another URL; until an answer confirms it, a message
// from an ID trusted from the log makes the node ask: record, IsMember)
// and the transport is told of it (syncTransport) as of a member
// of the configuration. Else the transport drops every answer to it
// (rafthttp: "unknown remote peer target"): when it leads, its probe
// beyond this node's log is rejected, the rejection never arrives, and
// the leader probes the same index for as long as it leads. The loop
// tells the transport: trustLogged runs on every Ready just before its
// messages are sent, and passes on the URLs it recorded and those that
// vouchedBy (on the vouchers goroutine) recorded since the last Ready
// (urlsNew), so no answer to a trusted member with a URL goes out before
// the transport knows it. A trusted member stays a peer of the transport
// while it is trusted; once the configuration lists it, the
// configuration's URL rules (forgetVouched, then syncTransport), and once
// the configuration removes it, the transport forgets it. Only a URL of
// the form a member add accepts is passed on (usablePeerURL, never an
// empty one: rafthttp's AddPeer panics on a URL it cannot parse); an ID
// without one is still accepted, and answered once the configuration
// gives its URL. The URLs come from the node's own log (written by a
// leader it accepted) or from the members it knows, over the peer port
// and its TLS: a stranger can give none.
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

// voucher is the node's state of vouching: the trusted and vouched IDs
// with their peer URLs, and the lookups asked for.
type voucher struct {
	mu      sync.Mutex
	vouched map[uint64]string // trusted or vouched ID → its peer URL ("": none usable yet)
	// confirmed: the IDs whose URL the members' answers gave (their
	// applied configurations); a URL from this node's own unapplied log
	// may be that of an addition since discarded.
	confirmed map[uint64]bool
	asked     map[uint64]time.Time // last lookup of each ID
	reqC      chan uint64          // lookups to run (buffered; full: dropped)
	// urlsNew is set, with the URL and under mu, when record records a
	// peer URL that the transport has not been told of: the loop takes it
	// at its next Ready (trustLogged) and tells the transport. Under mu:
	// a message that IsMember accepts because its sender was vouched for
	// is handled after the flag is set.
	urlsNew atomic.Bool
}

func (v *voucher) init() {
	v.vouched = map[uint64]string{}
	v.confirmed = map[uint64]bool{}
	v.asked = map[uint64]time.Time{}
	v.reqC = make(chan uint64, 16)
}

// isVouched reports whether id was vouched for (or trusted from the log).
func (v *voucher) isVouched(id uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.vouched[id]
	return ok
}

// record marks id vouched for (answer: the members' answers list it) or
// trusted from this node's log (!answer), with peer URL u when it is
// usable, and reports whether id was not vouched for before and whether u
// was recorded (urlsNew is then set). A URL from the answers is the
// members' applied configuration, so it is kept (confirmed) and replaces
// one from the log; a URL from the log replaces an earlier one from the
// log but never a confirmed one: the earlier entry may be an addition
// that a new leader overwrote, with another URL for the same ID. Safe for
// concurrent use.
func (v *voucher) record(id uint64, u string, answer bool) (fresh, urlSet bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	have, known := v.vouched[id]
	if !known {
		v.vouched[id] = ""
	}
	if !usablePeerURL(u) {
		return !known, false
	}
	replace := have != u && (answer || !v.confirmed[id])
	if answer {
		v.confirmed[id] = true
	}
	if !replace {
		return !known, false
	}
	v.vouched[id] = u
	v.urlsNew.Store(true)
	return !known, true
}

// peerURLs returns the trusted and vouched IDs that have a peer URL (a
// copy).
func (v *voucher) peerURLs() map[uint64]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[uint64]string, len(v.vouched))
	for id, u := range v.vouched {
		if u != "" {
			out[id] = u
		}
	}
	return out
}

// usablePeerURL reports whether u may be handed to the transport: the form
// a member add accepts (api.ValidatePeerURL: http or https, host:port,
// nothing else). The URL of a trusted or vouched member comes from a
// member's answer or from a log entry, not from the REST API's check:
// rafthttp's AddPeer panics on a URL it cannot parse, and never gets one.
func usablePeerURL(u string) bool {
	return u != "" && api.ValidatePeerURL("peer_url", u) == nil
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
	if v.confirmed[id] || time.Since(v.asked[id]) < vouchInterval {
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
// a lookup) lists it, with the peer URL of the first answer that lists it
// with a usable one, and reports whether one did. The loop hands a URL
// recorded to the transport at its next Ready (urlsNew). Runs on the
// vouchers goroutine (runVouchers); safe for concurrent use.
func (n *Node) vouchedBy(id uint64, infos []ClusterInfo) bool {
	listed, url := false, ""
	for _, ci := range infos {
		for _, m := range ci.Members {
			if m.ID != id {
				continue
			}
			listed = true
			if url == "" && usablePeerURL(m.PeerURL) {
				url = m.PeerURL
			}
		}
	}
	if !listed {
		return false
	}
	if fresh, urlSet := n.vouchers.record(id, url, true); fresh || urlSet {
		n.log.Info("a member this node has not applied yet was vouched for by the others", "member", id, "peer_url", url)
	}
	return true
}

// forgetVouched drops the vouched IDs that the configuration now lists or
// that were removed: the configuration decides from now on. Loop only.
func (n *Node) forgetVouched(s *memberSet) {
	v := &n.vouchers
	v.mu.Lock()
	defer v.mu.Unlock()
	maps.DeleteFunc(v.vouched, func(id uint64, _ string) bool {
		_, removed := slices.BinarySearch(s.removed, id)
		if s.ids[id] || removed {
			delete(v.confirmed, id)
			return true
		}
		return false
	})
}

// trustLogged trusts (as vouched for) the members that the configuration
// changes among ents add, entries this node appended to its log and has
// not applied yet (see the top of this file), unless the configuration
// lists them or removed them, or a later change among ents removes them
// (a restart replays the whole log past the snapshot: the members added
// and removed since are not trusted for the moment it takes). Each is
// trusted with the peer URL of the member command in its change's
// Context (the member add, see handleConfChange). Loop only (and newNode,
// once memberSet is published).
//
// The loop calls it for every Ready, right before it sends the Ready's
// messages: when a peer URL was recorded since the last Ready (here, or by
// vouchedBy: urlsNew) it tells the transport (syncTransport), so that the
// answers to those members in this Ready are not dropped as sent to an
// unknown peer.
func (n *Node) trustLogged(ents []*raftpb.Entry) {
	n.trustAdded(ents)
	if n.vouchers.urlsNew.Swap(false) {
		n.syncTransport()
	}
}

// trustAdded is trustLogged's trusting: it records the members that ents
// add. Loop only.
func (n *Node) trustAdded(ents []*raftpb.Entry) {
	type add struct {
		id, index uint64
		url       string
	}
	var adds []add
	var removed map[uint64]bool
	note := func(t raftpb.ConfChangeType, id, index uint64, ctx []byte) {
		switch t {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			a := add{id: id, index: index}
			// The member command that rides in the change (none in a
			// bootstrap's changes; a promotion carries no URL).
			if len(ctx) > 0 {
				if _, _, cmd, err := decodeEnvelope(ctx); err == nil && cmd.Op == lock.OpMemberAdd && cmd.Member.ID == id {
					a.url = cmd.Member.PeerURL
				}
			}
			adds = append(adds, a)
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
				note(cc.GetType(), cc.GetNodeId(), e.GetIndex(), cc.GetContext())
			}
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if proto.Unmarshal(e.GetData(), &cc) == nil {
				for _, c := range cc.GetChanges() {
					note(c.GetType(), c.GetNodeId(), e.GetIndex(), cc.GetContext())
				}
			}
		}
	}
	if len(adds) == 0 {
		return
	}
	s := n.memberSet.Load()
	for _, a := range adds {
		if a.id == 0 || a.id == n.id || s.ids[a.id] || removed[a.id] || n.IsIDRemoved(a.id) {
			continue
		}
		if fresh, urlSet := n.vouchers.record(a.id, a.url, false); fresh || urlSet {
			n.log.Info("trusting a member added by a configuration change in this node's log, not applied yet", "member", a.id, "index", a.index, "peer_url", a.url)
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
