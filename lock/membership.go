package lock

import (
	"fmt"
	"slices"
)

// Command format and cluster version.
//
// Every member of a cluster must be able to decode every entry of the log.
// A build reads command formats 1 to MaxCommandVersion; a command whose
// format is newer than what some member reads must not be proposed. The
// cluster's command version (ClusterVersion) is the newest format that every
// member reads: replicated state, raised by OpClusterVersion once every
// member has reported that it reads it (raftnode asks each member), never
// lowered. Until the first OpClusterVersion it is BaseCommandVersion, the
// formats that the builds before the cluster version read.
const (
	// BaseCommandVersion is the cluster version of a cluster that never
	// raised it: command format 3 (auth), read by every build since the
	// security release.
	BaseCommandVersion = 3
	// MaxCommandVersion is the newest command format this build reads and
	// writes: 4 adds the membership ops and OpClusterVersion; 5 adds no
	// encoding but a rule of Apply that builds before it do not know
	// (waits that would deadlock are refused: deadlock.go), so it too
	// must wait until every member applies it alike), OpAcquireAll and
	// the lock-delay of OpOpenSession; 6 adds the semaphore ops and the
	// shared mode of OpAcquire and OpAcquireAll (a wait involving them is
	// refused only when it could never be granted: deadlock.go).
	MaxCommandVersion = 6
)

// CommandVersion returns the format version Encode writes for c: the
// oldest that holds it. A command may be proposed only when it is at most
// the cluster's command version (Machine.ClusterVersion).
func CommandVersion(c *Command) int {
	switch {
	case needsV6(c):
		return 6
	case needsV5(c):
		return 5
	case needsV4(c):
		return 4
	case needsV3(c):
		return 3
	case c.Op == OpOpenSession && c.RequestID != "":
		return 2
	}
	return 1
}

// needsV6 reports whether c can only be written in version 6.
func needsV6(c *Command) bool {
	return semOp(c.Op) || (c.Op == OpAcquire && c.Mode != Exclusive) || (c.Op == OpAcquireAll && c.Modes != nil)
}

// semOp reports whether op is a semaphore op.
func semOp(op Op) bool { return op == OpSemAcquire || op == OpSemRelease || op == OpSemCancel }

// needsV5 reports whether c can only be written in version 5.
func needsV5(c *Command) bool {
	return c.Op == OpAcquireAll || (c.Op == OpOpenSession && c.LockDelay != 0)
}

// needsV4 reports whether c can only be written in version 4.
func needsV4(c *Command) bool { return memberOp(c.Op) || c.Op == OpClusterVersion }

// memberOp reports whether op records a configuration change.
func memberOp(op Op) bool {
	return op == OpMemberAdd || op == OpMemberPromote || op == OpMemberRemove
}

// ClusterVersion returns the cluster's command version: BaseCommandVersion
// until an OpClusterVersion raised it.
func (m *Machine) ClusterVersion() int {
	if m.clusterVersion == 0 {
		return BaseCommandVersion
	}
	return int(m.clusterVersion)
}

// MemberSeq returns the highest member ID ever added by OpMemberAdd or
// removed by OpMemberRemove (0 if none): a new member's ID must be greater
// than it and than every ID of the configuration, so IDs are never reused.
func (m *Machine) MemberSeq() uint64 { return m.memberSeq }

// Removed reports whether member id was removed from the cluster. A removed
// ID never comes back.
func (m *Machine) Removed(id uint64) bool {
	_, found := slices.BinarySearch(m.removed, id)
	return found
}

// RemovedMembers returns the removed member IDs, ascending. The slice is
// the machine's own, replaced (never changed) on removal: do not modify it.
func (m *Machine) RemovedMembers() []uint64 { return m.removed }

