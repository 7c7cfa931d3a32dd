package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlock/raftlock/lock"
)

// MemberChangeKind is the kind of a membership change.
type MemberChangeKind int

// The membership changes.
const (
	// MemberAdd adds a voter at MemberChange.PeerURL; the cluster chooses
	// its ID.
	MemberAdd MemberChangeKind = iota + 1
	// MemberAddLearner adds a learner (a member that receives the log but
	// does not vote) at MemberChange.PeerURL.
	MemberAddLearner
	// MemberPromote makes learner MemberChange.ID a voter.
	MemberPromote
	// MemberRemove removes member MemberChange.ID for good.
	MemberRemove
)

// MemberChange is one change of the cluster's membership (see
// Node.ChangeMembership).
type MemberChange struct {
	Kind    MemberChangeKind
	ID      uint64 // MemberPromote, MemberRemove
	PeerURL string // MemberAdd, MemberAddLearner
}

// LearnerCatchUpEntries is how far behind the leader's log a learner may be
// and still be promoted.
const LearnerCatchUpEntries = 1000

// ErrMemberChange matches every *MemberChangeError.
var ErrMemberChange = errors.New("raftnode: membership change refused")

// MemberChangeError is a membership change that the leader refused before
// proposing it, or that the log refused when it was applied. Nothing
// changed. Code is stable (the REST API answers it); Reason says why.
type MemberChangeError struct {
	// Code: "conf_change_in_progress" (another change is not applied
	// yet), "unsafe_reconfiguration" (too few started voters would
	// remain, etcd's strict reconfiguration check), "learner_not_ready"
	// (a learner that has not caught up), "member_not_found",
	// "not_learner", "peer_url_in_use", "remove_leader" (the leader
	// cannot remove itself: transfer leadership first), "cluster_version"
	// (a member runs a build that cannot read membership entries),
	// "member_behind" (a removal while another member that remains has not
	// got the latest membership change into its log: it could be left
	// knowing no running member to catch up from; wait until it catches
	// up, or remove it first), "invalid" (refused when applied).
	Code   string
	Reason string
}