// applyMember applies OpMemberAdd, OpMemberPromote and OpMemberRemove. The
// caller (raftnode) applies the matching raft configuration change in the
// same entry, and only when this answers CodeOK; it also checks the rules
// that need the configuration (the ID is not a voter or learner already,
// the member to promote is a learner, ...). Here: an added ID must be
// greater than MemberSeq and never removed (CodeInvalid otherwise); a
// removed member's published URLs and alarms go with it.
func (a *applier) applyMember(c *Command) {
	m, id := a.m, c.Member.ID
	switch c.Op {
	case OpMemberAdd:
		if id <= m.memberSeq || m.Removed(id) {
			a.res = Result{Code: CodeInvalid, Reason: fmt.Sprintf("member ID %d was used before (IDs are never reused; the next is above %d)", id, m.memberSeq)}
			return
		}
		m.members[id] = Member{ID: id, PeerURL: c.Member.PeerURL}
		m.memberSeq = id
	case OpMemberPromote:
		if m.Removed(id) {
			a.res = Result{Code: CodeInvalid, Reason: fmt.Sprintf("member %d was removed", id)}
			return
		}
	case OpMemberRemove:
		if m.Removed(id) {
			a.res = Result{Code: CodeInvalid, Reason: fmt.Sprintf("member %d was removed already", id)}
			return
		}
		delete(m.members, id)
		i, _ := slices.BinarySearch(m.removed, id)
		m.removed = slices.Insert(slices.Clone(m.removed), i, id)
		m.memberSeq = max(m.memberSeq, id)
		if slices.ContainsFunc(m.alarms, func(al Alarm) bool { return al.Member == id }) {
			m.alarms = slices.DeleteFunc(slices.Clone(m.alarms), func(al Alarm) bool { return al.Member == id })
			if len(m.alarms) == 0 {
				m.alarms = nil
			}
		}
	}
	a.res.Code = CodeOK
}

// setClusterVersion applies OpClusterVersion: the cluster version becomes
// the command's if that is higher (it never goes down).
func (a *applier) setClusterVersion(c *Command) {
	if int(c.ClusterVersion) > a.m.ClusterVersion() {
		a.m.clusterVersion = c.ClusterVersion
	}
	a.res.Code = CodeOK
}

// ForNewCluster prepares a restored state for a new cluster (raftlockd
// --restore-from): the old cluster's members, their published URLs, its
// removed IDs, member ID sequence, cluster version and alarms are
// forgotten, so that nothing of the old cluster's membership carries over.
// Sessions, locks, elections, auth and limits stay.
func (m *Machine) ForNewCluster() {
	m.init()
	m.members = make(map[uint64]Member)
	m.removed = nil
	m.memberSeq = 0
	m.clusterVersion = 0
	m.alarms = nil
}

// encodeMembership writes the membership state of snapshot version 4: the
// member ID sequence, the cluster version and the removed IDs ascending.
func (c *SnapshotCapture) encodeMembership(e *encoder) {
	e.uvarint(c.memberSeq)
	e.byte(c.clusterVersion)
	e.uvarint(uint64(len(c.removed)))
	for _, id := range c.removed {
		e.uvarint(id)
	}
}

// restoreMembership reads what encodeMembership wrote.
func restoreMembership(d *decoder, m *Machine) {
	m.memberSeq = d.uvarint("member seq")
	m.clusterVersion = d.byte("cluster version")
	if d.err == nil && m.clusterVersion != 0 && (m.clusterVersion <= BaseCommandVersion || m.clusterVersion > MaxCommandVersion) {
		d.fail(fmt.Sprintf("cluster version %d", m.clusterVersion))
	}
	var prev uint64
	for i, n := 0, d.count("removed members"); i < n && d.err == nil; i++ {
		id := d.uvarint("removed member")
		if d.err == nil && (id <= prev || id > m.memberSeq) {
			d.fail(fmt.Sprintf("removed member %d out of order or above the member seq %d", id, m.memberSeq))
		}
		prev = id
		m.removed = append(m.removed, id)
	}
}