func (e *MemberChangeError) Error() string {
	return fmt.Sprintf("raftnode: membership change refused (%s): %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrMemberChange) true.
func (e *MemberChangeError) Is(target error) bool { return target == ErrMemberChange }

// ErrRemoved: this member was removed from the cluster; Run returns it and
// the member must not run again with this data dir.
var ErrRemoved = errors.New("raftnode: this member was removed from the cluster")

// ClusterVersionError is a command that some member cannot read yet: its
// command format is newer than the cluster's command version (see
// lock.ClusterVersion). Nothing was proposed. It matches ErrClusterVersion.
type ClusterVersionError struct {
	Need, Have int
}

// ErrClusterVersion matches every *ClusterVersionError.
var ErrClusterVersion = errors.New("raftnode: command too new for the cluster")

func (e *ClusterVersionError) Error() string {
	return fmt.Sprintf("raftnode: this needs command format %d but the cluster's members read only up to %d: upgrade every member first", e.Need, e.Have)
}

// Is makes errors.Is(err, ErrClusterVersion) true.
func (e *ClusterVersionError) Is(target error) bool { return target == ErrClusterVersion }

// memberSet is the membership the loop last applied, published for the
// goroutines of the transport (IsMember, IsIDRemoved, PeerURLs). Immutable.
type memberSet struct {
	ids      map[uint64]bool   // voters and learners (the initial peers until a configuration is known)
	learners map[uint64]bool   // the learners among ids
	urls     map[uint64]string // peer URL of each of ids ("" if unknown)
	removed  []uint64          // sorted
	maxID    uint64            // the highest member ID this node knows of (configuration, MemberSeq, initial peers)
}

// refreshMemberSet rebuilds the published membership from the
// configuration and the state machine, and updates the transport's peers.
// Loop only (and newNode).
func (n *Node) refreshMemberSet() {
	s := &memberSet{ids: map[uint64]bool{}, learners: map[uint64]bool{}, urls: map[uint64]string{}, removed: n.machine.RemovedMembers()}
	voters, learners := n.confState.GetVoters(), n.confState.GetLearners()
	if len(voters)+len(learners) == 0 {
		for id := range n.peers {
			s.ids[id] = true
		}
	}
	for _, id := range voters {
		s.ids[id] = true
	}
	for _, id := range learners {
		s.ids[id] = true
		s.learners[id] = true
	}
	published := map[uint64]string{}
	for _, m := range n.machine.Members() {
		published[m.ID] = m.PeerURL
	}
	for id := range s.ids {
		u := published[id]
		if u == "" {
			u = n.peers[id]
		}
		s.urls[id] = u
	}
	s.maxID = n.machine.MemberSeq()
	for id := range s.ids {
		s.maxID = max(s.maxID, id)
	}
	for id := range n.peers {
		s.maxID = max(s.maxID, id)
	}
	n.memberSet.Store(s)
	n.forgetVouched(s)
	n.memberSetStale = false
	n.membersDirty = true
	n.refreshProgress()
	n.syncTransport()
}

// syncTransport tells the transport of members it does not know yet, and
// to forget those that left. The peers are the members of the applied
// configuration (memberSet, with its URLs) and the members trusted or
// vouched for (vouch.go) that have a peer URL: without it the transport
// drops this node's answers to them (rafthttp: "unknown remote peer
// target"), and a member that leads before this node applies its
// addition would never hear that this node's log is shorter. Once the
// configuration lists a trusted member, or removes it, the configuration
// decides: its URL (RemovePeer and AddPeer when it differs), or
// RemovePeer. A trusted member is never removed while it is trusted.
// Loop only.
func (n *Node) syncTransport() {
	if n.transport == nil {
		return
	}
	s := n.memberSet.Load()
	if n.transportPeers == nil {
		n.transportPeers = map[uint64]string{}
	}
	want := maps.Clone(s.urls) // every ID of the configuration, "" if its URL is unknown
	for id, u := range n.vouchers.peerURLs() {
		if _, removed := slices.BinarySearch(s.removed, id); s.ids[id] || removed {
			continue // forgetVouched drops it at the next refresh
		}
		want[id] = u
	}
	for id, u := range want {
		if id == n.id || u == "" || n.transportPeers[id] == u {
			continue
		}
		if _, known := n.transportPeers[id]; known {
			n.transport.RemovePeer(id)
		}
		n.transport.AddPeer(id, u)
		n.transportPeers[id] = u
	}
	for id := range n.transportPeers {
		if _, ok := want[id]; !ok {
			n.transport.RemovePeer(id)
			delete(n.transportPeers, id)
			n.forgetPeer(id)
		}
	}
}

// PeerURLs returns the members' peer URLs as this node last applied them
// (ID → URL, this member included). The map is a copy.
func (n *Node) PeerURLs() map[uint64]string {
	return maps.Clone(n.memberSet.Load().urls)
}

// ChangeMembership asks the leader to change the membership and waits
// until the change is applied on this node. For MemberAdd and
// MemberAddLearner it returns the new member's ID (the highest ever used
// plus one). The leader refuses (a *MemberChangeError, nothing changed)
// while another change is in flight, a change that would leave fewer
// started voters than a quorum (a voter counts as started when the leader
// heard from it within the election timeout), the promotion of a learner
// that has not caught up (it must have the state as of the leader's last
// snapshot and be within LearnerCatchUpEntries entries), its own
// removal (transfer leadership first), and a removal while another member
// that remains (voter or learner) matches the leader's log only below the
// latest membership change the leader applied (member_behind: that member
// may not know the members added since, and would be left without one it
// knows to catch up from; see vouch.go). Other errors: as Propose
// (ErrNotLeader from a follower, ErrOutcomeUnknown, ...) and a
// *ClusterVersionError while some member runs a build that cannot read
// membership entries.
func (n *Node) ChangeMembership(ctx context.Context, ch MemberChange) (uint64, error) {
	cmd := &lock.Command{Member: lock.Member{ID: ch.ID, PeerURL: ch.PeerURL}}
	switch ch.Kind {
	case MemberAdd:
		cmd.Op = lock.OpMemberAdd
	case MemberAddLearner:
		cmd.Op, cmd.Wait = lock.OpMemberAdd, true
	case MemberPromote:
		cmd.Op = lock.OpMemberPromote
	case MemberRemove:
		cmd.Op = lock.OpMemberRemove
	default:
		return 0, fmt.Errorf("raftnode: unknown membership change %d", ch.Kind)
	}
	p := &proposal{cmd: cmd, resC: make(chan proposalResult, 1)}
	select {
	case n.propC <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-n.doneC:
		return 0, ErrStopped
	}
	r := n.awaitAnswer(ctx, p)
	if r.err != nil {
		return 0, r.err
	}
	if r.res.Code != lock.CodeOK {
		return 0, &MemberChangeError{Code: "invalid", Reason: r.res.Reason}
	}
	return p.cmd.Member.ID, nil
}

func isMemberOp(op lock.Op) bool {
	return op == lock.OpMemberAdd || op == lock.OpMemberPromote || op == lock.OpMemberRemove
}

// handleConfChange checks a membership change on the leader and proposes
// it as a raft configuration change whose Context carries the member
// command (in its envelope, so that the proposer's waiter is answered).
// Loop only.
func (n *Node) handleConfChange(p *proposal) {
	refuse := func(code, format string, args ...any) {
		p.resC <- proposalResult{err: &MemberChangeError{Code: code, Reason: fmt.Sprintf(format, args...)}}
	}
	if n.state != raft.StateLeader {
		p.resC <- proposalResult{err: n.notLeader()}
		return
	}
	if !n.stillLeader() {
		// Deposed earlier in this iteration (a newer term's message was
		// stepped): raft would forward the change to the new leader, which
		// would append it without these checks.
		p.resC <- proposalResult{err: ErrNoLeader}
		return
	}
	if need, have := lock.CommandVersion(p.cmd), n.machine.ClusterVersion(); have < need && !n.othersRead(need, p.cmd) {
		p.resC <- proposalResult{err: &ClusterVersionError{Need: need, Have: have}}
		return
	}
	if n.confReq != 0 || n.applied < n.confFloor {
		refuse("conf_change_in_progress", "another membership change is not applied yet; try again when it is")
		return
	}
	st := n.rn.Status()
	voters, learners := n.confState.GetVoters(), n.confState.GetLearners()
	// Started: heard from within the election timeout, and holding some of
	// the log (raft marks a member it just added as active before it ever
	// answered).
	active := func(id uint64) bool {
		pr, ok := st.Progress[id]
		return id == n.id || (ok && pr.Match > 0 && (pr.RecentActive || n.recentlyHeard(id)))
	}
	started := 0
	for _, id := range voters {
		if active(id) {
			started++
		}
	}
	quorum := func(voters int) int { return voters/2 + 1 }
	cmd := p.cmd
	id := cmd.Member.ID
	var typ raftpb.ConfChangeType
	switch cmd.Op {
	case lock.OpMemberAdd:
		for mid, u := range n.memberSet.Load().urls {
			if u == cmd.Member.PeerURL {
				refuse("peer_url_in_use", "member %d has peer URL %s", mid, u)
				return
			}
		}
		id = n.machine.MemberSeq()
		for _, v := range append(slices.Clone(voters), learners...) {
			id = max(id, v)
		}
		for v := range n.peers {
			id = max(id, v)
		}
		id++
		typ = raftpb.ConfChangeAddNode
		if cmd.Wait {
			typ = raftpb.ConfChangeAddLearnerNode
		} else if nv := len(voters) + 1; !(len(voters) == 1 && started == 1) && started < quorum(nv) {
			refuse("unsafe_reconfiguration", "adding a voter would make %d voters, whose quorum is %d, but only %d voters are started: bring the others back first, or add a learner", nv, quorum(nv), started)
			return
		}
	case lock.OpMemberPromote:
		if !slices.Contains(learners, id) {
			if slices.Contains(voters, id) {
				refuse("not_learner", "member %d is a voter already", id)
			} else {
				refuse("member_not_found", "no member %d", id)
			}
			return
		}
		pr, ok := st.Progress[id]
		last, _ := n.storage.LastIndex()
		if !ok || !active(id) || pr.Match == 0 || pr.Match < n.snapIndex || last-min(last, pr.Match) > LearnerCatchUpEntries {
			match := pr.Match
			refuse("learner_not_ready", "learner %d has not caught up: it matches the leader's log up to %d, the leader's last index is %d and its last snapshot %d (it must hold the snapshot's state and be within %d entries); try again shortly", id, match, last, n.snapIndex, LearnerCatchUpEntries)
			return
		}
		typ = raftpb.ConfChangeAddNode
	case lock.OpMemberRemove:
		isVoter := slices.Contains(voters, id)
		if !isVoter && !slices.Contains(learners, id) {
			refuse("member_not_found", "no member %d", id)
			return
		}
		if id == n.id {
			refuse("remove_leader", "member %d leads: transfer leadership to another voter first", id)
			return
		}
		if isVoter {
			nv := len(voters) - 1
			after := started
			if active(id) {
				after--
			}
			if after < quorum(nv) {
				refuse("unsafe_reconfiguration", "removing voter %d would leave %d voters, whose quorum is %d, but only %d of them are started: bring the others back first", id, nv, quorum(nv), after)
				return
			}
		}
		if bid, match, ok := n.behindMember(st, id); ok {
			refuse("member_behind", "member %d matches the leader's log only up to index %d, below the latest membership change (index %d): it may not know the members added since, and removing member %d could leave it none it knows to catch up from; wait until it catches up, or remove it first (a member this leader has not heard from for %d election timeouts no longer counts)", bid, match, n.confIndex, id, behindWindowElections)
			return
		}
		typ = raftpb.ConfChangeRemoveNode
	}
	cmd.Member.ID = id
	n.reqSeq++
	req := n.reqSeq
	cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: &id, Context: encodeEnvelope(n.id, req, cmd)}
	if err := n.rn.ProposeConfChange(cc); err != nil {
		p.resC <- proposalResult{err: fmt.Errorf("%w: proposal dropped: %v", ErrNoLeader, err)}
		return
	}
	n.confReq = req
	n.waiters[req] = &waiter{single: p}
	n.log.Info("proposed a membership change", "op", memberOpName(cmd), "member", id, "peer_url", cmd.Member.PeerURL)
}

// behindMember returns a running member of the configuration, other than
// the leader and except, whose log the leader knows to match its own only
// below n.confIndex (the latest membership change it applied), with that
// match; the lowest such ID. st is the leader's raft status. Leader only;
// loop only.
func (n *Node) behindMember(st raft.Status, except uint64) (id, match uint64, ok bool) {
	ids := append(slices.Clone(n.confState.GetVoters()), n.confState.GetLearners()...)
	slices.Sort(ids)
	for _, m := range ids {
		if m == n.id || m == except {
			continue
		}
		// Only a member that may still run counts (mayRun: heard from
		// within behindWindowElections election timeouts, or not heard
		// yet by a leader younger than that): one that runs catches up
		// within moments, and one cut off for a while comes back. A
		// member down for longer does not block the removal of another
		// (two dead disks would otherwise block each other's removal for
		// good); if it comes back after every member it knows is gone,
		// it cannot catch up, and is removed and added again
		// (OPERATIONS.md).
		pr, tracked := st.Progress[m]
		if !tracked || pr.Match < n.confIndex && n.mayRun(m, behindWindowElections*uint64(n.cfg.ElectionTicks)) {
			return m, pr.Match, true
		}
	}
	return 0, 0, false
}

// behindWindowElections is how many election timeouts (100 s with the
// defaults) a member that is behind on the membership blocks removals
// after the leader last heard from it (see behindMember).
const behindWindowElections = 100

func memberOpName(cmd *lock.Command) string {
	switch {
	case cmd.Op == lock.OpMemberAdd && cmd.Wait:
		return "add-learner"
	case cmd.Op == lock.OpMemberAdd:
		return "add"
	case cmd.Op == lock.OpMemberPromote:
		return "promote"
	case cmd.Op == lock.OpMemberRemove:
		return "remove"
	}
	return fmt.Sprintf("op %d", cmd.Op)
}

// applyConfChange applies a committed configuration change: it checks the
// member command in its Context against the configuration (every member
// decides alike: both are replicated state), applies it to the state
// machine, and applies the change to raft only when both accept it (else
// raft applies an empty change). Changes without a Context are those of
// a new cluster's bootstrap. Loop only.
func (n *Node) applyConfChange(idx, term uint64, cc *raftpb.ConfChange) error {
	var from, req uint64
	var cmd *lock.Command
	if len(cc.GetContext()) > 0 {
		var err error
		if from, req, cmd, err = decodeEnvelope(cc.GetContext()); err != nil {
			return fmt.Errorf("raftnode: committed conf change %d (term %d) carries an unreadable member command; the data dir %s may be corrupt or written by a newer version: %w",
				idx, term, n.cfg.DataDir, err)
		}
	}
	res := lock.Result{Code: lock.CodeOK}
	if cmd == nil {
		n.machine.Apply(idx, term, nil)
	} else if why := n.confChangeInvalid(cc, cmd); why != "" {
		n.machine.Apply(idx, term, nil)
		res = lock.Result{Code: lock.CodeInvalid, Reason: why}
	} else {
		res = n.machine.Apply(idx, term, cmd)
	}
	if res.Code != lock.CodeOK {
		// Raft must apply every configuration entry; an empty change
		// (NodeID 0) changes nothing, as etcd does for a refused one.
		none := uint64(0)
		cc = &raftpb.ConfChange{Type: cc.Type, NodeId: &none}
		n.log.Warn("refused a membership change", "index", idx, "reason", res.Reason)
	}
	n.confState = n.rn.ApplyConfChange(cc)
	if req != 0 && req == n.confReq && from == n.id {
		n.confReq = 0
	}
	// The members changed: the cluster version may rise at the next tick
	// (a removed member whose version was unknown held it back).
	n.versionAt = 0
	// The membership is published once the Ready's entries are applied
	// (processReady), not after each: replaying a log from its start
	// passes through every configuration of the past, and the transport
	// must not refuse a member for a moment because an old one had it
	// not yet.
	n.memberSetStale = true
	if w, ok := n.waiters[req]; ok && from == n.id {
		// The caller's answer lists the members: Status must show the
		// change.
		n.refreshMemberSet()
		n.publishStatus()
		delete(n.waiters, req)
		w.answer(res, idx)
	}
	if res.Code == lock.CodeOK && cmd != nil {
		n.log.Info("membership changed", "op", memberOpName(cmd), "member", cmd.Member.ID, "index", idx,
			"voters", n.confState.GetVoters(), "learners", n.confState.GetLearners())
		if cmd.Op == lock.OpMemberRemove && cmd.Member.ID == n.id {
			n.removedSelf = true
		}
	}
	return nil
}

// confChangeInvalid checks a member command against the configuration
// change that carries it and the configuration it applies to: "" when it
// may apply.
func (n *Node) confChangeInvalid(cc *raftpb.ConfChange, cmd *lock.Command) string {
	id := cc.GetNodeId()
	voters, learners := n.confState.GetVoters(), n.confState.GetLearners()
	isVoter, isLearner := slices.Contains(voters, id), slices.Contains(learners, id)
	if id == 0 || cmd.Member.ID != id {
		return fmt.Sprintf("the change names member %d, its command %d", id, cmd.Member.ID)
	}
	switch {
	case cmd.Op == lock.OpMemberAdd && cmd.Wait && cc.GetType() == raftpb.ConfChangeAddLearnerNode,
		cmd.Op == lock.OpMemberAdd && !cmd.Wait && cc.GetType() == raftpb.ConfChangeAddNode:
		if isVoter || isLearner {
			return fmt.Sprintf("member %d exists", id)
		}
	case cmd.Op == lock.OpMemberPromote && cc.GetType() == raftpb.ConfChangeAddNode:
		if !isLearner {
			return fmt.Sprintf("member %d is not a learner", id)
		}
	case cmd.Op == lock.OpMemberRemove && cc.GetType() == raftpb.ConfChangeRemoveNode:
		if !isVoter && !isLearner {
			return fmt.Sprintf("no member %d", id)
		}
		if isVoter && len(voters) == 1 {
			return fmt.Sprintf("member %d is the last voter", id)
		}
	default:
		return fmt.Sprintf("command op %d does not match change %s", cmd.Op, cc.GetType())
	}
	return ""
}

// ReportVersion records the newest command format member id reads (the
// transport asks each member). Safe for concurrent use.
func (n *Node) ReportVersion(id uint64, commandVersion int) {
	n.versionsMu.Lock()
	defer n.versionsMu.Unlock()
	if n.versions == nil {
		n.versions = map[uint64]int{}
	}
	n.versions[id] = commandVersion
}

// ReportProbe records how the transport's probe of peer id went: whether
// it answered (then the command format it reads, and the round trip).
// Safe for concurrent use.
func (n *Node) ReportProbe(id uint64, ok bool, commandVersion int, rtt time.Duration) {
	if ok {
		n.ReportVersion(id, commandVersion)
		n.metrics.peerRTT.WithLabelValues(strconv.FormatUint(id, 10)).Observe(rtt.Seconds())
	}
	n.versionsMu.Lock()
	defer n.versionsMu.Unlock()
	if n.reachable == nil {
		n.reachable = map[uint64]bool{}
	}
	n.reachable[id] = ok
}

// forgetPeer drops what the probes learnt of a member that left.
func (n *Node) forgetPeer(id uint64) {
	n.versionsMu.Lock()
	delete(n.versions, id)
	delete(n.reachable, id)
	n.versionsMu.Unlock()
	n.metrics.peerRTT.DeleteLabelValues(strconv.FormatUint(id, 10))
}

// peerReachability returns the outcome of the last probe of each peer.
func (n *Node) peerReachability() map[uint64]bool {
	n.versionsMu.Lock()
	defer n.versionsMu.Unlock()
	return maps.Clone(n.reachable)
}

// othersRead reports whether the removal cmd may be proposed below the
// cluster version: every member but the one it removes reported that it
// reads format need. A dead member's version is unknown, so the cluster
// version cannot rise while it is a member; its removal must not need it
// (an old build on it would stop at the entry, and it is leaving anyway).
func (n *Node) othersRead(need int, cmd *lock.Command) bool {
	if cmd.Op != lock.OpMemberRemove {
		return false
	}
	n.versionsMu.Lock()
	defer n.versionsMu.Unlock()
	for id := range n.memberSet.Load().ids {
		if id == n.id || id == cmd.Member.ID {
			continue
		}
		if n.versions[id] < need {
			return false
		}
	}
	return true
}

// maybeRaiseClusterVersion proposes OpClusterVersion, once per election
// timeout, when every member (voters and learners) has reported a command
// format newer than the cluster's version. Leader only; loop only.
func (n *Node) maybeRaiseClusterVersion() {
	have := n.machine.ClusterVersion()
	if n.state != raft.StateLeader || have >= lock.MaxCommandVersion {
		return
	}
	if n.versionAt != 0 && n.ticks-n.versionAt < uint64(n.cfg.ElectionTicks) {
		return
	}
	target := lock.MaxCommandVersion
	n.versionsMu.Lock()
	for id := range n.memberSet.Load().ids {
		if id == n.id {
			continue
		}
		v, ok := n.versions[id]
		if !ok {
			n.versionsMu.Unlock()
			return
		}
		target = min(target, v)
	}
	n.versionsMu.Unlock()
	if target <= have {
		return
	}
	n.versionAt = n.ticks
	n.reqSeq++
	// Every member reads format target, so OpClusterVersion (format 4)
	// itself may go into the log.
	data := encodeEnvelope(n.id, n.reqSeq, &lock.Command{Op: lock.OpClusterVersion, ClusterVersion: uint8(target)})
	if err := n.rn.Propose(data); err != nil {
		n.log.Debug("propose the cluster version", "err", err)
		return
	}
	n.log.Info("every member reads a newer command format: raising the cluster version", "from", have, "to", target)
}

// restoreConfState takes the configuration of a snapshot, and the
// snapshot's index (n.snapIndex, which both callers set first) as the
// index of the latest membership change: the change that made the
// configuration is at or below it, so the stand-in only asks more of
// member_behind's check. Loop only (and newNode).
func (n *Node) restoreConfState(cs *raftpb.ConfState) {
	n.confState = proto.Clone(cs).(*raftpb.ConfState)
	n.confIndex = n.snapIndex
	n.refreshMemberSet()
}
